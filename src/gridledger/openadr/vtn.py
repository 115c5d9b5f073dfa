"""The DSO's OpenADR 2.0b VTN (openleadr): registers household VENs, issues flexibility events,
records their opt-in/opt-out answers and telemetry, and hands back FlexAwards.

Only VENs that opted in are awarded (and so paid): one that opted out, or never answered
before the awards were read, gets nothing; :meth:`Vtn.responses` shows it as "no response".
Async only here; :class:`VtnThread` runs the VTN on its own event loop for the sync node
and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from gridledger.config import Settings
from gridledger.errors import ConflictError, ServiceUnavailable, ValidationError
from gridledger.flex._types import FlexAward, FlexRequest
from gridledger.openadr import convert

log = logging.getLogger(__name__)
T = TypeVar("T")
OPT_IN, OPT_OUT, NO_RESPONSE = "optIn", "optOut", "no response"
TELEMETRY_KEEP = 1_000  # samples kept per VEN: the latest ~16 h at one a minute
ZoneOf = Callable[[str], str | None]  # ven_name (a participant address) -> grid zone or None


@dataclass(frozen=True)
class VenRecord:
    ven_id: str
    registration_id: str
    zone: str


@dataclass
class Issued:
    """One flexibility request as sent: its per-VEN dispatch and what each VEN answered."""

    request: FlexRequest
    dispatch_w: dict[str, int]
    sent_at: float
    responses: dict[str, str] = field(default_factory=dict)
    answered_at: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False


class Vtn:
    """An openleadr OpenADRServer with gridledger's registration, events and bookkeeping.

    Call its methods on the event loop it runs on (or through :class:`VtnThread`).
    """

    def __init__(self, settings: Settings, zone_of: ZoneOf, host: str = "127.0.0.1") -> None:
        from openleadr import OpenADRServer

        self.settings = settings
        self.zone_of = zone_of
        self.host = host
        self.port = settings.openadr_port
        with warnings.catch_warnings():  # openleadr's own aiohttp app keys; not ours to fix
            warnings.simplefilter("ignore")
            self.server = OpenADRServer(
                vtn_id=settings.openadr_vtn_id,
                http_host=host,
                http_port=self.port,
                requested_poll_freq=timedelta(seconds=settings.openadr_poll_s),
                show_fingerprint=False,
            )
        self.server.add_handler("on_create_party_registration", self._on_register)
        self.server.add_handler("on_register_report", self._on_register_report)
        # Per service instance, not openleadr's class-wide ven_lookup: two VTNs in one process
        # (tests) must not share their registries. A VEN we do not know is asked to re-register.
        for service in self.server.services.values():
            service.ven_lookup = self._ven_lookup
        self.vens: dict[str, VenRecord] = {}
        self.issued: dict[str, Issued] = {}
        self.telemetry: dict[str, deque[tuple[int, int]]] = {}
        self._lock = threading.Lock()
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.server.http_path_prefix}"

    async def start(self) -> None:
        from aiohttp import web

        # openleadr's own run() prints a banner to stdout; the node logs instead.
        self._runner = web.AppRunner(self.server.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host=self.host, port=self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ServiceUnavailable(
                f"openadr_port: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        if self.port == 0:  # an ephemeral port: read back the one the OS chose
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("OpenADR VTN %s on %s", self.settings.openadr_vtn_id, self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- registration and telemetry (openleadr handlers) ------------------------------------
    def _on_register(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        ven_name = str(payload.get("ven_name") or "")
        zone = self.zone_of(ven_name) if ven_name and ":" not in ven_name else None
        if zone is None:
            log.warning("OpenADR: refused the registration of unknown VEN %r", ven_name)
            return False
        record = VenRecord(ven_name, uuid.uuid4().hex, zone)
        with self._lock:
            self.vens[ven_name] = record
        log.info("OpenADR: VEN %s registered in zone %s", ven_name, zone)
        return record.ven_id, record.registration_id

    def _ven_lookup(self, ven_id: str) -> dict[str, Any]:
        record = self.vens.get(ven_id)
        if record is None:
            return {}
        return {"ven_id": ven_id, "registration_id": record.registration_id, "fingerprint": None}

    def _on_register_report(
        self,
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str,
        scale: str,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[Callable[[list[tuple[datetime, float]]], None], timedelta] | None:
        if measurement != "RealPower" or unit != "W":
            return None  # we only ask for the household's net real power
        wanted = timedelta(seconds=self.settings.openadr_report_interval_s)
        sampling = min(max(wanted, min_sampling_interval), max_sampling_interval)
        factor = {"none": 1, "k": 1_000}.get(scale or "none", 1)

        def record(values: list[tuple[datetime, float]]) -> None:
            with self._lock:
                samples = self.telemetry.setdefault(ven_id, deque(maxlen=TELEMETRY_KEEP))
                samples.extend((int(at.timestamp()), round(value * factor)) for at, value in values)

        return record, sampling

    # -- events ------------------------------------------------------------------------------
    def issue(self, request: FlexRequest) -> dict[str, int]:
        """Send ``request`` to every VEN of its zone; returns the power asked of each (W)."""
        convert.check_request(request)
        with self._lock:
            if request.request_id in self.issued:
                raise ConflictError(f"request_id: {request.request_id} was already issued")
            vens = [v.ven_id for v in self.vens.values() if v.zone == request.zone]
            dispatch = convert.split_power_w(request.power_w, vens)
            issued = Issued(request, dispatch, time.monotonic())
            self.issued[request.request_id] = issued
        for ven_id, power_w in dispatch.items():
            event = convert.event_dict(
                request,
                ven_id,
                power_w,
                self.settings.interval_length_s,
                self.settings.currency,
            )
            self.server.add_raw_event(ven_id, event, callback=self._answer_callback(issued))
        log.info("OpenADR: request %s sent to %d VEN(s)", request.request_id, len(dispatch))
        self._forget_ended_events()
        return dispatch

    def cancel(self, request_id: str) -> None:
        """Call a request off before it starts: the VENs drop it and nobody is awarded."""
        issued = self._issued(request_id)
        with self._lock:
            issued.cancelled = True
        for ven_id in issued.dispatch_w:
            self.server.cancel_event(ven_id, convert.event_id_for(request_id, ven_id))

    def publish_prices(self, zone: str, start: int, prices_micro_per_kwh: list[int]) -> int:
        """Price-based demand response: send a zone's tariff for the next intervals to its
        VENs (no answer asked). Returns how many VENs it went to."""
        with self._lock:
            vens = sorted(v.ven_id for v in self.vens.values() if v.zone == zone)
        event_id = f"price-{zone}-{start}"
        for ven_id in vens:
            event = convert.price_event_dict(
                event_id,
                zone,
                ven_id,
                start,
                prices_micro_per_kwh,
                self.settings.interval_length_s,
                self.settings.currency,
            )
            self.server.add_raw_event(ven_id, event)
        return len(vens)

    def _forget_ended_events(self) -> None:
        """openleadr keeps (and re-sends on every update) each VEN's events until told they
        completed; a node running for months drops the ones whose period is over."""
        now_s = time.time()
        for events in self.server.events.values():
            events[:] = [e for e in events if not _ended(e, now_s)]

    def _answer_callback(self, issued: Issued) -> Callable[..., None]:
        def on_answer(ven_id: str, event_id: str, opt_type: str) -> None:
            with self._lock:
                if ven_id in issued.dispatch_w and ven_id not in issued.responses:
                    issued.responses[ven_id] = opt_type
                    issued.answered_at[ven_id] = time.monotonic()
            log.info("OpenADR: %s answered %s to %s", ven_id, opt_type, event_id)

        return on_answer

    def responses(self, request_id: str) -> dict[str, str]:
        """Each targeted VEN's answer: optIn, optOut or "no response"."""
        issued = self._issued(request_id)
        with self._lock:
            return {v: issued.responses.get(v, NO_RESPONSE) for v in sorted(issued.dispatch_w)}

    def awards(self, request_id: str) -> list[FlexAward]:
        """The flexibility bought: the VENs that opted in, at their dispatched power."""
        issued = self._issued(request_id)
        with self._lock:
            if issued.cancelled:
                return []
            opted_in = [v for v, opt in sorted(issued.responses.items()) if opt == OPT_IN]
            return [
                award
                for ven in opted_in
                for award in convert.awards_for(
                    issued.request, ven, issued.dispatch_w[ven], self.settings.interval_length_s
                )
            ]

    def latency_s(self, request_id: str) -> dict[str, float]:
        """Seconds from issuing the request to each VEN's answer (the round trip)."""
        issued = self._issued(request_id)
        with self._lock:
            return {v: at - issued.sent_at for v, at in issued.answered_at.items()}

    def latest_power_w(self, ven_id: str) -> int | None:
        with self._lock:
            samples = self.telemetry.get(ven_id)
            return samples[-1][1] if samples else None

    def _issued(self, request_id: str) -> Issued:
        issued = self.issued.get(request_id)
        if issued is None:
            raise ValidationError("request_id", f"{request_id!r} was never issued")
        return issued


