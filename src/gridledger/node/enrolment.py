"""Enrol thousands of participants in a few transactions: batched registry and escrow calls.

One ``addParticipants``, ``registerMeters`` and ``depositForMany`` call carries as many accounts
as fit a share of the block gas limit (``Ledger.batch_size``), so 10,000 households need a
handful of transactions instead of 30,000. Safe to run again after a crash: accounts the chain
already knows are not registered twice, and the store rows follow the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gridledger.ledger import Ledger, Role
from gridledger.store import Meter, Participant, Store

# progress(step, done, total): step is "participants", "meters" or "deposits"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Enrolment:
    """One household: its account, role and grid bus, its meter, and its first deposit."""

    address: str
    role: Role
    grid_node: int
    label: str
    meter: str
    rated_power_w: int
    deposit_micro: int


def enrol_many(
    ledger: Ledger, store: Store, enrolments: Sequence[Enrolment], progress: Progress | None = None
) -> None:
    """Register every participant and meter on-chain and in the store, then escrow deposits."""

    def report(step: str, total: int) -> Callable[[int], None] | None:
        return None if progress is None else (lambda done: progress(step, done, total))

    known = ledger.accounts_view([e.address for e in enrolments])
    new = [e for e in enrolments if known[e.address].role == Role.NONE]
    ledger.add_participants(
        [e.address for e in new],
        [e.role for e in new],
        [e.grid_node for e in new],
        report("participants", len(new)),
    )
    stored = {p.address for p in store.participants()}
    for e in enrolments:
        if e.address not in stored:
            store.add_participant(Participant(e.address, e.role.name.lower(), e.grid_node, e.label))
    have_meters = {m.address for m in store.meters()}
    # A meter is stored right after its batch is mined: one not in the store may still be on
    # chain after a crash, so only those few are asked about one by one.
    fresh = [e for e in enrolments if e.meter not in have_meters]
    unsure = [e for e in fresh if ledger.meter_owner(e.meter) is not None] if have_meters else []
    to_register = [e for e in fresh if e not in unsure]
    ledger.register_meters(
        [e.meter for e in to_register],
        [e.address for e in to_register],
        report("meters", len(to_register)),
    )
    for e in fresh:
        store.add_meter(Meter(e.meter, e.address, e.rated_power_w))
    # An empty escrow gets its deposit: after a crash the batches already mined are not paid twice.
    funded = [e for e in enrolments if e.deposit_micro > 0 and known[e.address].escrow_micro == 0]
    ledger.deposit_for_many(
        [e.address for e in funded],
        [e.deposit_micro for e in funded],
        report("deposits", len(funded)),
    )
