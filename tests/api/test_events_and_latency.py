"""The event stream and the API's speed, measured against the live node over real HTTP."""

from __future__ import annotations

import json
import statistics
import time

import httpx

from tests.api.conftest import World
from tests.node.support import market


def _frames(lines: list[str]) -> list[tuple[str, dict[str, object]]]:
    frames, kind = [], ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            frames.append((kind, json.loads(line.removeprefix("data: "))))
    return frames


def test_the_event_stream_announces_gate_closures_quickly(world: World) -> None:
    """A browser hears of a gate closure within a fraction of a second (measured, printed)."""
    wait_s = market(world.url)["gate_closure_in_s"] + 2.0
    lines: list[str] = []
    arrived: list[float] = []
    with httpx.stream(
        "GET", f"{world.url}/v1/events", params={"limit_s": wait_s}, timeout=wait_s + 10
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                arrived.append(time.time())
    frames = _frames(lines)
    assert frames[0][0] == "hello" and "open_interval_start_s" in frames[0][1]
    closures = [
        (data, at)
        for (kind, data), at in zip(frames, arrived, strict=True)
        if kind == "gate_closed"
    ]
    assert closures, lines
    delays_s = [at - float(data["at_s"]) for data, at in closures]  # type: ignore[arg-type]
    print(f"SSE delay after gate closure: {max(delays_s) * 1000:.0f} ms")
    assert max(delays_s) < 1.0


def test_read_and_write_latency(world: World) -> None:
    """Median and p95 of public reads and authenticated statement reads (printed)."""
    with httpx.Client(base_url=world.url) as client:

        def timed(path: str, headers: dict[str, str] | None = None) -> float:
            began = time.perf_counter()
            assert client.get(path, headers=headers).status_code == 200
            return time.perf_counter() - began

        public = [timed("/v1/intervals?limit=96") for _ in range(40)]
        statement = f"/v1/participants/{world.victim.participant.address}/statement"
        own = [timed(statement, world.victim.participant.headers) for _ in range(40)]
    for name, samples in (("GET /v1/intervals", public), ("GET statement", own)):
        p95 = statistics.quantiles(samples, n=20)[18]
        print(f"{name}: median {statistics.median(samples) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
        assert statistics.median(samples) < 0.25
