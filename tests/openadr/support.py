"""Shared parts of the OpenADR tests: settings, households and a real VTN on a free port."""

from __future__ import annotations

import time
from collections.abc import Callable

from gridledger.config import Settings
from gridledger.flex import Direction, FlexRequest

INTERVAL_S = 900
ZONE = "trafo-1"
# Poll every second: the VTN cannot push over simpleHttp, the VENs' polling is the latency.
SETTINGS = Settings(openadr_port=0, openadr_poll_s=1, openadr_report_interval_s=1)


def next_interval_start(now_s: float | None = None) -> int:
    now = int(time.time() if now_s is None else now_s)
    return (now // INTERVAL_S + 1) * INTERVAL_S


def flex_request(
    request_id: str, power_w: int = 6000, direction: Direction = "down"
) -> FlexRequest:
    return FlexRequest(
        request_id=request_id,
        zone=ZONE,
        direction=direction,
        power_w=power_w,
        start=next_interval_start(),
        intervals=2,
        price_micro_per_kwh=250_000,
    )


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