def _ended(event: Any, now_s: float) -> bool:
    try:
        return convert.event_end_s(event) < now_s
    except (KeyError, TypeError):  # an event built elsewhere: leave it to openleadr
        return False


async def _cancel_other_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class LoopThread:
    """An asyncio event loop on a daemon thread; sync code hands it coroutines and calls."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def call() -> T:
            return fn(*args)

        return self.run(call())

    def close(self) -> None:
        # openleadr leaves tasks behind (a re-registered VEN's second report worker): end them
        # here rather than have them destroyed pending with the loop.
        with contextlib.suppress(Exception):
            self.run(_cancel_other_tasks(), timeout_s=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class VtnThread:
    """A :class:`Vtn` on its own loop thread, driven from sync code (the node, the tests)."""

    def __init__(self, vtn: Vtn, loop: LoopThread) -> None:
        self.vtn = vtn
        self.loop = loop

    @classmethod
    def start(cls, settings: Settings, zone_of: ZoneOf, host: str = "127.0.0.1") -> VtnThread:
        loop = LoopThread("openadr-vtn")
        try:
            vtn = loop.call(Vtn, settings, zone_of, host)
            loop.run(vtn.start())
        except BaseException:
            loop.close()
            raise
        return cls(vtn, loop)

    @property
    def url(self) -> str:
        return self.vtn.url

    def issue(self, request: FlexRequest) -> dict[str, int]:
        return self.loop.call(self.vtn.issue, request)

    def responses(self, request_id: str) -> dict[str, str]:
        return self.vtn.responses(request_id)

    def awards(self, request_id: str) -> list[FlexAward]:
        return self.vtn.awards(request_id)

    def cancel(self, request_id: str) -> None:
        self.loop.call(self.vtn.cancel, request_id)

    def publish_prices(self, zone: str, start: int, prices_micro_per_kwh: list[int]) -> int:
        return self.loop.call(self.vtn.publish_prices, zone, start, prices_micro_per_kwh)

    def wait_for_answers(self, request_id: str, count: int, timeout_s: float) -> dict[str, str]:
        """Block until ``count`` VENs answered ``request_id`` or the timeout passed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answers = self.responses(request_id)
            if sum(opt != NO_RESPONSE for opt in answers.values()) >= count:
                break
            time.sleep(0.05)
        return self.responses(request_id)

    def stop(self) -> None:
        try:
            self.loop.run(self.vtn.stop(), timeout_s=10)
        finally:
            self.loop.close()
