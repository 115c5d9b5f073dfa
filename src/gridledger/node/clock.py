"""The market clock: wall time, or wall time sped up for demos (``--speed 60``: 15 min in 15 s).

Market time is ``origin_market_s + (wall - origin_wall_s) * speed``. At speed 1 the origin is
the Unix epoch, so market time *is* wall time; an accelerated clock starts wherever the node
tells it (a restart resumes where the last run stopped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class MarketClock:
    speed: int = 1
    origin_market_s: float = 0.0
    origin_wall_s: float = 0.0
    wall_s: Callable[[], float] = field(default=time.time, repr=False)

    @classmethod
    def starting_at(
        cls, market_s: float, speed: int, wall_s: Callable[[], float] = time.time
    ) -> MarketClock:
        """An accelerated clock reading ``market_s`` now (speed 1 ignores it: wall time)."""
        if speed == 1:
            return cls(1, 0.0, 0.0, wall_s)
        return cls(speed, market_s, wall_s(), wall_s)

    def now(self) -> float:
        return self.origin_market_s + (self.wall_s() - self.origin_wall_s) * self.speed

    def now_s(self) -> int:
        return int(self.now())

    def wall_seconds_until(self, market_s: float) -> float:
        """Wall seconds until the clock reads ``market_s`` (0 when already past)."""
        return max(market_s - self.now(), 0.0) / self.speed


def interval_start_s(instant_s: float, interval_length_s: int) -> int:
    """Start of the interval holding ``instant_s``."""
    return int(instant_s // interval_length_s) * interval_length_s
