"""``gridledger verifier``: an independent process that re-executes every committed interval.

Another party runs it (the grid operator, the community association, a regulator) with its own
key. It follows ``IntervalCommitted`` on the chain, fetches the interval's package from the
operator node (verifier routes, signed in with SIWE), reads the committed roots, meter owners,
escrow and the previous netting root from the chain itself, and re-executes
(:func:`~gridledger.verifier.reexecute.reexecute`). When every byte matches it POSTs its
signature over the attestation. On a mismatch it never signs the operator's claim: it writes the
dispute (interval, line, expected, claimed) to a file, commits the file's hash through the
``Evidence`` contract (subject: the operator), and offers only the *void* attestation (the
interval settled with nothing moving; see docs/trust-model.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_utils.crypto import keccak

from gridledger.config import Settings
from gridledger.eip712 import address_of
from gridledger.errors import (
    ChainError,
    ContractRevert,
    DataSourceError,
    NotFoundError,
    ValidationError,
)
from gridledger.ledger import Deployment, Ledger
from gridledger.privacy.salts import LeafKey
from gridledger.store import Store
from gridledger.verifier.attestation import IntervalAttestation, sign_attestation
from gridledger.verifier.client import OperatorClient
from gridledger.verifier.local import chain_facts
from gridledger.verifier.reexecute import (
    ChainFacts,
    Dispute,
    IntervalPackage,
    MarketRules,
    reexecute,
    void_attestation,
)
from gridledger.verifier.wire import attestation_to_json, hex0x, package_from_json

log = logging.getLogger(__name__)
CURSOR_KEY = "verifier.next_block"
DONE_PREFIX = "verifier.done."
TOKEN_REFRESH_S = 300.0  # well inside the node's token lifetime (900 s by default)

# AFTER-VERIFY HOOK (for live detection, gridledger.security.live): called once per interval
# this verifier decided, after its signature was handed in, with the package it re-executed,
# the facts it read from the chain and its verdict. A hook that raises is logged and skipped:
# detection never delays or changes an attestation.
AfterVerify = Callable[[IntervalPackage, ChainFacts, "IntervalAttestation | Dispute"], None]


@dataclass(frozen=True)
class VerifierConfig:
    chain: str
    operator_url: str
    key: bytes
    db_url: str
    settings: Settings
    evidence: str | None = None  # Evidence contract for disputes; None: the file stays local
    dispute_dir: Path = Path(".gridledger/disputes")
    poll_s: float = 0.5
    http_timeout_s: float = 30.0
    after_verify: tuple[AfterVerify, ...] = field(default=())  # see AfterVerify
    # Set: this verifier is also a detector node (security.live.verifier_hook), judging every
    # interval it verified against this feeder meter; its key must be in the Evidence
    # contract's detector set for its findings to count.
    feeder_meter: str | None = None


class VerifierProcess:
    """One verifier: follow commits, re-execute, attest or dispute; state in its own store."""

    def __init__(self, config: VerifierConfig) -> None:
        from gridledger.node.interval import supplier_address

        self.config = config
        self.address = address_of(config.key)
        self.client = OperatorClient(config.operator_url, config.key, config.http_timeout_s)
        published = self.client.public("/v1/verifier/deployment")
        self.operator_address = str(published["operator"])
        deployment = Deployment.from_json(json.dumps(published["deployment"]))
        self.ledger = Ledger.attach(config.chain, deployment, config.key)
        if not self.ledger.code_at(self.ledger.deployment.market):
            raise ChainError(f"no Market contract at {self.ledger.deployment.market} on the chain")
        s = config.settings
        from gridledger.settlement import Tariffs

        self.rules = MarketRules(
            self.ledger.domain,
            "uniform",
            s.grid_fee_micro_per_kwh,
            Tariffs(s.import_price_micro_per_kwh, s.feed_in_price_micro_per_kwh),
            self.ledger.deployment.grid_operator,
            supplier_address(),
        )
        self.store = Store.open(config.db_url)
        if config.evidence is not None:
            # The Evidence client's imports take seconds (gridledger.security loads its
            # detectors): load them beside the first intervals, so a dispute need not wait.
            threading.Thread(target=_load_evidence_client, name="import", daemon=True).start()
        self.after_verify = config.after_verify
        if config.feeder_meter is not None:
            self.after_verify = (*self.after_verify, self._detector_hook(config.feeder_meter))
        self.client.sign_in()  # now, before any interval waits on this verifier
        self._leaf_key: LeafKey | None = None
        self.stop = threading.Event()

    def _detector_hook(self, feeder_meter: str) -> AfterVerify:
        from gridledger.security.evidence import DetectorNode
        from gridledger.security.live import MeterStream, verifier_hook
        from gridledger.security.onchain import EvidenceContract

        identity = DetectorNode(f"verifier:{self.address}", self.config.key, self.ledger.domain)
        evidence = self.config.evidence
        contract = EvidenceContract(self.ledger, evidence) if evidence is not None else None
        folder = self.config.dispute_dir.parent / "evidence"
        log.info("verifier %s also detects (feeder meter %s)", self.address, feeder_meter)
        return verifier_hook(MeterStream(identity, feeder_meter), contract, self.config.key, folder)

    @property
    def leaf_key(self) -> LeafKey:
        if self._leaf_key is None:
            self._leaf_key = LeafKey.from_hex(self.client.get("/v1/verifier/leaf-key")["leaf_key"])
        return self._leaf_key

    def run(self) -> None:
        log.info("verifier %s following %s", self.address, self.config.operator_url)
        while not self.stop.is_set():
            try:
                self.step()
            except (ChainError, DataSourceError, httpx.HTTPError, NotFoundError) as exc:
                log.warning("verifier: %s; retrying", exc)
            self.stop.wait(self.config.poll_s)

    def step(self) -> list[IntervalAttestation | Dispute]:
        """Handle every interval committed since the last step; returns what was decided."""
        cursor = int(self.store.meta(CURSOR_KEY) or 0)
        head = self.ledger.block_number
        if head < cursor:
            return []
        todo = [
            int(e.args["intervalStartS"])
            for e in self.ledger.events(cursor, head)
            if e.name == "IntervalCommitted"
        ]
        todo = [s for s in todo if self.store.meta(DONE_PREFIX + str(s)) is None]
        if not todo and time.monotonic() - self.client.signed_in_at > TOKEN_REFRESH_S:
            # Sign in again while nothing waits on us, well before the token expires: a
            # refused request in the middle of an interval would cost a round trip.
            self.client.sign_in()
        decided = [self.verify(start_s) for start_s in todo]
        self.store.set_meta(CURSOR_KEY, str(head + 1))
        return decided

    def verify(self, start_s: int) -> IntervalAttestation | Dispute:
        package = package_from_json(self.client.get(f"/v1/verifier/intervals/{start_s}"))
        facts = chain_facts(self.ledger, package)
        verdict = reexecute(package, facts, self.rules, self.leaf_key)
        att = verdict
        if isinstance(verdict, Dispute):
            self.record_dispute(verdict, package)
            att = void_attestation(package, facts, self.rules.grid_operator)
        assert isinstance(att, IntervalAttestation)
        signature = sign_attestation(self.config.key, self.ledger.domain, att)
        body = {"attestation": attestation_to_json(att), "signature": hex0x(signature)}
        self.client.post(f"/v1/verifier/intervals/{start_s}/attestations", body)
        self.store.set_meta(DONE_PREFIX + str(start_s), "dispute" if att != verdict else "attested")
        log.info("verifier %s: interval %s %s", self.address, start_s, _word(verdict))
        self.run_after_verify(package, facts, verdict)
        return verdict

    def run_after_verify(
        self, package: IntervalPackage, facts: ChainFacts, verdict: IntervalAttestation | Dispute
    ) -> None:
        for hook in self.after_verify:
            try:
                hook(package, facts, verdict)
            except Exception:  # a detector's failure must never stop the verifier
                log.exception("after-verify hook %r failed on %s", hook, package.interval_start_s)

    def record_dispute(self, dispute: Dispute, package: IntervalPackage) -> Path:
        """The dispute file (kept), and its hash committed through the Evidence contract."""
        path, digest = write_dispute_file(
            self.config.dispute_dir, dispute, self.address, self.ledger, package
        )
        log.warning("verifier %s: DISPUTE %s (file %s)", self.address, dispute.reason, path)
        if self.config.evidence is not None:
            record_dispute_on_chain(
                self.ledger,
                self.config.evidence,
                self.config.key,
                self.operator_address,
                dispute,
                digest,
            )
        return path

    def close(self) -> None:
        self.client.close()
        self.store.close()


def write_dispute_file(
    folder: Path, dispute: Dispute, verifier: str, ledger: Ledger, package: IntervalPackage
) -> tuple[Path, bytes]:
    """The evidence file of a dispute and its keccak hash (the 32 bytes that go on-chain)."""
    body = {
        "dispute": json.loads(dispute.to_json()),
        "verifier": verifier,
        "chain_id": ledger.chain_id,
        "market": ledger.deployment.market,
        "claimed_attestation": attestation_to_json(package.attestation),
    }
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dispute-{dispute.interval_start_s}-{verifier}.json"
    path.write_bytes(data)
    return path, keccak(data)


def record_dispute_on_chain(
    ledger: Ledger, evidence: str, key: bytes, operator: str, dispute: Dispute, digest: bytes
) -> None:
    """``submitEvidence(operator, day of the interval, hash of the dispute file)``."""
    from gridledger.security.evidence import evidence_window
    from gridledger.security.onchain import EvidenceContract
    from gridledger.security.quorum import Submission

    window_s, _ = evidence_window(dispute.interval_start_s)
    contract = EvidenceContract(ledger, evidence)
    try:
        contract.submit(key, Submission(address_of(key), operator, window_s, digest))
    except ContractRevert as exc:  # one record per (operator, day, verifier): keep the file
        log.warning("dispute of %s stays off-chain: %s", dispute.interval_start_s, exc)


def _load_evidence_client() -> None:
    import gridledger.security.evidence
    import gridledger.security.onchain
    import gridledger.security.quorum  # noqa: F401


def _word(verdict: IntervalAttestation | Dispute) -> str:
    return "attested" if isinstance(verdict, IntervalAttestation) else f"disputed: {verdict.reason}"


def run_verifier(config: VerifierConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    from gridledger._service import run_until_signal

    run_until_signal(VerifierProcess(config))


def verifier_config(
    chain: str,
    operator_url: str,
    key_file: Path,
    db_url: str | None,
    evidence: str | None,
    passphrase_file: Path | None,
    settings: Settings,
    feeder_meter: str | None = None,
) -> VerifierConfig:
    """The CLI's flags as a config; the store defaults to a SQLite file named after the key."""
    from gridledger.config import ensure_sqlite_dir
    from gridledger.eip712 import is_checksummed
    from gridledger.verifier.keyfile import load_key_file

    if feeder_meter is not None and not is_checksummed(feeder_meter):
        raise ValidationError("feeder_meter", f"not a checksummed address: {feeder_meter!r}")

    key = load_key_file(key_file, passphrase_file)
    state = Path(settings.state_dir).parent / "verifier" / address_of(key)
    url = db_url or f"sqlite:///{state}/verifier.sqlite"
    ensure_sqlite_dir(url)
    return VerifierConfig(
        chain,
        operator_url,
        key,
        url,
        settings,
        evidence,
        dispute_dir=state / "disputes",
        feeder_meter=feeder_meter,
    )
