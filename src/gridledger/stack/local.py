"""``gridledger stack up|status|down``: the whole local stack as supervised processes in one folder.

PostgreSQL (a cluster made with initdb in ``DIR/postgres``), mosquitto, anvil and the node, each
started detached with its log in ``DIR/logs``, checked until healthy, and recorded in
``DIR/stack.json`` so ``status`` and ``down`` find them again. ``compose.yaml`` runs the same
services with the same commands and settings in containers (:data:`SERVICES` is the one list).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridledger.errors import ConfigError, ServiceUnavailable
from gridledger.metering.mqtt import BROKER_LIMITS

SERVICES = ("postgres", "mosquitto", "anvil", "node")
STANDARD_PORTS = {"postgres": 5432, "mosquitto": 1883, "anvil": 8545, "node": 8000}
DATABASE = "gridledger"
DB_USER = "gridledger"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Ports:
    postgres: int
    mosquitto: int
    anvil: int
    node: int

    @classmethod
    def starting_at(cls, first: int | None) -> Ports:
        if first is None:
            return cls(**STANDARD_PORTS)
        return cls(*(first + i for i in range(len(SERVICES))))


def node_settings_env(ports: Ports, state_dir: str) -> dict[str, str]:
    """The node's settings, as environment variables (the same in compose.yaml)."""
    return {
        "GRIDLEDGER_CHAIN": f"http://127.0.0.1:{ports.anvil}",
        "GRIDLEDGER_DB_URL": f"postgresql+psycopg://{DB_USER}@127.0.0.1:{ports.postgres}/{DATABASE}",
        "GRIDLEDGER_MQTT_URL": f"mqtt://127.0.0.1:{ports.mosquitto}",
        "GRIDLEDGER_HTTP_HOST": "127.0.0.1",
        "GRIDLEDGER_HTTP_PORT": str(ports.node),
        "GRIDLEDGER_STATE_DIR": state_dir,
    }


def node_command() -> list[str]:
    return ["gridledger", "node"]


def anvil_command(port: int) -> list[str]:
    return ["anvil", "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337"]


def mosquitto_config(port: int, data_dir: str) -> str:
    return (
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {data_dir}/\n{BROKER_LIMITS}"
    )


def urls(ports: Ports) -> dict[str, str]:
    return {
        "dashboard": f"http://127.0.0.1:{ports.node}/",
        "api": f"http://127.0.0.1:{ports.node}/docs",
        "metrics": f"http://127.0.0.1:{ports.node}/metrics",
        "database": f"postgresql://{DB_USER}@127.0.0.1:{ports.postgres}/{DATABASE}",
        "mqtt": f"mqtt://127.0.0.1:{ports.mosquitto}",
        "chain": f"http://127.0.0.1:{ports.anvil}",
    }


# -- up ----------------------------------------------------------------------------------------
def stack_up(folder: Path, first_port: int | None = None) -> dict[str, Any]:
    """Start every service not running yet, wait until each is healthy; returns the record."""
    folder = folder.resolve()
    record = _read_record(folder)
    if record and all(_alive(p) for p in record["pids"].values()):
        raise ConfigError(f"{folder}: the stack runs already; gridledger stack down --dir {folder}")
    ports = Ports.starting_at(first_port)
    for name in SERVICES:
        if _listening(getattr(ports, name)):
            raise ServiceUnavailable(
                f"port {getattr(ports, name)} ({name}) is taken: stop what uses it or pass "
                "--ports-from N"
            )
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}
    record = {"ports": ports.__dict__, "pids": pids, "urls": urls(ports)}
    try:
        pids["postgres"] = _start_postgres(folder, ports.postgres, logs)
        pids["mosquitto"] = _start_mosquitto(folder, ports.mosquitto, logs)
        pids["anvil"] = _spawn(_anvil_argv(ports.anvil), logs / "anvil.log")
        _wait("anvil", lambda: _rpc_ok(ports.anvil), pids["anvil"])
        env = {**os.environ, **node_settings_env(ports, str(folder / "node"))}
        argv = [sys.executable, "-m", "gridledger", *node_command()[1:]]
        pids["node"] = _spawn(argv, logs / "node.log", env)
        _wait("node", lambda: _http_ok(f"http://127.0.0.1:{ports.node}/readyz"), pids["node"])
    except BaseException:
        _write_record(folder, record)
        stack_down(folder)
        raise
    _write_record(folder, record)
    return record


