"""The local flexibility market: households' offers cleared against the DSO's requests.

Per zone, interval and direction the offers are taken in merit order (cheapest first; ties by
participant, so a clearing is reproducible) until the request's energy is covered; offers
above the request's price are never taken. **Pay-as-cleared**: every accepted offer is paid
the price of the marginal (most expensive accepted) offer, so offering one's true cost is the
best strategy for a small participant; the DSO never pays above its request's price.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from gridledger.errors import ValidationError
from gridledger.flex._types import Direction, FlexAward, FlexOffer, FlexRequest

_SECONDS_PER_HOUR = 3600


def energy_wh_of(power_w: int, interval_length_s: int) -> int:
    """Energy of ``power_w`` held over one interval (floored to whole Wh)."""
    return power_w * interval_length_s // _SECONDS_PER_HOUR


def request_intervals(request: FlexRequest, interval_length_s: int) -> list[int]:
    return [request.start + k * interval_length_s for k in range(request.intervals)]


def _check(offer: FlexOffer) -> None:
    if offer.direction not in ("up", "down"):
        raise ValidationError("direction", f"must be 'up' or 'down', got {offer.direction!r}")
    if offer.power_w <= 0:
        raise ValidationError("power_w", f"must be positive, got {offer.power_w}")
    if offer.price_micro_per_kwh < 0:
        raise ValidationError("price_micro_per_kwh", "must not be negative")


def clear_flex(
    requests: Sequence[FlexRequest],
    offers: Iterable[FlexOffer],
    interval_length_s: int,
) -> tuple[FlexAward, ...]:
    """Awards per request and interval, merit order, pay-as-cleared (see the module doc)."""
    if interval_length_s <= 0:
        raise ValidationError("interval_length_s", f"must be positive, got {interval_length_s}")
    book: defaultdict[tuple[str, int, Direction], list[FlexOffer]] = defaultdict(list)
    for offer in offers:
        _check(offer)
        book[(offer.zone, offer.interval_start, offer.direction)].append(offer)
    awards: list[FlexAward] = []
    for request in requests:
        for start in request_intervals(request, interval_length_s):
            candidates = book.get((request.zone, start, request.direction), [])
            awards += _clear_one(request, start, candidates, interval_length_s)
    return tuple(awards)


def _clear_one(
    request: FlexRequest, start: int, offers: list[FlexOffer], interval_length_s: int
) -> list[FlexAward]:
    need_wh = energy_wh_of(request.power_w, interval_length_s)
    eligible = sorted(
        (o for o in offers if o.price_micro_per_kwh <= request.price_micro_per_kwh),
        key=lambda o: (o.price_micro_per_kwh, o.participant),
    )
    taken: list[tuple[FlexOffer, int]] = []
    for offer in eligible:
        if need_wh <= 0:
            break
        energy = min(energy_wh_of(offer.power_w, interval_length_s), need_wh)
        if energy > 0:
            taken.append((offer, energy))
            need_wh -= energy
    if not taken:
        return []
    clearing_price = taken[-1][0].price_micro_per_kwh  # the marginal offer sets the price
    return [
        FlexAward(
            request.request_id,
            offer.participant,
            request.zone,
            request.direction,
            start,
            energy,
            clearing_price,
        )
        for offer, energy in taken
    ]
