"""Faults the demo injects to show the verifier quorum at work (``gridledger demo --fault``).

* ``operator-tamper``: the operator inflates one trade of one interval (its committed result
  and its settlement both carry the inflated trade). Every verifier's re-execution disputes it.
* ``verifier-down``: one verifier never answers.
* ``verifier-lying``: one verifier signs an attestation with a wrong result root.

:class:`PanelWithFaults` is what the operator runs: it asks the in-process verifiers, then keeps
only the signatures that recover, over exactly the attestation it will settle with, to distinct
registered verifiers, in the ascending order the Market wants (a lying signature is dropped
here instead of reverting the settlement on-chain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from eth_utils.crypto import keccak

from gridledger.eip712 import Domain, address_of
from gridledger.errors import ValidationError
from gridledger.market import ClearingResult
from gridledger.node.interval import MarketOperator
from gridledger.verifier.attestation import (
    IntervalAttestation,
    recover_attestation_signer,
    sign_attestation,
)
from gridledger.verifier.panel import InProcessVerifiers

OPERATOR_TAMPER, VERIFIER_DOWN, VERIFIER_LYING = (
    "operator-tamper",
    "verifier-down",
    "verifier-lying",
)
FAULTS = (OPERATOR_TAMPER, VERIFIER_DOWN, VERIFIER_LYING)
TAMPER_EXTRA_WH = 500  # what the operator adds to the first trade of the tampered interval


def inflated(result: ClearingResult, extra_wh: int = TAMPER_EXTRA_WH) -> ClearingResult:
    """``result`` with its first trade ``extra_wh`` larger (unchanged when nothing traded)."""
    if len(result.trades) == 0:
        return result
    energy = np.array(result.trades.energy_wh, dtype=np.int64, copy=True)
    energy[0] += extra_wh
    trades = dataclasses.replace(result.trades, energy_wh=energy)
    return dataclasses.replace(
        result, trades=trades, cleared_energy_wh=result.cleared_energy_wh + extra_wh
    )


class TamperingOperator(MarketOperator):
    """An operator that inflates one trade: of the first interval from ``tamper_from_s`` on
    that has a trade (the choice is remembered, so every later look sees the same lie)."""

    tamper_from_s: int | None = None
    tampered_s: int | None = None

    def clear_interval(self, start_s: int) -> ClearingResult:
        result = super().clear_interval(start_s)
        first = self.tamper_from_s
        if (
            self.tampered_s is None
            and first is not None
            and start_s >= first
            and len(result.trades)
        ):
            self.tampered_s = start_s
        return inflated(result) if start_s == self.tampered_s else result


class PanelWithFaults:
    """AttestationSource over in-process verifier keys, some of them down or lying."""

    def __init__(
        self,
        keys: Sequence[bytes],
        check: Callable[[IntervalAttestation], None] | None,
        domain: Domain,
        down: Sequence[bytes] = (),
        lying: Sequence[bytes] = (),
    ) -> None:
        faulty = {*down, *lying}
        honest = [k for k in keys if k not in faulty]
        if not honest and not lying:
            raise ValidationError("keys", "every verifier is down")
        self.honest = InProcessVerifiers(honest, check, domain=domain) if honest else None
        self.lying = list(lying)
        self.domain = domain
        self.registered = {address_of(k) for k in keys}

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        offered = list(self.honest.collect(att)) if self.honest is not None else []
        wrong = dataclasses.replace(att, result_root=keccak(b"a lie" + att.result_root))
        offered += [sign_attestation(k, self.domain, wrong) for k in self.lying]
        return accepted_signatures(self.domain, att, offered, self.registered)


def accepted_signatures(
    domain: Domain, att: IntervalAttestation, signatures: Sequence[bytes], verifiers: set[str]
) -> list[bytes]:
    """The signatures over ``att`` by distinct ``verifiers``, by ascending signer address."""
    by_signer: dict[str, bytes] = {}
    for signature in signatures:
        try:
            signer = recover_attestation_signer(domain, att, signature)
        except ValidationError:
            continue
        if signer in verifiers:
            by_signer.setdefault(signer, signature)
    return [by_signer[a] for a in sorted(by_signer, key=lambda a: int(a, 16))]
