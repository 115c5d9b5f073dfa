"""Orders: the signed limit orders prosumers submit for one 15-minute interval.

An order is an EIP-712 struct ``Order(address participant,uint8 side,uint64 energyWh,
uint64 priceMicroPerKwh,uint64 intervalStartS,uint64 nonce)`` with side 0 = buy, 1 = sell.
Verification is pure: everything it needs from the store and the chain arrives through an
:class:`OrderContext`, so the same function runs in the node, in tests and in auditors' tools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gridledger.eip712 import (
    Domain,
    StructType,
    address_of,
    is_checksummed,
    recover_address,
    sign_digest,
    typed_digest,
)
from gridledger.errors import OrderRejected, ValidationError

Side = Literal["buy", "sell"]
SIDE_CODES: Mapping[str, int] = {"buy": 0, "sell": 1}
BUY, SELL = 0, 1
_UINT64_MAX = (1 << 64) - 1
# Offline clearing (researchers, notebooks) names participants in words: "alice", "house-7".
PLAIN_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")

ORDER_TYPE = StructType(
    "Order",
    (
        ("participant", "address"),
        ("side", "uint8"),
        ("energyWh", "uint64"),
        ("priceMicroPerKwh", "uint64"),
        ("intervalStartS", "uint64"),
        ("nonce", "uint64"),
    ),
)


def _require_uint(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"must be an integer, got {type(value).__name__}")
    if not minimum <= value <= _UINT64_MAX:
        raise ValidationError(name, f"must be between {minimum} and 2**64-1, got {value}")


@dataclass(frozen=True)
class Order:
    """A limit order for one interval; a buy's ``price_micro_per_kwh`` includes the grid fee.

    For the chain, ``participant`` is a checksummed address and the order is signed. Offline,
    for clearing only, it may be a plain id (``Order("alice", "buy", 500, 250_000)``); such an
    order cannot be signed, hashed or committed.
    """

    participant: str
    side: Side
    energy_wh: int
    price_micro_per_kwh: int
    interval_start_s: int = 0
    nonce: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.participant, str) or not (
            is_checksummed(self.participant)
            or (PLAIN_ID.fullmatch(self.participant) and not self.participant.startswith("0x"))
        ):
            raise ValidationError(
                "participant",
                f"not a checksummed address nor a plain id (a letter, then up to 63 letters, "
                f"digits or _.:-): {self.participant!r}",
            )
        if self.side not in SIDE_CODES:
            raise ValidationError("side", f"must be 'buy' or 'sell', got {self.side!r}")
        _require_uint("energy_wh", self.energy_wh, 1)
        _require_uint("price_micro_per_kwh", self.price_micro_per_kwh, 0)
        _require_uint("interval_start_s", self.interval_start_s, 0)
        _require_uint("nonce", self.nonce, 0)

    @property
    def side_code(self) -> int:
        return SIDE_CODES[self.side]

    @property
    def is_offline(self) -> bool:
        """Named by a plain id: it clears, but it cannot be signed or committed on-chain."""
        return not is_checksummed(self.participant)

    def struct_values(self) -> tuple[str, int, int, int, int, int]:
        """Field values in EIP-712 struct order (also the ABI order of the order's Merkle leaf)."""
        if self.is_offline:
            raise ValidationError(
                "participant",
                f"{self.participant!r} is a plain id: it clears offline, but a signed or "
                "committed order needs the participant's checksummed address",
            )
        return (
            self.participant,
            self.side_code,
            self.energy_wh,
            self.price_micro_per_kwh,
            self.interval_start_s,
            self.nonce,
        )

    def struct_hash(self) -> bytes:
        return ORDER_TYPE.hash_struct(self.struct_values())

    def digest(self, domain: Domain) -> bytes:
        return typed_digest(domain, self.struct_hash())


@dataclass(frozen=True)
class SignedOrder:
    order: Order
    signature: bytes


_ORDER_JSON_FIELDS = ("participant", "side", "energy_wh", "price_micro_per_kwh")
_ORDER_JSON_UINTS = ("interval_start_s", "nonce")


def signed_order_to_json(signed: SignedOrder) -> dict[str, Any]:
    """The wire form of a signed order (``POST /v1/orders`` and MQTT ``gridledger/orders/+``)."""
    o = signed.order
    return {
        "participant": o.participant,
        "side": o.side,
        "energy_wh": o.energy_wh,
        "price_micro_per_kwh": o.price_micro_per_kwh,
        "interval_start_s": o.interval_start_s,
        "nonce": o.nonce,
        "signature": "0x" + signed.signature.hex(),
    }


def signed_order_from_json(data: Any) -> SignedOrder:
    """Parse the wire form; raises ValidationError naming the bad field (signature unchecked)."""
    if not isinstance(data, Mapping):
        raise ValidationError("order", f"must be a JSON object, got {type(data).__name__}")
    for key in (*_ORDER_JSON_FIELDS, *_ORDER_JSON_UINTS, "signature"):
        if key not in data:
            raise ValidationError(key, "missing")
    order = Order(*(data[k] for k in _ORDER_JSON_FIELDS), *(data[k] for k in _ORDER_JSON_UINTS))
    if not order.participant.startswith("0x"):
        raise ValidationError("participant", "a signed order needs a checksummed address")
    raw = data["signature"]
    if not isinstance(raw, str) or len(raw) != 132 or not raw.startswith("0x"):
        raise ValidationError("signature", "must be 0x and 130 hex digits (65 bytes)")
    try:
        return SignedOrder(order, bytes.fromhex(raw[2:]))
    except ValueError:
        raise ValidationError("signature", "not valid hex") from None


def sign_order(order: Order, private_key: bytes, domain: Domain) -> SignedOrder:
    """Sign ``order`` with the participant's key (which must belong to ``order.participant``)."""
    if address_of(private_key) != order.participant:
        raise ValidationError("private_key", "does not belong to the order's participant")
    return SignedOrder(order, sign_digest(private_key, order.digest(domain)))


def escrow_required_micro(
    energy_wh: int, price_micro_per_kwh: int, grid_fee_micro_per_kwh: int
) -> int:
    """What a buy order reserves: energy × (price + grid fee) / 1000, rounded up to a micro-unit."""
    return -(-energy_wh * (price_micro_per_kwh + grid_fee_micro_per_kwh) // 1000)


@dataclass(frozen=True)
class ParticipantStatus:
    """What verification needs to know about a participant right now."""

    active: bool
    escrow_micro: int
    reserved_micro: int = 0  # already reserved by its other accepted buy orders this interval


class OrderContext(Protocol):
    """The node's view of the market when an order arrives (read from the store and chain)."""

    @property
    def open_interval_start_s(self) -> int | None:
        """Start of the interval accepting orders, or None when the market is closed."""

    @property
    def max_energy_wh(self) -> int: ...

    @property
    def max_price_micro_per_kwh(self) -> int: ...

    @property
    def grid_fee_micro_per_kwh(self) -> int: ...

    def participant(self, address: str) -> ParticipantStatus | None:
        """The participant's status, or None when unknown."""

    def nonce_seen(self, address: str, nonce: int) -> bool: ...


def verify_order(signed: SignedOrder, domain: Domain, context: OrderContext) -> Order:
    """Return the order when it may enter the book; raise OrderRejected(code, field, reason)."""
    order = signed.order
    _check_signature(signed, domain)
    status = context.participant(order.participant)
    if status is None:
        raise OrderRejected(
            "unknown_participant", "participant", f"{order.participant} is not registered"
        )
    if not status.active:
        raise OrderRejected(
            "suspended_participant", "participant", f"{order.participant} is suspended"
        )
    _check_interval(order, context.open_interval_start_s)
    if context.nonce_seen(order.participant, order.nonce):
        raise OrderRejected("nonce_reused", "nonce", f"nonce {order.nonce} was already used")
    _check_bounds(order, context)
    if order.side == "buy":
        _check_escrow(order, status, context.grid_fee_micro_per_kwh)
    return order


def _check_signature(signed: SignedOrder, domain: Domain) -> None:
    try:
        signer = recover_address(signed.order.digest(domain), signed.signature)
    except ValidationError as exc:
        raise OrderRejected("bad_signature", "signature", exc.reason) from None
    if signer != signed.order.participant:
        raise OrderRejected(
            "bad_signature", "signature", f"signed by {signer}, not the participant"
        )


def _check_interval(order: Order, open_start_s: int | None) -> None:
    if open_start_s is None:
        raise OrderRejected("wrong_interval", "interval_start_s", "the market is closed")
    if order.interval_start_s != open_start_s:
        raise OrderRejected(
            "wrong_interval",
            "interval_start_s",
            f"{order.interval_start_s} is not the open interval {open_start_s}",
        )


def _check_bounds(order: Order, context: OrderContext) -> None:
    if order.energy_wh > context.max_energy_wh:
        raise OrderRejected(
            "out_of_bounds", "energy_wh", f"{order.energy_wh} exceeds {context.max_energy_wh}"
        )
    if order.price_micro_per_kwh > context.max_price_micro_per_kwh:
        raise OrderRejected(
            "out_of_bounds",
            "price_micro_per_kwh",
            f"{order.price_micro_per_kwh} exceeds {context.max_price_micro_per_kwh}",
        )


def _check_escrow(order: Order, status: ParticipantStatus, fee_micro_per_kwh: int) -> None:
    needed = escrow_required_micro(order.energy_wh, order.price_micro_per_kwh, fee_micro_per_kwh)
    free = status.escrow_micro - status.reserved_micro
    if needed > free:
        raise OrderRejected(
            "insufficient_escrow",
            "energy_wh",
            f"needs {needed} micro-units of escrow, {max(free, 0)} free",
        )


@dataclass
class InMemoryOrderContext:
    """An OrderContext kept in dicts: for demos, tests and offline replays.

    ``accept`` records an accepted order (its nonce and, for a buy, its escrow reservation) so
    the next verification sees it, as the store would.
    """

    open_interval_start_s: int | None
    escrow_micro: dict[str, int] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)
    max_energy_wh: int = 10_000_000  # 10 MWh in one interval is far beyond any prosumer
    max_price_micro_per_kwh: int = 10_000_000  # 10 units per kWh
    grid_fee_micro_per_kwh: int = 0
    reserved_micro: dict[str, int] = field(default_factory=dict)
    used_nonces: set[tuple[str, int]] = field(default_factory=set)

    def participant(self, address: str) -> ParticipantStatus | None:
        if address not in self.escrow_micro:
            return None
        return ParticipantStatus(
            active=address not in self.suspended,
            escrow_micro=self.escrow_micro[address],
            reserved_micro=self.reserved_micro.get(address, 0),
        )

    def nonce_seen(self, address: str, nonce: int) -> bool:
        return (address, nonce) in self.used_nonces

    def accept(self, order: Order) -> None:
        self.used_nonces.add((order.participant, order.nonce))
        if order.side == "buy":
            reserve = escrow_required_micro(
                order.energy_wh, order.price_micro_per_kwh, self.grid_fee_micro_per_kwh
            )
            self.reserved_micro[order.participant] = (
                self.reserved_micro.get(order.participant, 0) + reserve
            )
