"""Merkle commitments to an interval's accepted orders and its clearing result.

Each record is ABI-encoded as static 32-byte words (Solidity's ``abi.encode``) and hashed with
:func:`gridledger.merkle.leaf_hash`, so the contracts can check inclusion with OpenZeppelin's
``MerkleProof.verify``:

* order leaf: ``abi.encode(address participant, uint8 side, uint64 energyWh,
  uint64 priceMicroPerKwh, uint64 intervalStartS, uint64 nonce)`` (the EIP-712 field order);
* trade leaf: ``abi.encode(uint64 intervalStartS, address buyer, uint64 buyNonce,
  address seller, uint64 sellNonce, uint64 energyWh, uint64 priceMicroPerKwh,
  uint64 feeMicroPerKwh)``. A participant and nonce name one order, so leaves are unique.

Every leaf ends with a secret 32-byte salt word (``..., bytes32 salt)``), derived from the
operator's :class:`~gridledger.privacy.salts.LeafKey` and the record's identity (never its
values), so a proof's sibling hashes cannot be brute-forced back into other people's orders
and trades. The trees sort their leaves, so both roots are independent of arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.eip712 import encode_word
from gridledger.errors import NotFoundError, ValidationError
from gridledger.market.orders import ORDER_TYPE, Order
from gridledger.market.result import ClearingResult
from gridledger.merkle import build_tree, leaf_hash
from gridledger.privacy.salts import LeafKey, check_salt

TRADE_FIELDS: tuple[tuple[str, str], ...] = (
    ("intervalStartS", "uint64"),
    ("buyer", "address"),
    ("buyNonce", "uint64"),
    ("seller", "address"),
    ("sellNonce", "uint64"),
    ("energyWh", "uint64"),
    ("priceMicroPerKwh", "uint64"),
    ("feeMicroPerKwh", "uint64"),
)


_ORDER_IDENTITY = (("intervalStartS", "uint64"), ("participant", "address"), ("nonce", "uint64"))


@dataclass(frozen=True)
class TradeLine:
    """One published result line: the seller receives the price, the buyer pays price + fee."""

    interval_start_s: int
    buyer: str
    buy_nonce: int
    seller: str
    sell_nonce: int
    energy_wh: int
    price_micro_per_kwh: int
    fee_micro_per_kwh: int

    def abi_values(self) -> tuple[int | str, ...]:
        return (
            self.interval_start_s,
            self.buyer,
            self.buy_nonce,
            self.seller,
            self.sell_nonce,
            self.energy_wh,
            self.price_micro_per_kwh,
            self.fee_micro_per_kwh,
        )


def _abi_encode(values: Sequence[int | str], fields: Sequence[tuple[str, str]]) -> bytes:
    return b"".join(map(encode_word, values, fields))


def encode_order(order: Order) -> bytes:
    return _abi_encode(order.struct_values(), ORDER_TYPE.fields)


def encode_trade(line: TradeLine) -> bytes:
    return _abi_encode(line.abi_values(), TRADE_FIELDS)


def order_salt(key: LeafKey, order: Order) -> bytes:
    identity = (order.interval_start_s, order.participant, order.nonce)
    return key.salt(b"order", _abi_encode(identity, _ORDER_IDENTITY))


def trade_salt(key: LeafKey, line: TradeLine) -> bytes:
    identity = line.abi_values()[:5]
    return key.salt(b"trade", _abi_encode(identity, TRADE_FIELDS[:5]))


def order_leaf(order: Order, salt: bytes) -> bytes:
    return leaf_hash(encode_order(order) + check_salt(salt))


def trade_leaf(line: TradeLine, salt: bytes) -> bytes:
    return leaf_hash(encode_trade(line) + check_salt(salt))


def _order_leaves(orders: Sequence[Order], key: LeafKey) -> list[bytes]:
    return [order_leaf(o, order_salt(key, o)) for o in orders]


def _trade_leaves(lines: Sequence[TradeLine], key: LeafKey) -> list[bytes]:
    return [trade_leaf(line, trade_salt(key, line)) for line in lines]


def orders_root(orders: Sequence[Order], key: LeafKey) -> bytes:
    """Root over the accepted orders (EMPTY_ROOT when there are none)."""
    return build_tree(_order_leaves(orders, key)).root


def order_proof(orders: Sequence[Order], order: Order, key: LeafKey) -> list[bytes]:
    """Inclusion proof of ``order`` under ``orders_root(orders, key)``."""
    try:
        return build_tree(_order_leaves(orders, key)).proof(
            order_leaf(order, order_salt(key, order))
        )
    except KeyError:
        raise NotFoundError(f"order {order.participant}/{order.nonce} is not in the set") from None


def result_lines(result: ClearingResult) -> tuple[TradeLine, ...]:
    """The trades as published lines; needs a book built from orders (participants, nonces)."""
    orders = result.book.orders
    if orders is None:
        raise ValidationError("book", "has no orders (built from arrays/CSV): no participants")
    t = result.trades
    lines = []
    for b, s, e, p, f in zip(
        t.buy_row.tolist(),
        t.sell_row.tolist(),
        t.energy_wh.tolist(),
        t.price_micro_per_kwh.tolist(),
        t.fee_micro_per_kwh.tolist(),
        strict=True,
    ):
        buy, sell = orders[b], orders[s]
        lines.append(
            TradeLine(
                buy.interval_start_s,
                buy.participant,
                buy.nonce,
                sell.participant,
                sell.nonce,
                e,
                p,
                f,
            )
        )
    return tuple(lines)


def lines_root(lines: Sequence[TradeLine], key: LeafKey) -> bytes:
    return build_tree(_trade_leaves(lines, key)).root


def result_root(result: ClearingResult, key: LeafKey) -> bytes:
    """Root over the result's trade lines (EMPTY_ROOT when nothing cleared)."""
    return lines_root(result_lines(result), key)


def participant_proofs(
    lines: Sequence[TradeLine], participant: str, key: LeafKey
) -> list[tuple[TradeLine, list[bytes]]]:
    """Every line where ``participant`` buys or sells, each with its proof under the root."""
    tree = build_tree(_trade_leaves(lines, key))
    return [
        (line, tree.proof(trade_leaf(line, trade_salt(key, line))))
        for line in lines
        if participant in (line.buyer, line.seller)
    ]
