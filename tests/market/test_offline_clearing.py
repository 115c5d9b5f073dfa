"""Clearing offline, as a researcher does: plain names, sides as words, trades by name."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.market import Book, Order, clear
from gridledger.market.orders import SIDE_CODES
from gridledger.sim.frames import trades_frame


def test_a_book_of_names_and_words_clears_and_names_the_traders() -> None:
    book = Book.from_arrays(
        ["bob", "alice", "carol"],
        ["sell", "buy", "SELL"],
        [500, 800, 400],
        [100_000, 250_000, 200_000],
    )
    assert book.labels == ("alice", "bob", "carol") and book.side.tolist() == [0, 1, 1]
    result = clear(book, "uniform", 0)
    frame = trades_frame(result)
    assert frame[["buyer", "seller", "energy_wh"]].values.tolist() == [
        ["alice", "bob", 500],
        ["alice", "carol", 300],
    ]
    assert result.to_dict()["filled_wh"] == {"alice": 800, "bob": 500, "carol": 300}
    # the same book with integer ids and 0/1 sides clears identically
    coded = Book.from_arrays([1, 0, 2], [1, 0, 1], [500, 800, 400], [100_000, 250_000, 200_000])
    assert np.array_equal(clear(coded, "uniform", 0).filled_wh, result.filled_wh)


def test_orders_with_plain_ids_need_no_nonce_or_interval() -> None:
    orders = [Order("alice", "buy", 800, 250_000), Order("bob", "sell", 500, 100_000)]
    result = clear(Book.from_orders(orders), "uniform", 0)
    assert trades_frame(result)[["buyer", "seller"]].values.tolist() == [["alice", "bob"]]
    with pytest.raises(ValidationError, match="plain id"):
        orders[0].struct_hash()  # it cannot be signed or committed on-chain


@pytest.mark.parametrize(
    ("ids", "side", "match"),
    [
        (["a", "a"], ["buy", "sell"], "'a' appears twice"),
        (["a", "b"], ["buy", "hold"], "'hold' at row 1"),
        (["a", " "], ["buy", "sell"], "empty name at row 1"),
    ],
)
def test_bad_names_and_sides_are_named(ids: list[str], side: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Book.from_arrays(ids, side, [1, 1], [1, 1])


@pytest.mark.parametrize("participant", ["0xabc", "", "1alice", "a b", "0x" + "ab" * 20])
def test_participants_are_addresses_or_plain_ids(participant: str) -> None:
    with pytest.raises(ValidationError, match="participant"):
        Order(participant, "buy", 1, 1)
    assert set(SIDE_CODES) == {"buy", "sell"}