def _start_postgres(folder: Path, port: int, logs: Path) -> int:
    initdb, postgres = _pg_binary("initdb"), _pg_binary("postgres")
    data = folder / "postgres"
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if not (data / "PG_VERSION").exists():
        data.mkdir(exist_ok=True)
        if as_user:  # initdb refuses root: the cluster belongs to the postgres user
            subprocess.run(["chown", "-R", "postgres", str(data)], check=True)
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
    log = logs / "postgres.log"
    if as_user:
        log.touch()
        shutil.chown(log, "postgres")
    argv = [*as_user, postgres, "-D", str(data), "-p", str(port), "-k", str(data)]
    argv += ["-c", "listen_addresses=127.0.0.1"]
    pid = _spawn(argv, log)
    _wait("postgres", lambda: _database_ready(port), pid)
    return pid


def _database_ready(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user={DB_USER} dbname=postgres", autocommit=True
        ) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if found.fetchone() is None:
                conn.execute(f"CREATE DATABASE {DATABASE}")
        return True
    except psycopg.OperationalError:
        return False


def _start_mosquitto(folder: Path, port: int, logs: Path) -> int:
    binary = _binary("mosquitto", [Path("/usr/sbin/mosquitto")])
    data = folder / "mosquitto"
    data.mkdir(exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, str(data)))
    pid = _spawn([binary, "-c", str(conf)], logs / "mosquitto.log")
    _wait("mosquitto", lambda: _listening(port), pid)
    return pid


def _anvil_argv(port: int) -> list[str]:
    repo_anvil = Path(__file__).resolve().parents[3] / "contracts/node_modules/.bin/anvil"
    binary = _binary("anvil", [repo_anvil])
    return [binary, *anvil_command(port)[1:], "--state", "anvil-state.json"]


# -- status and down -----------------------------------------------------------------------------
def stack_status(folder: Path) -> dict[str, dict[str, Any]]:
    """Each service: its pid, whether it runs, whether its health check passes."""
    record = _read_record(folder.resolve())
    if record is None:
        raise ConfigError(f"{folder}: no stack here; start one with gridledger stack up --dir DIR")
    ports = Ports(**record["ports"])
    checks: dict[str, Callable[[], bool]] = {
        "postgres": lambda: _database_ready(ports.postgres),
        "mosquitto": lambda: _listening(ports.mosquitto),
        "anvil": lambda: _rpc_ok(ports.anvil),
        "node": lambda: _http_ok(f"http://127.0.0.1:{ports.node}/readyz"),
    }
    status = {}
    for name in SERVICES:
        pid = record["pids"].get(name)
        running = pid is not None and _alive(pid)
        status[name] = {"pid": pid, "running": running, "healthy": running and checks[name]()}
    return status


def stack_down(folder: Path) -> list[str]:
    """Stop the services in reverse order (SIGTERM, then SIGKILL after a grace period)."""
    record = _read_record(folder.resolve())
    if record is None:
        return []
    stopped = []
    for name in reversed(SERVICES):
        pid = record["pids"].get(name)
        if pid is not None and _alive(pid):
            _terminate(pid)
            stopped.append(name)
    record["pids"] = {}
    _write_record(folder.resolve(), record)
    return stopped


# -- processes -----------------------------------------------------------------------------------
def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=log.parent.parent,
            start_new_session=True,  # survives this command; stopped by stack down
        )
    return proc.pid


def _wait(name: str, healthy: Callable[[], bool], pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy():
        if not _alive(pid):
            raise ServiceUnavailable(f"{name} exited during start-up: see its log in logs/")
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"{name} is not healthy after {START_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _rpc_ok(port: int) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def _binary(name: str, candidates: list[Path]) -> str:
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise ServiceUnavailable(f"{name} is not installed: install it (make services) first")
    return found


def _pg_binary(name: str) -> str:
    return _binary(name, sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True))


def _read_record(folder: Path) -> dict[str, Any] | None:
    path = folder / "stack.json"
    if not path.exists():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    (folder / "stack.json").write_text(json.dumps(record, indent=2) + "\n")
