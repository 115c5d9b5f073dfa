"""Re-execution of one interval: the check a verifier runs before it signs an attestation.

Given everything the operator says about an interval (an :class:`IntervalPackage`: the signed
book, the signed readings, its trade lines, its settlement and the attestation it asks for) and
what the verifier read from the chain itself (:class:`ChainFacts`: the committed roots, the
registry's meter owners, escrow, the previous netting root), :func:`reexecute` checks every
signature and every leaf against the committed roots, recomputes clearing and settlement with
the project's own pure functions, and returns the attestation to sign only if every byte
matches; otherwise a :class:`Dispute` naming the line, what was expected and what was claimed.

Pure: no store, chain or network; the callers read the package and the facts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridledger.eip712 import Domain, recover_address
from gridledger.errors import ValidationError
from gridledger.ledger.entries import pack_entries
from gridledger.ledger.netting import NettingBook
from gridledger.market import (
    Book,
    SignedOrder,
    TradeLine,
    clear,
    orders_root,
    result_lines,
)
from gridledger.market.commitments import lines_root
from gridledger.metering import SignedReading, reading_digest, readings_root
from gridledger.privacy.salts import LeafKey
from gridledger.settlement import Delivery, Tariffs, settle_with_delivery
from gridledger.settlement.statements import settled_trades
from gridledger.verifier.attestation import (
    IntervalAttestation,
    settlement_hash_of_entries,
    settlement_hash_of_root,
)


@dataclass(frozen=True)
class MarketRules:
    """The public rules both the operator and every verifier apply (from the deployment)."""

    domain: Domain
    mechanism: str
    grid_fee_micro_per_kwh: int
    tariffs: Tariffs
    grid_operator: str
    supplier: str


@dataclass(frozen=True)
class NettingBase:
    """The netting book before this interval: the newest posted root and its cumulative nets."""

    root_seq: int  # 0: no root posted yet
    cumulative_micro: Mapping[str, int]


@dataclass(frozen=True)
class IntervalPackage:
    """Everything the operator publishes about one committed interval, for its verifiers.

    ``netting`` is None on the direct batch path (``settleInterval``) and the book's previous
    state on the netting-root path (``settleIntervalRoot``).
    """

    interval_start_s: int
    orders: tuple[SignedOrder, ...]
    readings: tuple[SignedReading, ...]
    meter_owners: Mapping[str, str]
    trades: tuple[TradeLine, ...]
    deltas_micro: Mapping[str, int]
    attestation: IntervalAttestation
    netting: NettingBase | None = None


@dataclass(frozen=True)
class ChainFacts:
    """What a verifier reads from the chain itself, never from the operator.

    ``escrow_micro`` is each involved account's spendable escrow before the interval (the cap
    the settlement applies to imbalance charges); ``netting_root`` is the root the chain holds
    at ``package.netting.root_seq`` (root path only, None before the first root).
    """

    orders_root: bytes
    result_root: bytes
    readings_root: bytes
    meter_owners: Mapping[str, str | None]
    escrow_micro: Mapping[str, int] | None
    netting_root: bytes | None = None


@dataclass(frozen=True)
class Dispute:
    """Why a verifier refuses to sign: which interval, which line, expected vs claimed."""

    interval_start_s: int
    line: str
    expected: str
    claimed: str

    @property
    def reason(self) -> str:
        return (
            f"interval {self.interval_start_s}: {self.line}: expected {self.expected}, "
            f"claimed {self.claimed}"
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "interval_start_s": self.interval_start_s,
                "line": self.line,
                "expected": self.expected,
                "claimed": self.claimed,
                "reason": self.reason,
            },
            sort_keys=True,
        )


class _Mismatch(Exception):
    def __init__(self, line: str, expected: object, claimed: object) -> None:
        super().__init__(line)
        self.line, self.expected, self.claimed = line, _shown(expected), _shown(claimed)


def _shown(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _require(line: str, expected: object, claimed: object) -> None:
    if expected != claimed:
        raise _Mismatch(line, expected, claimed)


def reexecute(
    package: IntervalPackage, facts: ChainFacts, rules: MarketRules, leaf_key: LeafKey
) -> IntervalAttestation | Dispute:
    """The attestation to sign when the operator's claims all recompute, else the first Dispute.

    ``leaf_key`` is the operator's leaf-salt secret (shared with its verifiers): the committed
    roots are over salted leaves (see gridledger.privacy.salts).
    """
    try:
        return _reexecute(package, facts, rules, leaf_key)
    except _Mismatch as m:
        return Dispute(package.interval_start_s, m.line, m.expected, m.claimed)


def _reexecute(
    package: IntervalPackage, facts: ChainFacts, rules: MarketRules, leaf_key: LeafKey
) -> IntervalAttestation:
    start_s = package.interval_start_s
    _check_orders(package.orders, start_s, rules.domain)
    book_root = orders_root([s.order for s in package.orders], leaf_key)
    _require("orders_root (the book against the committed root)", facts.orders_root, book_root)
    _check_readings(package, facts, rules.domain)
    read_root = readings_root([s.reading for s in package.readings], leaf_key)
    _require("readings_root (readings against the committed root)", facts.readings_root, read_root)

    orders = [s.order for s in package.orders]
    result = clear(Book.from_orders(orders), rules.mechanism, rules.grid_fee_micro_per_kwh)
    lines = result_lines(result)
    _compare_trades(lines, package.trades)
    trade_root = lines_root(lines, leaf_key)
    _require(
        "result_root (recomputed trades against the committed root)", facts.result_root, trade_root
    )

    deltas = _settle(package, lines, facts, rules)
    _compare_deltas(deltas, package.deltas_micro)
    own = IntervalAttestation(
        start_s,
        book_root,
        trade_root,
        read_root,
        _settlement_hash(package, deltas, facts, rules.grid_operator),
    )
    claimed = package.attestation
    for field in ("interval_start_s", "orders_root", "result_root", "readings_root"):
        _require(f"attestation {field}", getattr(own, field), getattr(claimed, field))
    _require("attestation settlement_hash", own.settlement_hash, claimed.settlement_hash)
    return own


def _check_orders(orders: Sequence[SignedOrder], start_s: int, domain: Domain) -> None:
    seen: set[tuple[str, int]] = set()
    for signed in orders:
        o = signed.order
        line = f"order {o.participant}/{o.nonce}"
        _require(f"{line} interval_start_s", start_s, o.interval_start_s)
        _require(f"{line} signer", o.participant, _signer(o.digest(domain), signed.signature))
        if (o.participant, o.nonce) in seen:
            raise _Mismatch(f"{line} nonce", "each nonce once", "listed twice")
        seen.add((o.participant, o.nonce))


def _check_readings(package: IntervalPackage, facts: ChainFacts, domain: Domain) -> None:
    seen: set[tuple[str, int]] = set()
    for signed in package.readings:
        r = signed.reading
        line = f"reading {r.meter}/{r.sequence}"
        if (r.meter, r.sequence) in seen:
            raise _Mismatch(f"{line} sequence", "each sequence once", "listed twice")
        seen.add((r.meter, r.sequence))
        _require(f"{line} interval_start_s", package.interval_start_s, r.interval_start_s)
        _require(f"{line} signer", r.meter, _signer(reading_digest(r, domain), signed.signature))
        registered = facts.meter_owners.get(r.meter)
        _require(f"{line} owner (registry)", registered, package.meter_owners.get(r.meter))


def _signer(digest: bytes, signature: bytes) -> str:
    try:
        return recover_address(digest, signature)
    except ValidationError as exc:
        return f"no signer ({exc.reason})"


def _compare_trades(expected: Sequence[TradeLine], claimed: Sequence[TradeLine]) -> None:
    for i, (mine, theirs) in enumerate(zip(expected, claimed, strict=False)):
        if mine != theirs:
            raise _Mismatch(f"trade {i} ({mine.buyer} buys from {mine.seller})", mine, theirs)
    _require("trade count", len(expected), len(claimed))


def _deliveries(package: IntervalPackage) -> dict[str, Delivery]:
    totals: dict[str, tuple[int, int]] = {}
    for s in package.readings:
        owner = package.meter_owners[s.reading.meter]
        imported, exported = totals.get(owner, (0, 0))
        totals[owner] = (imported + s.reading.imported_wh, exported + s.reading.exported_wh)
    return {owner: Delivery(i, e) for owner, (i, e) in totals.items()}


def _settle(
    package: IntervalPackage, lines: Sequence[TradeLine], facts: ChainFacts, rules: MarketRules
) -> dict[str, int]:
    settlement = settle_with_delivery(
        settled_trades(lines),
        _deliveries(package),
        rules.tariffs,
        grid_operator=rules.grid_operator,
        supplier=rules.supplier,
        escrow_micro=facts.escrow_micro,
    )
    return settlement.deltas_micro


def _compare_deltas(expected: Mapping[str, int], claimed: Mapping[str, int]) -> None:
    for account in sorted(set(expected) | set(claimed)):
        _require(
            f"settlement delta of {account}", expected.get(account, 0), claimed.get(account, 0)
        )


def _settlement_hash(
    package: IntervalPackage, deltas: Mapping[str, int], facts: ChainFacts, grid_operator: str
) -> bytes:
    base = package.netting
    if base is None:
        return settlement_hash_of_entries(pack_entries(deltas))
    book = netting_book_at(base)
    if base.root_seq:
        _require(
            f"netting root {base.root_seq} (previous cumulative nets)",
            facts.netting_root,
            book.root(base.root_seq).root,
        )
    posted = book.prepare(
        base.root_seq + 1, package.interval_start_s, _leaves(deltas, base, grid_operator)
    )
    return settlement_hash_of_root(
        posted.root, posted.moved_micro, posted.moved_micro, len(posted.cumulative_micro)
    )


def _leaves(deltas: Mapping[str, int], base: NettingBase, grid_operator: str) -> Mapping[str, int]:
    """The rule of NettingState.prepare: a tree needs a leaf, so before anyone has a root-path
    net the grid operator's zero is it (the Market refuses a zero root)."""
    if not deltas and base.root_seq == 0:
        return {grid_operator: 0}
    return deltas


