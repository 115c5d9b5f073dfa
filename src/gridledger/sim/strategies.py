"""Bidding strategies: a household's net position (Wh) becomes an order intent.

Every price lies in the tariff band: nobody buys locally above the import tariff (the grid
supplier is cheaper) or sells below the feed-in tariff (the supplier pays more). A positive net
position means the household needs energy and buys; a negative one means surplus and sells.

* :func:`truthful` bids the outside options: buyers the import tariff, sellers the feed-in tariff.
* :func:`zero_intelligence` draws a seeded uniform limit price inside the band
  (Gode & Sunder's ZI-C traders, budget-constrained by the band).
* :class:`ZipTrader` is zero-intelligence-plus (Cliff 1997): a profit margin adapted towards
  the last clearing price with a Widrow-Hoff rule and momentum.

The community simulation quotes every household at once: :func:`truthful_quotes`,
:func:`zero_intelligence_quotes` and :class:`ZipTraders` are the same rules over arrays (one
row per household), with the same results as the one-household forms.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.config import Settings
from gridledger.errors import ValidationError


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class TariffBand:
    """The grid supplier's prices that bound local trade, in micro-units per kWh."""

    feed_in_price_micro_per_kwh: int
    import_price_micro_per_kwh: int

    def __post_init__(self) -> None:
        if self.feed_in_price_micro_per_kwh < 0:
            raise ValidationError(
                "feed_in_price_micro_per_kwh",
                f"must not be negative, got {self.feed_in_price_micro_per_kwh}",
            )
        if self.feed_in_price_micro_per_kwh > self.import_price_micro_per_kwh:
            raise ValidationError(
                "feed_in_price_micro_per_kwh", "must not exceed import_price_micro_per_kwh"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> TariffBand:
        return cls(settings.feed_in_price_micro_per_kwh, settings.import_price_micro_per_kwh)

    def clamp(self, price_micro_per_kwh: int) -> int:
        low, high = self.feed_in_price_micro_per_kwh, self.import_price_micro_per_kwh
        return max(low, min(high, int(price_micro_per_kwh)))


@dataclass(frozen=True)
class OrderIntent:
    """What a household wants to trade this interval, before it is signed and submitted."""

    side: Side
    energy_wh: int
    price_micro_per_kwh: int


def side_of(net_wh: int) -> Side | None:
    """Buy when the household needs energy, sell when it has surplus, nothing when balanced."""
    if net_wh > 0:
        return Side.BUY
    if net_wh < 0:
        return Side.SELL
    return None


def outside_price_micro_per_kwh(side: Side, band: TariffBand) -> int:
    """What the grid supplier offers instead: buyers pay import, sellers get feed-in."""
    if side is Side.BUY:
        return band.import_price_micro_per_kwh
    return band.feed_in_price_micro_per_kwh


def truthful(net_wh: int, band: TariffBand) -> OrderIntent | None:
    """Bid the outside option: buyers the import tariff, sellers the feed-in tariff."""
    side = side_of(net_wh)
    if side is None:
        return None
    return OrderIntent(side, abs(int(net_wh)), outside_price_micro_per_kwh(side, band))


def zero_intelligence(
    net_wh: int, band: TariffBand, rng: np.random.Generator
) -> OrderIntent | None:
    """A uniformly random limit price in the band, drawn from the caller's seeded generator."""
    side = side_of(net_wh)
    if side is None:
        return None
    price = int(rng.integers(band.feed_in_price_micro_per_kwh, band.import_price_micro_per_kwh + 1))
    return OrderIntent(side, abs(int(net_wh)), price)


@dataclass(frozen=True)
class ZipTrader:
    """Zero-intelligence-plus: a margin over the band edge, learned from clearing prices.

    A buyer's limit is the import tariff; it bids ``limit * (1 - margin)``. A seller's limit is
    the feed-in tariff; it asks ``limit * (1 + margin)``. Both are clamped to the band. After
    each interval :meth:`observe` moves the quote a step ``learning_rate`` towards the clearing
    price (smoothed by ``momentum``) and re-derives the margin, so quotes converge on the price
    the market actually pays.
    """

    margin: float = 0.1
    learning_rate: float = 0.3
    momentum: float = 0.05
    last_change_micro_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        if self.margin < 0.0:
            raise ValidationError("margin", f"must not be negative, got {self.margin}")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValidationError("learning_rate", f"must be in (0, 1], got {self.learning_rate}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValidationError("momentum", f"must be in [0, 1), got {self.momentum}")

    def price_micro_per_kwh(self, side: Side, band: TariffBand) -> int:
        if side is Side.BUY:
            raw = band.import_price_micro_per_kwh * (1.0 - self.margin)
        else:
            raw = band.feed_in_price_micro_per_kwh * (1.0 + self.margin)
        return band.clamp(round(raw))

    def quote(self, net_wh: int, band: TariffBand) -> OrderIntent | None:
        side = side_of(net_wh)
        if side is None:
            return None
        return OrderIntent(side, abs(int(net_wh)), self.price_micro_per_kwh(side, band))

    def observe(
        self, side: Side, clearing_price_micro_per_kwh: int | None, band: TariffBand
    ) -> ZipTrader:
        """Adapt the margin towards the last clearing price (no price: keep the margin)."""
        if clearing_price_micro_per_kwh is None:
            return self
        current = self.price_micro_per_kwh(side, band)
        target = band.clamp(clearing_price_micro_per_kwh)
        change = self.momentum * self.last_change_micro_per_kwh + (
            1.0 - self.momentum
        ) * self.learning_rate * (target - current)
        limit = outside_price_micro_per_kwh(side, band)
        if limit == 0:
            return dataclasses.replace(self, last_change_micro_per_kwh=change)
        new_price = band.clamp(round(current + change))
        margin = 1.0 - new_price / limit if side is Side.BUY else new_price / limit - 1.0
        return dataclasses.replace(self, margin=max(0.0, margin), last_change_micro_per_kwh=change)


# -- the same strategies over arrays: one row per household ------------------------------------
BoolArray = npt.NDArray[np.bool_]
Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Quotes:
    """Order intents of one interval: ``rows`` are households (ascending), ``is_buy`` per row."""

    rows: Int64Array
    is_buy: BoolArray
    energy_wh: Int64Array
    price_micro_per_kwh: Int64Array


def _clamp(prices: npt.ArrayLike, band: TariffBand) -> Int64Array:
    low, high = band.feed_in_price_micro_per_kwh, band.import_price_micro_per_kwh
    clamped: Int64Array = np.clip(np.asarray(prices), low, high).astype(np.int64)
    return clamped


def _positions(net_wh: Int64Array) -> tuple[Int64Array, BoolArray, Int64Array]:
    rows = np.flatnonzero(net_wh).astype(np.int64)
    position = net_wh[rows]
    return rows, position > 0, np.abs(position).astype(np.int64)


def truthful_quotes(net_wh: Int64Array, band: TariffBand) -> Quotes:
    """:func:`truthful` for every household at once."""
    rows, is_buy, energy = _positions(net_wh)
    prices = np.where(is_buy, band.import_price_micro_per_kwh, band.feed_in_price_micro_per_kwh)
    return Quotes(rows, is_buy, energy, prices.astype(np.int64))


def zero_intelligence_quotes(
    net_wh: Int64Array, band: TariffBand, rng: np.random.Generator
) -> Quotes:
    """:func:`zero_intelligence` for every household at once (the same draws, in row order)."""
    rows, is_buy, energy = _positions(net_wh)
    low, high = band.feed_in_price_micro_per_kwh, band.import_price_micro_per_kwh
    prices = rng.integers(low, high + 1, size=rows.size).astype(np.int64)
    return Quotes(rows, is_buy, energy, prices)


@dataclass(frozen=True, eq=False)
class ZipTraders:
    """One :class:`ZipTrader` per household as arrays (the same arithmetic, element by element).

    Every trader starts from :class:`ZipTrader`'s defaults and shares its learning rate and
    momentum; ``margin`` and ``last_change_micro_per_kwh`` are per household.
    """

    margin: FloatArray
    last_change_micro_per_kwh: FloatArray
    learning_rate: float = ZipTrader.learning_rate
    momentum: float = ZipTrader.momentum

    @classmethod
    def start(cls, n_households: int, template: ZipTrader = ZipTrader()) -> ZipTraders:
        return cls(
            np.full(n_households, template.margin),
            np.full(n_households, template.last_change_micro_per_kwh),
            template.learning_rate,
            template.momentum,
        )

    def prices(self, rows: Int64Array, is_buy: BoolArray, band: TariffBand) -> Int64Array:
        margin = self.margin[rows]
        raw = np.where(
            is_buy,
            band.import_price_micro_per_kwh * (1.0 - margin),
            band.feed_in_price_micro_per_kwh * (1.0 + margin),
        )
        return _clamp(np.rint(raw), band)  # rint rounds half to even, like round()

    def quotes(self, net_wh: Int64Array, band: TariffBand) -> Quotes:
        rows, is_buy, energy = _positions(net_wh)
        return Quotes(rows, is_buy, energy, self.prices(rows, is_buy, band))

    def observe(
        self,
        rows: Int64Array,
        is_buy: BoolArray,
        target_micro_per_kwh: Int64Array,
        band: TariffBand,
    ) -> ZipTraders:
        """:meth:`ZipTrader.observe` for ``rows``, each towards its own target price."""
        if not rows.size:
            return self
        current = self.prices(rows, is_buy, band)
        target = _clamp(target_micro_per_kwh, band)
        change = self.momentum * self.last_change_micro_per_kwh[rows] + (
            1.0 - self.momentum
        ) * self.learning_rate * (target - current)
        limit = np.where(
            is_buy, band.import_price_micro_per_kwh, band.feed_in_price_micro_per_kwh
        ).astype(np.float64)
        new_price = _clamp(np.rint(current + change), band)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = new_price / limit
        margin = np.maximum(0.0, np.where(is_buy, 1.0 - ratio, ratio - 1.0))
        margins = self.margin.copy()
        margins[rows] = np.where(limit == 0, self.margin[rows], margin)
        changes = self.last_change_micro_per_kwh.copy()
        changes[rows] = change
        return dataclasses.replace(self, margin=margins, last_change_micro_per_kwh=changes)
