"""Attestations from verifier processes over HTTP: the operator node's side.

``gridledger verifier`` processes POST their signatures to the node
(``POST /v1/verifier/intervals/{start}/attestations``); :class:`AttestationBox` keeps each in
the store (so a restarted node still has them) and :class:`RemoteAttestations` is the
operator's :class:`~gridledger.verifier.panel.AttestationSource` that waits, bounded, until a
quorum of registered verifiers signed exactly the attestation the operator will settle with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from gridledger.eip712 import Domain
from gridledger.errors import AttestationRefused, AuthorizationError, ValidationError
from gridledger.store import Store
from gridledger.verifier.attestation import IntervalAttestation, recover_attestation_signer
from gridledger.verifier.wire import attestation_from_json, attestation_to_json, hex0x, unhex

_META_PREFIX = "verifier.attestation"
VERIFIER_SET_KEY = "verifier.set"
DEFAULT_TIMEOUT_S = 60.0
_POLL_S = 0.1


def _key(start_s: int, signer: str) -> str:
    return f"{_META_PREFIX}.{start_s}.{signer}"


def remember_verifier_set(store: Store, addresses: Sequence[str]) -> None:
    """Keep the Registry's verifier set in the store for the API: its routes must not wait
    for the chain client, which the operator holds while it collects attestations."""
    store.set_meta(VERIFIER_SET_KEY, json.dumps(list(addresses)))


def known_verifier_set(store: Store) -> list[str]:
    """The verifier set as last read from the Registry (empty before the first read)."""
    return [str(a) for a in json.loads(store.meta(VERIFIER_SET_KEY) or "[]")]


class AttestationBox:
    """The signatures verifiers POSTed, one per (interval, verifier), kept in the store."""

    def __init__(self, store: Store, domain: Domain, verifiers: Callable[[], Sequence[str]]):
        self.store, self.domain, self.verifiers = store, domain, verifiers

    def add(self, att: IntervalAttestation, signature: bytes, caller: str) -> str:
        """Store ``caller``'s signature over ``att``; the signer must be the caller, a verifier."""
        signer = recover_attestation_signer(self.domain, att, signature)
        if signer != caller:
            raise AuthorizationError(f"signature: signed by {signer}, not by you ({caller})")
        if signer not in set(self.verifiers()):
            raise AuthorizationError(f"{signer} is not in the Registry's verifier set")
        body = {"attestation": attestation_to_json(att), "signature": hex0x(signature)}
        self.store.set_meta(_key(att.interval_start_s, signer), json.dumps(body, sort_keys=True))
        return signer

    def signatures(self, att: IntervalAttestation) -> dict[str, bytes]:
        """Signer -> signature of every registered verifier that signed exactly ``att``."""
        found: dict[str, bytes] = {}
        for verifier in self.verifiers():
            text = self.store.meta(_key(att.interval_start_s, verifier))
            if text is None:
                continue
            body = json.loads(text)
            if attestation_from_json(body["attestation"]) == att:
                found[verifier] = unhex(body["signature"], "signature", 65)
        return found

    def signed_by(self, start_s: int) -> dict[str, IntervalAttestation]:
        """What each verifier signed for ``start_s`` (the honest attestation or a void)."""
        out: dict[str, IntervalAttestation] = {}
        for verifier in self.verifiers():
            text = self.store.meta(_key(start_s, verifier))
            if text is not None:
                out[verifier] = attestation_from_json(json.loads(text)["attestation"])
        return out


class RemoteAttestations:
    """AttestationSource: wait up to ``timeout_s`` for ``quorum`` stored signatures over att."""

    def __init__(
        self,
        box: AttestationBox,
        quorum: Callable[[], int],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValidationError("timeout_s", "must be positive")
        self.box, self.quorum, self.timeout_s, self.clock = box, quorum, timeout_s, clock

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        need = self.quorum()
        deadline = self.clock() + self.timeout_s
        while True:
            found = self.box.signatures(att)
            if len(found) >= need:
                # The Market wants signatures by strictly ascending signer; k of them suffice.
                ascending = sorted(found, key=lambda a: int(a, 16))[:need]
                return [found[a] for a in ascending]
            if self.clock() >= deadline:
                raise AttestationRefused(
                    f"interval {att.interval_start_s}: {len(found)} of {need} verifiers attested "
                    f"within {self.timeout_s:g} s"
                )
            time.sleep(_POLL_S)
