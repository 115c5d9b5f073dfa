"""Attestations from verifier processes over HTTP: the operator node's side.

``gridledger verifier`` processes POST their signatures to the node
(``POST /v1/verifier/intervals/{start}/attestations``); :class:`AttestationBox` keeps each in
the store (so a restarted node still has them) and :class:`RemoteAttestations` is the
operator's :class:`~gridledger.verifier.panel.AttestationSource` that waits, bounded, until a
quorum of registered verifiers signed exactly the attestation the operator will settle with.
The node's scheduler uses :meth:`RemoteAttestations.poll`, which never waits: it may not hold
the chain lock while verifiers, who need the node's API, are still re-executing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence

from gridledger.eip712 import Domain
from gridledger.errors import (
    AttestationPending,
    AttestationRefused,
    AuthorizationError,
    ValidationError,
)
from gridledger.store import Store
from gridledger.verifier.attestation import IntervalAttestation, recover_attestation_signer
from gridledger.verifier.wire import attestation_from_json, attestation_to_json, hex0x, unhex

log = logging.getLogger(__name__)
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

    def signatures(
        self, att: IntervalAttestation, verifiers: Sequence[str] | None = None
    ) -> dict[str, bytes]:
        """Signer -> signature of every registered verifier (``verifiers``: the set already
        read) that signed exactly ``att``."""
        found: dict[str, bytes] = {}
        for verifier in self.verifiers() if verifiers is None else verifiers:
            text = self.store.meta(_key(att.interval_start_s, verifier))
            if text is None:
                continue
            body = json.loads(text)
            if attestation_from_json(body["attestation"]) == att:
                found[verifier] = unhex(body["signature"], "signature", 65)
        return found

    def signed_by(
        self, start_s: int, verifiers: Sequence[str] | None = None
    ) -> dict[str, IntervalAttestation]:
        """What each verifier signed for ``start_s`` (the honest attestation or a void)."""
        out: dict[str, IntervalAttestation] = {}
        for verifier in self.verifiers() if verifiers is None else verifiers:
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
        self._first_asked: dict[IntervalAttestation, float] = {}
        self._need: int | None = None  # the threshold as last read by poll

    def ready(self, att: IntervalAttestation, verifiers: Sequence[str]) -> bool:
        """Whether :meth:`poll` would now settle ``att`` or refuse it rather than say pending,
        from the store alone: ``verifiers`` is the set as last read, the threshold the one the
        last poll read (before any poll: True, poll then)."""
        need = self._need
        if need is None:
            return True
        found = self.box.signatures(att, verifiers)
        signed = self.box.signed_by(att.interval_start_s, verifiers).values()
        other = sum(attestation != att for attestation in signed)
        return len(found) >= need or len(verifiers) - other < need

    def poll(self, att: IntervalAttestation) -> list[bytes]:
        """The quorum's signatures over ``att`` now, without waiting.

        AttestationRefused when the quorum can no longer be reached (so many verifiers signed
        another attestation, a void, that too few are left); AttestationPending otherwise. A
        quorum missing after ``timeout_s`` is logged, never refused: silence is not a dispute,
        and voiding needs the verifiers' own void signatures (the exit covers a dead panel).
        """
        need = self._need = self.quorum()
        registered = list(self.box.verifiers())  # one read of the set per poll (chain calls)
        found = self.box.signatures(att, registered)
        if len(found) >= need:
            self._first_asked.pop(att, None)
            return _ascending(found, need)
        signed = self.box.signed_by(att.interval_start_s, registered).values()
        other = sum(attestation != att for attestation in signed)
        if len(registered) - other < need:
            self._first_asked.pop(att, None)
            raise AttestationRefused(
                f"interval {att.interval_start_s}: {other} of {len(registered)} verifiers signed "
                f"another attestation; {need} cannot agree on the operator's"
            )
        first = self._first_asked.setdefault(att, self.clock())
        waited_s = self.clock() - first
        if waited_s >= self.timeout_s:
            log.warning(
                "interval %s: %s of %s verifiers attested after %.0f s; still waiting",
                att.interval_start_s,
                len(found),
                need,
                waited_s,
            )
            self._first_asked[att] = self.clock()  # warn once per timeout, not every tick
        raise AttestationPending(
            f"interval {att.interval_start_s}: {len(found)} of {need} verifiers attested so far"
        )

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        need = self.quorum()
        deadline = self.clock() + self.timeout_s
        while True:
            found = self.box.signatures(att)
            if len(found) >= need:
                return _ascending(found, need)
            if self.clock() >= deadline:
                raise AttestationRefused(
                    f"interval {att.interval_start_s}: {len(found)} of {need} verifiers attested "
                    f"within {self.timeout_s:g} s"
                )
            time.sleep(_POLL_S)


def _ascending(found: dict[str, bytes], need: int) -> list[bytes]:
    """The Market wants signatures by strictly ascending signer; ``need`` of them suffice."""
    return [found[a] for a in sorted(found, key=lambda a: int(a, 16))[:need]]
