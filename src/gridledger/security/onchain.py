"""The chain edge of the security package: deploy the ``Evidence`` contract and talk to it.

Kept thin on purpose: it rides on a deployed :class:`~gridledger.ledger.Ledger` (its web3
connection, its operator key and its Registry) while the ledger client is still being finished,
and it reaches into the Ledger's private ``_conn`` / ``_sender`` / ``_c`` for that. When the
ledger grows public accessors for them, only this module changes.

The ABI and bytecode come from ``gridledger/ledger/artifacts/Evidence.json`` (built by
``contracts/scripts/compile.js`` like the other contracts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from gridledger.errors import ContractRevert
from gridledger.ledger import Ledger, TxResult
from gridledger.ledger.artifacts import Artifact, load_artifact
from gridledger.ledger.sender import TxSender
from gridledger.security.evidence import EVIDENCE_WINDOW_S
from gridledger.security.quorum import Submission

_DEPLOY_GAS = 2_000_000
_GRANT_GAS = 120_000
_SUBMIT_GAS = 250_000  # the k-th submission also calls Registry.meterOwner/isActive/suspend
_SUSPENDER_ROLE = keccak(text="SUSPENDER_ROLE")
DETECTOR_ROLE = keccak(text="DETECTOR_ROLE")


def evidence_artifact() -> Artifact:
    """The compiled Evidence contract, packaged with the other artifacts."""
    return load_artifact("Evidence")


@dataclass(frozen=True)
class EvidenceEvent:
    """``EvidenceSubmitted`` (detector set, ``suspended`` None) or ``AnomalyConfirmed``."""

    name: str
    subject: str
    window_start_s: int
    votes: int
    block: int
    detector: str | None = None
    evidence_hash: bytes | None = None
    suspended: str | None = None


class EvidenceContract:
    """One deployed Evidence contract, next to a Ledger's Registry."""

    def __init__(self, ledger: Ledger, address: str, artifact: Artifact | None = None) -> None:
        self._ledger = ledger
        self._artifact = artifact or evidence_artifact()
        self._conn = ledger._conn
        self._contract: Contract = self._conn.w3.eth.contract(
            address=to_checksum_address(address), abi=self._artifact.abi
        )
        self._senders: dict[bytes, TxSender] = {}

    @property
    def address(self) -> str:
        return str(self._contract.address)

    @classmethod
    def deploy(
        cls,
        ledger: Ledger,
        quorum: int,
        detectors: Sequence[str],
        window_length_s: int = EVIDENCE_WINDOW_S,
        artifact: Artifact | None = None,
        detector_fund_wei: int = 10**17,
    ) -> EvidenceContract:
        """Deploy, let it suspend through the Registry, register and fund the detector nodes."""
        artifact = artifact or evidence_artifact()
        sender = ledger._sender
        registry = ledger.deployment.registry
        args = abi_encode(
            ["address", "address", "uint32", "uint64"],
            [registry, ledger.operator, quorum, window_length_s],
        )
        data = bytes.fromhex(artifact.bytecode[2:]) + args
        _, receipt = sender.transact(None, data, _DEPLOY_GAS, "deploy Evidence")
        contract = cls(ledger, str(receipt["contractAddress"]), artifact)
        registry_contract = ledger._c.registry
        contract._operator_call(registry_contract, "grantRole", [_SUSPENDER_ROLE, contract.address])
        for detector in detectors:
            contract._operator_call(contract._contract, "grantRole", [DETECTOR_ROLE, detector])
            ledger.fund_eth(detector, detector_fund_wei)
        return contract

    def submit(self, detector_key: bytes, submission: Submission) -> TxResult:
        """``submitEvidence`` from the detector's own key; reverts as ContractRevert by name."""
        sender = self._senders.get(detector_key)
        if sender is None:
            sender = TxSender(self._conn, detector_key, self._ledger.stats)
            self._senders[detector_key] = sender
        data = self._encode(
            "submitEvidence",
            [submission.subject, submission.window_start_s, submission.evidence_hash],
        )
        try:
            result, _ = sender.transact(self.address, data, _SUBMIT_GAS, "submitEvidence")
        except ContractRevert as exc:
            raise self._named(exc) from None
        return result

    def votes(self, subject: str, window_start_s: int) -> int:
        return int(self._read("votes", subject, window_start_s))

    def is_confirmed(self, subject: str, window_start_s: int) -> bool:
        return bool(self._read("isConfirmed", subject, window_start_s))

    def evidence_of(self, subject: str, window_start_s: int, detector: str) -> bytes:
        return bytes(self._read("evidenceOf", subject, window_start_s, detector))

    def events(self, from_block: int = 0) -> list[EvidenceEvent]:
        """Every submission and confirmation since ``from_block``, in chain order."""
        found: list[EvidenceEvent] = []
        for name in ("EvidenceSubmitted", "AnomalyConfirmed"):
            found.extend(_event(name, log) for log in self._logs(name, from_block))
        found.sort(key=lambda e: (e.block, e.name != "EvidenceSubmitted"))
        return found

    def _logs(self, name: str, from_block: int) -> list[Any]:
        event = self._contract.events[name]()

        def fetch() -> list[Any]:
            return list(event.get_logs(from_block=from_block))

        return list(self._conn.call(fetch))

    def _operator_call(self, contract: Contract, function: str, args: list[Any]) -> TxResult:
        data = bytes.fromhex(contract.encode_abi(function, args=args)[2:])
        result, _ = self._ledger._sender.transact(contract.address, data, _GRANT_GAS, function)
        return result

    def _encode(self, function: str, args: list[Any]) -> bytes:
        return bytes.fromhex(self._contract.encode_abi(function, args=args)[2:])

    def _read(self, function: str, *args: Any) -> Any:
        call = self._contract.functions[function](*args)
        return self._conn.call(lambda: call.call())

    def _named(self, exc: ContractRevert) -> ContractRevert:
        """Name Evidence's custom errors, which the ledger's shared error table may not know."""
        if exc.error_name != "UnknownError" or not exc.error_args:
            return exc
        data = bytes.fromhex(str(exc.error_args[0])[2:])
        for entry in self._artifact.abi:
            if entry["type"] != "error":
                continue
            types = [p["type"] for p in entry["inputs"]]
            if keccak(text=f"{entry['name']}({','.join(types)})")[:4] == data[:4]:
                values = abi_decode(types, data[4:])
                return ContractRevert(entry["name"], tuple(_plain(v) for v in values), exc.tx_hash)
        return exc


def _event(name: str, log: Any) -> EvidenceEvent:
    args = log["args"]
    event = EvidenceEvent(
        name,
        to_checksum_address(args["subject"]),
        int(args["windowStartS"]),
        int(args["votes"]),
        int(log["blockNumber"]),
    )
    if name == "EvidenceSubmitted":
        detector = to_checksum_address(args["detector"])
        return replace(event, detector=detector, evidence_hash=bytes(args["evidenceHash"]))
    suspended = to_checksum_address(args["suspended"])
    return replace(event, suspended=None if int(suspended, 16) == 0 else suspended)


def _plain(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return value
