"""Launchers for the real servers the tests use; see :mod:`tests.support.services`."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from gridledger.metering.mqtt import BROKER_LIMITS
from tests.support.services import REPO, Service, free_port, require_binary

ANVIL_CANDIDATES = [
    REPO / "contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    REPO / "contracts/node_modules/.bin/anvil",
]


def _popen(args: list[str], log: Path, user: str | None = None) -> subprocess.Popen[bytes]:
    if user is not None:
        args = ["runuser", "-u", user, "--", *args]
    out = log.open("ab")
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def start_anvil(workdir: Path) -> Service:
    binary = require_binary("anvil", ANVIL_CANDIDATES)
    port = free_port()
    log = workdir / "anvil.log"
    args = [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--chain-id", "31337"]
    service = Service("anvil", f"http://127.0.0.1:{port}", port, lambda: _popen(args, log), log=log)
    return service.start()


def start_mosquitto(workdir: Path) -> Service:
    binary = require_binary("mosquitto", [Path("/usr/sbin/mosquitto")])
    port = free_port()
    conf = workdir / "mosquitto.conf"
    (workdir / "mosquitto-data").mkdir(exist_ok=True)
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir / 'mosquitto-data'}/\nautosave_interval 1\n"
        + BROKER_LIMITS  # as the node's brokers are configured (docs/api.md)
    )
    log = workdir / "mosquitto.log"
    service = Service(
        "mosquitto",
        f"mqtt://127.0.0.1:{port}",
        port,
        lambda: _popen([binary, "-c", str(conf)], log),
        log=log,
    )
    return service.start()


def _pg_binary(name: str) -> str:
    return require_binary(
        name, sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    )


def start_postgres(workdir: Path) -> Service:
    """initdb refuses root, so the cluster is owned by the `postgres` user when we are root."""
    import os

    initdb, postgres = _pg_binary("initdb"), _pg_binary("postgres")
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        # pytest's temp folders are private to root; the postgres user needs its own.
        workdir = Path(tempfile.mkdtemp(prefix="gridledger-pg-"))
        subprocess.run(["chown", "-R", user, str(workdir)], check=True)
    data = workdir / "pgdata"
    log = workdir / "postgres.log"
    init = ["runuser", "-u", user, "--"] if user else []
    subprocess.run([*init, "mkdir", "-p", str(data)], check=True)
    subprocess.run(
        [*init, initdb, "-D", str(data), "-U", "gridledger", "--auth=trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    args = [
        postgres,
        "-D",
        str(data),
        "-c",
        "listen_addresses=127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(workdir),
        "-c",
        "fsync=on",
        "-c",
        "max_connections=200",
    ]
    url = f"postgresql+psycopg://gridledger@127.0.0.1:{port}/postgres"
    service = Service("postgres", url, port, lambda: _popen(args, log, user), log=log)
    service.start()
    wait_for_postgres(port)
    return service


def wait_for_postgres(port: int, timeout_s: float = 30.0) -> None:
    """The port opens before the server accepts sessions ("the database system is starting up")."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=gridledger dbname=postgres"):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
