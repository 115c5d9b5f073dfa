"""The public grid map without any household's own energy: nets pooled over groups of buses.

A power flow of each bus's metered net shows a household's net power wherever it is alone on
its bus (the loading of the line into that bus, with the line ratings public). The public map
is therefore computed from pooled nets: consecutive buses (by bus index) are grouped until a
group holds at least ``min_households`` households, and every bus of a group gets the group's
mean. Whatever the power flow then shows is a function of group sums over at least that many
households, as the other public aggregates are (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from gridledger.errors import ConfigError


def pooled_net_wh(
    net_wh_by_bus: Mapping[int, int], households_by_bus: Mapping[int, int], min_households: int
) -> dict[int, int]:
    """Each bus's net Wh replaced by its group's share; the total is kept to the Wh.

    A last group short of ``min_households`` joins the one before it; a community smaller than
    ``min_households`` is one group.
    """
    if min_households < 1:
        raise ConfigError(f"grid_map_min_households: must be at least 1, got {min_households}")
    return {
        bus: wh
        for group in _groups(households_by_bus, min_households)
        for bus, wh in _spread(group, net_wh_by_bus).items()
    }


def _groups(households_by_bus: Mapping[int, int], min_households: int) -> list[list[int]]:
    groups: list[list[int]] = [[]]
    held = 0
    for bus in sorted(households_by_bus):
        if held >= min_households:
            groups.append([])
            held = 0
        groups[-1].append(bus)
        held += households_by_bus[bus]
    if len(groups) > 1 and held < min_households:
        groups[-2].extend(groups.pop())
    return [g for g in groups if g]


def _spread(buses: list[int], net_wh_by_bus: Mapping[int, int]) -> dict[int, int]:
    """The group's total over its buses in whole Wh (the remainder on the first buses)."""
    total = sum(net_wh_by_bus.get(bus, 0) for bus in buses)
    share, remainder = divmod(total, len(buses))
    return {bus: share + (1 if i < remainder else 0) for i, bus in enumerate(buses)}