def netting_book_at(base: NettingBase) -> NettingBook:
    """A netting book holding just ``base`` as its newest root (for the next root's hash)."""
    if base.root_seq == 0:
        return NettingBook()
    text = json.dumps(
        {
            "keep_roots": 1,
            "roots": [
                {
                    "root_seq": base.root_seq,
                    "interval_start_s": 0,
                    "moved_micro": 0,
                    "cumulative_micro": dict(base.cumulative_micro),
                }
            ],
        }
    )
    return NettingBook.from_json(text)


def void_attestation(
    package: IntervalPackage, facts: ChainFacts, grid_operator: str
) -> IntervalAttestation:
    """The attestation that voids a disputed interval: its committed roots, nothing moved.

    The Market settles in commit order, so a disputed interval is closed by settling it empty
    (direct path: no entries; root path: the previous nets re-posted under the next root), which
    verifiers co-sign only for an interval their own re-execution disputed.
    """
    base = package.netting
    if base is None:
        settlement_hash = settlement_hash_of_entries([])
    else:
        leaves = _leaves({}, base, grid_operator)
        posted = netting_book_at(base).prepare(base.root_seq + 1, package.interval_start_s, leaves)
        count = len(posted.cumulative_micro)
        settlement_hash = settlement_hash_of_root(posted.root, 0, 0, count)
    return IntervalAttestation(
        package.interval_start_s,
        facts.orders_root,
        facts.result_root,
        facts.readings_root,
        settlement_hash,
    )
