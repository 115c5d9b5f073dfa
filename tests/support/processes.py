"""`gridledger` OS processes for end-to-end tests: a clean environment, a log file each, and a
stop (SIGTERM, then kill) registered on the test's ExitStack (the ``processes`` fixture of
tests/conftest.py) so a failing test leaves none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from tests.support.services import REPO


def gridledger_env(**extra: str) -> dict[str, str]:
    """This process's environment without its GRIDLEDGER_ settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def spawn_gridledger(
    args: list[str], log: Path, stack: ExitStack, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m gridledger ARGS`` writing to ``log``; stopped when ``stack`` closes."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridledger", *args],
            cwd=REPO,
            env=env or gridledger_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack.callback(stop_process, proc)
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, 20 s to finish, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def write_node_config(
    tmp: Path, chain: str, port: int, speed: int, grace_s: int, extra: str = ""
) -> Path:
    """A `gridledger node --config` file for an end-to-end test: the node's SQLite store and
    state under ``tmp``, anvil's first dev key as operator, rate limits out of the way."""
    from gridledger.ledger.transport import ANVIL_DEV_KEY

    config = tmp / "node.toml"
    config.write_text(
        f'chain = "{chain}"\n'
        f'db_url = "sqlite:///{tmp / "node.sqlite"}"\n'
        f'state_dir = "{tmp / "state"}"\n'
        f'operator_key = "0x{ANVIL_DEV_KEY.hex()}"\n'
        f"http_port = {port}\nspeed = {speed}\nsettle_grace_s = {grace_s}\n"
        "rate_limit_participant_per_min = 100000\nrate_limit_meter_per_min = 100000\n" + extra
    )
    return config
