"""The processes around the VTN and VEN: ``gridledger ven`` and the node's VTN."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridledger.config import Settings
from gridledger.errors import ConfigError, NotFoundError
from gridledger.openadr.ven import Household, Planner, Ven, headroom_planner, household_from_file
from gridledger.openadr.vtn import VtnThread, ZoneOf

HOUSEHOLD_ROLES = ("prosumer", "consumer", "producer")


def load_household(participant: str, household_file: Path | None) -> Household:
    """The household's assets from a TOML file in kWh and kW (none: no flexible assets)."""
    if household_file is None:
        return Household(participant)
    try:
        values = tomllib.loads(household_file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--household: cannot read {household_file}: {exc}") from None
    return household_from_file(participant, values)


def run_ven(
    settings: Settings,
    vtn_url: str,
    key_file: Path,
    household_file: Path | None = None,
    passphrase_file: Path | None = None,
    planner: Planner = headroom_planner,
    say: Callable[[str], None] = print,
) -> None:
    """Run one household's VEN until SIGTERM or Ctrl-C."""
    from gridledger.eip712 import address_of
    from gridledger.verifier.keyfile import load_key_file

    quiet_openleadr()
    participant = address_of(load_key_file(key_file, passphrase_file))
    household = load_household(participant, household_file)
    asyncio.run(_serve(Ven(settings, vtn_url, lambda: household, planner), say))


async def _serve(ven: Ven, say: Callable[[str], None]) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await ven.start()
        say(f"VEN {ven.ven_id} registered with {ven.vtn_url}; answering events")
        answered: set[str] = set()
        while not stopping.is_set():
            _say_news(ven, answered, say)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=0.2)
        _say_news(ven, answered, say)
    finally:
        await ven.stop()


def _say_news(ven: Ven, seen: set[str], say: Callable[[str], None]) -> None:
    """One line per event answered: people watching the process see what it did."""
    news = [(r, "optIn") for r in ven.commitments]
    news += [(r, "optOut") for r in ven.declined]
    news += [(e, f"refused: {why}") for e, why in ven.rejected]
    for what, answer in news:
        if what not in seen:
            seen.add(what)
            say(f"event {what}: {answer}")


def node_zone_of(store: Any, zone: str) -> ZoneOf:
    """The live node's zones: every household participant of its LV grid is in one zone
    (the grid's transformer); anyone else is refused."""

    def zone_of(ven_name: str) -> str | None:
        try:
            participant = store.participant(ven_name)
        except NotFoundError:
            return None
        return zone if participant.active and participant.role in HOUSEHOLD_ROLES else None

    return zone_of


def quiet_openleadr() -> None:
    """openleadr logs every failed poll and its own advice; our VTN and VEN say what matters."""
    import openleadr.client  # noqa: F401  (it sets the level on import: set ours after it)

    logging.getLogger("openleadr").setLevel(logging.CRITICAL)


def start_node_vtn(settings: Settings, store: Any) -> VtnThread | None:
    """The node's VTN on ``openadr_port`` (on the API's host), or None when it is 0."""
    if not settings.openadr_port:
        return None
    quiet_openleadr()
    return VtnThread.start(settings, node_zone_of(store, settings.grid_code), settings.http_host)
