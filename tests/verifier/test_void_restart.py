"""A node killed right after it settled a disputed interval void resumes with the void plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridledger.node.interval import MarketOperator, SettlementPlan
from gridledger.verifier.faults import TamperingOperator
from tests.verifier.test_reexecution_check import START_S, operator, trade


class Killed(Exception):
    """The process died here."""


def kill_after_the_void_is_sent(op: MarketOperator, monkeypatch: pytest.MonkeyPatch) -> None:
    real = op._settle_on_chain

    def settle_then_die(start_s: int, plan: SettlementPlan, settled: bool) -> Any:
        sent = real(start_s, plan, settled)
        if not plan.settlement.deltas_micro:  # the void went on-chain; nothing recorded yet
            raise Killed
        return sent

    monkeypatch.setattr(op, "_settle_on_chain", settle_then_die)


@pytest.mark.parametrize("path", ["direct", "root"])
def test_a_restart_after_a_void_settlement_records_the_void(
    tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = operator(tmp_path, path, TamperingOperator)
    first, result = trade(op, 0)
    op.settle_interval(first, result)  # type: ignore[arg-type]
    assert isinstance(op, TamperingOperator)
    op.tamper_from_s = START_S + 900
    tampered, result = trade(op, 1)
    kill_after_the_void_is_sent(op, monkeypatch)
    with pytest.raises(Killed):
        op.settle_interval(tampered, result)  # type: ignore[arg-type]
    assert op.ledger.interval(tampered).settled
    assert op.store.interval_status(tampered) != "settled"

    # The restarted process: same store and chain, a new operator that lies the same way.
    again = TamperingOperator(op.store, op.ledger, op.settings, op.supplier, op.attestations)
    again.tamper_from_s, again.tampered_s = op.tamper_from_s, op.tampered_s
    outcome = again.settle_interval(tampered, again.clear_interval(tampered))
    assert outcome.settlement.deltas_micro == {} and outcome.lines == ()
    assert outcome.settle.tx_hash == "" or path == "direct"  # recorded, not sent again
    assert again.store.interval_status(tampered) == "settled"
    assert again.store.trades_in_interval(tampered) == []
    last, result = trade(again, 2)
    again.settle_interval(last, result)  # type: ignore[arg-type]
    assert again.ledger.interval(last).settled
