"""Start real servers (anvil, PostgreSQL, mosquitto) for tests: 127.0.0.1, a free port, a temp dir.

Each test session starts its own instances so a test can kill and restart them. A binary that
is missing skips the test on a developer machine but fails it under CI=true: CI must never pass
by silently skipping a backend.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(name: str, candidates: list[Path] | None = None) -> str:
    """Path of a server binary; fails under CI, skips elsewhere, when it is missing."""
    for path in candidates or []:
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run `make test` (it installs the test services)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class Service:
    """A server process the tests own: ``kill()`` it (SIGKILL) and ``start()`` it again."""

    name: str
    url: str
    port: int
    launch: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] | None = None
    on_stop: Callable[[], None] | None = None
    log: Path | None = field(default=None)

    def start(self) -> Service:
        self.proc = self.launch()
        wait_for_port(self.port, proc=self.proc)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.on_stop is not None:
            self.on_stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
