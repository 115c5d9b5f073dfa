"""k-of-n quorum over real detector findings: one liar of five never confirms, k honest nodes do."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.eip712 import Domain, key_from_seed
from gridledger.errors import AuthorizationError, ConflictError, ValidationError
from gridledger.iotools.simbench import PROFILE_INTERVAL_S
from gridledger.security.attacks import AttackSpec, inject
from gridledger.security.data import Episode
from gridledger.security.evidence import EVIDENCE_WINDOW_S, DetectorNode, SignedEvidence
from gridledger.security.findings import meter_findings, sign_findings
from gridledger.security.meter_detector import MeterDetector
from gridledger.security.quorum import QuorumBook, QuorumRule, Submission, confirmations

DOMAIN = Domain("gridledger-evidence", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
NODES = tuple(
    DetectorNode(name, key_from_seed(f"detector:{name}"), DOMAIN)
    for name in ("community operator", "grid operator", "auditor", "dso", "liar")
)
HONEST, LIAR = NODES[:4], NODES[4]
YEAR_START_S = 1_451_606_400  # 2016-01-01T00:00Z, the SimBench reference year
THEFT = AttackSpec("scaling 40% down", "scaling", 0.6, 0.6)


def rule(k: int = 3) -> QuorumRule:
    return QuorumRule(k, frozenset(node.address for node in NODES))


def attacked_episode(ep: Episode) -> tuple[np.ndarray, set[str], int]:
    rng = np.random.default_rng(11)
    rows = rng.choice(ep.n_meters, size=ep.n_meters // 4, replace=False)
    injected = inject(ep.energy_wh, ep.profile, {int(r): THEFT for r in rows}, rng)
    start_s = YEAR_START_S + ep.start_interval * PROFILE_INTERVAL_S
    return injected.reported_wh, {ep.meter[int(r)] for r in rows}, start_s


def lies(ep: Episode, start_s: int) -> list[SignedEvidence]:
    """The liar accuses every meter on every judged day."""
    days = range(start_s // EVIDENCE_WINDOW_S + 28, start_s // EVIDENCE_WINDOW_S + 35)
    return [
        LIAR.evidence(meter, day * EVIDENCE_WINDOW_S + 1, "meter_stream", "forged", 1.0, {})
        for meter in ep.meter
        for day in days
    ]


def test_one_liar_of_five_never_confirms_and_honest_nodes_do(
    detector: MeterDetector, held_out: list[Episode]
) -> None:
    ep = held_out[0]
    reported, attacked, start_s = attacked_episode(ep)
    findings = meter_findings(detector, reported, ep.meter, start_s)
    honest = [e for node in HONEST for e in sign_findings(node, findings, detector.version)]
    submissions = [Submission.of(e) for e in lies(ep, start_s) + honest]
    confirmed = {(c.subject, c.window_start_s) for c in confirmations(submissions, rule())}
    honest_keys = {(e.evidence.subject, e.evidence.window_start_s) for e in honest}
    assert confirmed == honest_keys  # every confirmation has honest support, every finding one
    assert len({subject for subject, _ in confirmed} & attacked) >= 0.8 * len(attacked)
    liar_only = {(s.subject, s.window_start_s) for s in submissions} - honest_keys
    assert liar_only and not liar_only & confirmed


def test_fewer_than_k_honest_nodes_do_not_confirm(
    detector: MeterDetector, held_out: list[Episode]
) -> None:
    ep = held_out[0]
    reported, _, start_s = attacked_episode(ep)
    findings = meter_findings(detector, reported, ep.meter, start_s)
    two = [Submission.of(e) for node in HONEST[:2] for e in sign_findings(node, findings, "v")]
    assert findings and confirmations(two, rule(3)) == []
    three = two + [Submission.of(e) for e in sign_findings(HONEST[2], findings, "v")]
    assert len(confirmations(three, rule(3))) == len(findings)


def test_book_rejects_what_the_contract_reverts() -> None:
    book = QuorumBook(rule())
    good = Submission(HONEST[0].address, "0x" + "11" * 20, 19_000 * EVIDENCE_WINDOW_S, b"\1" * 32)
    book.submit(good)
    with pytest.raises(ConflictError):
        book.submit(good)
    with pytest.raises(AuthorizationError):
        book.submit(Submission("0x" + "22" * 20, good.subject, good.window_start_s, b"\1" * 32))
    with pytest.raises(ValidationError):
        book.submit(
            Submission(HONEST[1].address, good.subject, good.window_start_s + 1, b"\1" * 32)
        )
    with pytest.raises(ValidationError):
        QuorumRule(6, frozenset(node.address for node in NODES))


@settings(max_examples=200, deadline=None)
@given(
    liar=st.integers(0, 4),
    culprits=st.sets(st.integers(0, 9), max_size=4),
    accusations=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 2)), max_size=40),
)
def test_property_one_liar_of_five_with_k3_only_confirms_honest_findings(
    liar: int, culprits: set[int], accusations: list[tuple[int, int]]
) -> None:
    nodes = [node.address for node in NODES]
    subjects = ["0x" + f"{i:040x}" for i in range(10)]
    window = 19_000 * EVIDENCE_WINDOW_S
    honest = [
        Submission(nodes[n], subjects[c], window, b"\2" * 32)
        for n in range(5)
        if n != liar
        for c in sorted(culprits)
    ]
    lying = [
        Submission(nodes[liar], subjects[s], window + d * EVIDENCE_WINDOW_S, b"\3" * 32)
        for s, d in accusations
    ]
    confirmed = {(c.subject, c.window_start_s) for c in confirmations(lying + honest, rule())}
    assert confirmed == {(subjects[c], window) for c in culprits}
