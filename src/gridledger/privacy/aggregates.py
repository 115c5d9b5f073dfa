"""Community statistics for research, released with differential privacy (OpenDP).

What is protected is a whole household over the whole window (user-level privacy): each
household's Wh per interval is clamped to ``clamp_wh`` before summing, so adding or removing one
household moves the vector of per-interval sums by at most ``intervals * clamp_wh`` in L1 norm,
and OpenDP's Laplace mechanism is calibrated to that sensitivity and the requested epsilon.
Every release is charged to the grantee's epsilon budget first (sequential composition: the
spends add up); a release that would exceed the budget is refused and nothing is spent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import opendp.prelude as dp
import sqlalchemy as sa

from gridledger.errors import ConflictError, ValidationError
from gridledger.privacy.tables import dp_spend, ensure_tables
from gridledger.store import Store

dp.enable_features("contrib")  # the Laplace mechanism on integer vectors

DEFAULT_BUDGET_EPSILON = 1.0  # per grantee, over all its releases
DEFAULT_CLAMP_WH = 2_500  # 10 kW for 15 minutes: what one household contributes at most
MAX_EPSILON = 10.0
_EPSILON_MICRO = 1_000_000


@dataclass(frozen=True)
class Release:
    """A noisy release and what it cost."""

    values: tuple[int, ...]
    epsilon: float
    spent_epsilon: float  # the grantee's total after this release
    budget_epsilon: float


# -- pure --------------------------------------------------------------------------------------
def noisy_sums(
    per_household: Mapping[str, Sequence[int]], clamp_wh: int, epsilon: float
) -> list[int]:
    """Per-position sums over households, each value clamped to [0, clamp_wh], with Laplace
    noise for ``epsilon``-DP with respect to one household's whole series."""
    _check_epsilon(epsilon)
    if clamp_wh < 1:
        raise ValidationError("clamp_wh", "must be at least 1 Wh")
    lengths = {len(series) for series in per_household.values()}
    if len(lengths) > 1:
        raise ValidationError("per_household", "series of different lengths")
    length = lengths.pop() if lengths else 0
    sums = [0] * length
    for series in per_household.values():
        for i, wh in enumerate(series):
            sums[i] += min(max(wh, 0), clamp_wh)
    if length == 0:
        return []
    sensitivity = length * clamp_wh
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    mechanism = space >> dp.m.then_laplace(scale=sensitivity / epsilon)
    if mechanism.map(d_in=sensitivity) > epsilon * (1 + 1e-9):
        raise ValidationError("epsilon", "the mechanism cannot meet it at this sensitivity")
    return [int(v) for v in mechanism(sums)]


def _check_epsilon(epsilon: float) -> None:
    if not (math.isfinite(epsilon) and 0 < epsilon <= MAX_EPSILON):
        raise ValidationError("epsilon", f"must be in (0, {MAX_EPSILON}], got {epsilon}")


# -- the budget --------------------------------------------------------------------------------
def spent_epsilon(store: Store, grantee: str) -> float:
    ensure_tables(store)
    with store.engine.connect() as conn:
        total = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(dp_spend.c.epsilon_micro), 0)).where(
                dp_spend.c.grantee == grantee
            )
        )
    return int(total or 0) / _EPSILON_MICRO


def charge(store: Store, grantee: str, query: str, epsilon: float, budget: float) -> float:
    """Record the spend, or refuse it (nothing recorded) when it would exceed the budget."""
    _check_epsilon(epsilon)
    cost = math.ceil(epsilon * _EPSILON_MICRO)
    ensure_tables(store)
    with store.engine.begin() as conn:
        spend = sa.insert(dp_spend).values(
            grantee=grantee, query=query, epsilon_micro=cost, at_s=int(time.time())
        )
        conn.execute(spend)
        total = conn.scalar(
            sa.select(sa.func.sum(dp_spend.c.epsilon_micro)).where(dp_spend.c.grantee == grantee)
        )
        if int(total) > math.floor(budget * _EPSILON_MICRO):  # raising rolls the spend back
            raise ConflictError(
                f"epsilon: {grantee} has spent {(int(total) - cost) / _EPSILON_MICRO:g} of its "
                f"privacy budget {budget:g}; {epsilon:g} more would exceed it"
            )
    return int(total) / _EPSILON_MICRO


# -- the data ----------------------------------------------------------------------------------
def _interval_starts(store: Store, from_s: int, to_s: int) -> list[int]:
    if to_s <= from_s:
        raise ValidationError("to_s", "must be after from_s")
    return sorted(
        r.interval_start_s for r in store.intervals(100_000) if from_s <= r.interval_start_s < to_s
    )


def household_series(store: Store, starts: Sequence[int]) -> dict[str, list[int]]:
    """Imported Wh per household per interval (zeros where it sent no reading)."""
    owners = {m.address: m.owner for m in store.meters()}
    series = {owner: [0] * len(starts) for owner in set(owners.values())}
    for i, start in enumerate(starts):
        for s in store.readings_in_interval(start):
            series[owners[s.reading.meter]][i] += s.reading.imported_wh
    return series


def local_series(store: Store, starts: Sequence[int]) -> dict[str, list[int]]:
    """Wh bought in the local market per household per interval."""
    out: dict[str, list[int]] = {}
    for i, start in enumerate(starts):
        for t in store.trades_in_interval(start):
            out.setdefault(t.buyer, [0] * len(starts))[i] += t.energy_wh
    return out


def load_profile(
    store: Store,
    grantee: str,
    from_s: int,
    to_s: int,
    epsilon: float,
    *,
    budget: float = DEFAULT_BUDGET_EPSILON,
    clamp_wh: int = DEFAULT_CLAMP_WH,
) -> tuple[list[int], Release]:
    """The community's imported Wh per interval in [from_s, to_s), epsilon-DP."""
    starts = _interval_starts(store, from_s, to_s)
    series = household_series(store, starts)
    spent = charge(store, grantee, "load-profile", epsilon, budget)
    values = noisy_sums(series, clamp_wh, epsilon)
    return starts, Release(tuple(values), epsilon, spent, budget)


def self_sufficiency(
    store: Store,
    grantee: str,
    from_s: int,
    to_s: int,
    epsilon: float,
    *,
    budget: float = DEFAULT_BUDGET_EPSILON,
    clamp_wh: int = DEFAULT_CLAMP_WH,
) -> tuple[float, Release]:
    """Share of the community's imports bought locally over the window, epsilon-DP (one
    release of the two totals, demand and local, each household clamped per interval)."""
    starts = _interval_starts(store, from_s, to_s)
    demand = household_series(store, starts)
    local = local_series(store, starts)
    spent = charge(store, grantee, "self-sufficiency", epsilon, budget)
    totals = {h: [sum(demand.get(h, [])), sum(local.get(h, []))] for h in demand.keys() | local}
    noisy = noisy_sums(totals, clamp_wh * max(len(starts), 1), epsilon)
    demand_wh, local_wh = (max(v, 0) for v in noisy)
    share = min(local_wh / demand_wh, 1.0) if demand_wh else 0.0
    return share, Release(tuple(noisy), epsilon, spent, budget)
