"""A long-running process of another party (verifier, detector) until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from typing import Any, Protocol


class Service(Protocol):
    """What :func:`run_until_signal` needs: a stop flag that ``run`` watches, and a close."""

    stop: threading.Event

    def run(self) -> Any: ...

    def close(self) -> None: ...


def run_until_signal(service: Service) -> None:
    """Run ``service`` until SIGTERM/SIGINT sets its stop flag; close it however it ends."""

    def stop(_sig: int, _frame: Any) -> None:
        service.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        service.run()
    finally:
        service.close()
