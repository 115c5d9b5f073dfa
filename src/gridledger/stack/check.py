"""``gridledger node --check``: rebuild the market state from the chain, compare with the store.

The chain is the record: every commitment (roots, price, volume), settlement, participant and
meter is rebuilt from the contracts' events and the Market contract's interval storage, and each
difference with the node's database is named. Nothing is written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridledger.ledger import Ledger
from gridledger.store import Store

ALL_INTERVALS = 10**9
SETTLED_EVENTS = ("IntervalSettled", "IntervalSettledByRoot")


@dataclass(frozen=True)
class ChainState:
    """What the chain says: interval commitments, settled intervals, participants, meters."""

    committed: dict[int, dict[str, Any]]
    settled: set[int]
    participants: set[str]
    meters: dict[str, str]  # meter -> owner


@dataclass
class CheckReport:
    intervals_checked: int = 0
    participants_checked: int = 0
    meters_checked: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "intervals_checked": self.intervals_checked,
            "participants_checked": self.participants_checked,
            "meters_checked": self.meters_checked,
            "differences": self.differences,
        }


def chain_state(ledger: Ledger, from_block: int = 0) -> ChainState:
    committed: dict[int, dict[str, Any]] = {}
    settled: set[int] = set()
    participants: set[str] = set()
    meters: dict[str, str] = {}
    for event in ledger.events(from_block, "latest"):
        args = event.args
        if event.name == "IntervalCommitted":
            committed[int(args["intervalStartS"])] = {
                "orders_root": _hex(args["ordersRoot"]),
                "result_root": _hex(args["resultRoot"]),
                "readings_root": _hex(args["readingsRoot"]),
                "clearing_price_micro_per_kwh": int(args["clearingPriceMicroPerKwh"]),
                "cleared_energy_wh": int(args["volumeWh"]),
            }
        elif event.name in SETTLED_EVENTS:
            settled.add(int(args["intervalStartS"]))
        elif event.name == "ParticipantAdded":
            participants.add(str(args["account"]))
        elif event.name == "MeterRegistered":
            meters[str(args["meter"])] = str(args["owner"])
    return ChainState(committed, settled, participants, meters)


def check_store_against_chain(store: Store, ledger: Ledger, from_block: int = 0) -> CheckReport:
    """Every difference between the store and the state rebuilt from the chain, by name."""
    chain = chain_state(ledger, from_block)
    report = CheckReport()
    stored = {row.interval_start_s: row for row in store.intervals(ALL_INTERVALS)}
    for start, on_chain in sorted(chain.committed.items()):
        report.intervals_checked += 1
        row = stored.get(start)
        if row is None:
            report.differences.append(f"interval {start}: committed on-chain, missing in the store")
            continue
        for name, value in on_chain.items():
            mine = getattr(row, name)
            if name == "clearing_price_micro_per_kwh" and mine is None:
                mine = 0  # no trade: the contract holds price 0
            if isinstance(mine, str):
                mine = mine.lower()
            if mine != value:
                report.differences.append(
                    f"interval {start}: {name} is {mine} in the store, {value} on-chain"
                )
        settled_on_chain = start in chain.settled
        if settled_on_chain != (row.status == "settled"):
            report.differences.append(
                f"interval {start}: status {row.status} in the store, "
                f"{'settled' if settled_on_chain else 'not settled'} on-chain"
            )
    for start, row in sorted(stored.items()):
        if row.status in ("committed", "settled") and start not in chain.committed:
            report.differences.append(
                f"interval {start}: {row.status} in the store, never committed on-chain"
            )
    _compare_accounts(store, chain, report)
    return report


def _compare_accounts(store: Store, chain: ChainState, report: CheckReport) -> None:
    stored_participants = {p.address for p in store.participants()}
    report.participants_checked = len(chain.participants | stored_participants)
    for address in sorted(chain.participants - stored_participants):
        report.differences.append(f"participant {address}: registered on-chain, not in the store")
    for address in sorted(stored_participants - chain.participants):
        report.differences.append(f"participant {address}: in the store, not registered on-chain")
    stored_meters = {m.address: m.owner for m in store.meters()}
    report.meters_checked = len(chain.meters.keys() | stored_meters.keys())
    for meter in sorted(chain.meters.keys() | stored_meters.keys()):
        mine, theirs = stored_meters.get(meter), chain.meters.get(meter)
        if mine != theirs:
            report.differences.append(
                f"meter {meter}: owner {mine or 'none'} in the store, {theirs or 'none'} on-chain"
            )


def _hex(value: Any) -> str:
    raw = bytes(value) if not isinstance(value, str) else bytes.fromhex(value.removeprefix("0x"))
    return "0x" + raw.hex()
