"""gridledger stack: compose.yaml names what `stack up` runs; `stack up` brings it up healthy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from gridledger.stack.local import (
    DATABASE,
    DB_USER,
    SERVICES,
    STANDARD_PORTS,
    Ports,
    anvil_command,
    mosquitto_config,
    node_command,
    node_settings_env,
)
from tests.support.servers import ANVIL_CANDIDATES
from tests.support.services import REPO, require_binary

COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())


def in_containers(text: str) -> str:
    """A local setting as compose writes it: services by name, listening on every interface."""
    for name, port in STANDARD_PORTS.items():
        text = text.replace(f"127.0.0.1:{port}", f"{name}:{port}")
    return text.replace("127.0.0.1", "0.0.0.0")


def test_compose_runs_the_same_services_commands_and_settings() -> None:
    services = COMPOSE["services"]
    assert tuple(services) == SERVICES
    node = services["node"]
    assert node["command"] == node_command()[1:]  # the image's entrypoint is `gridledger`
    local = node_settings_env(Ports.starting_at(None), "/var/lib/gridledger/node")
    assert {k: in_containers(v) for k, v in local.items()} == {
        k: str(v) for k, v in node["environment"].items()
    }
    anvil = services["anvil"]["command"]
    assert anvil[: len(anvil_command(8545))] == [in_containers(a) for a in anvil_command(8545)]
    assert "--state" in anvil
    conf = COMPOSE["configs"]["mosquitto"]["content"]
    assert conf == in_containers(mosquitto_config(1883, "/mosquitto/data"))
    pg = services["postgres"]["environment"]
    assert (pg["POSTGRES_USER"], pg["POSTGRES_DB"]) == (DB_USER, DATABASE)
    assert "5432" in services["postgres"]["command"]
    assert node["ports"] == [f"127.0.0.1:{STANDARD_PORTS['node']}:{STANDARD_PORTS['node']}"]


def test_the_dockerfile_is_multi_stage_non_root_and_pinned() -> None:
    text = (REPO / "Dockerfile").read_text()
    bases = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert len(bases) >= 2 and all(":" in b and not b.endswith(":latest") for b in bases)
    assert "USER gridledger" in text and "-c constraints.txt" in text


def free_run(length: int) -> int:
    for base in range(24_000, 60_000, 97):
        ports = range(base, base + length)
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    require_binary("mosquitto", [Path("/usr/sbin/mosquitto")])
    require_binary("anvil", ANVIL_CANDIDATES)
    folder = Path(tempfile.mkdtemp(prefix="gridledger-stack-"))
    os.chmod(folder, 0o755)  # the postgres user (when we are root) must reach its cluster
    yield folder
    gridledger(folder, "down")


def gridledger(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gridledger", "stack", args[0], "--dir", str(folder)]
    return subprocess.run([*command, *args[1:]], capture_output=True, text=True, timeout=300)


def test_stack_up_status_down(stack_dir: Path) -> None:
    base = free_run(4)
    up = gridledger(stack_dir, "up", "--ports-from", str(base))
    assert up.returncode == 0, up.stderr + (stack_dir / "logs" / "node.log").read_text()[-2000:]
    assert f"http://127.0.0.1:{base + 3}/" in up.stdout
    status = gridledger(stack_dir, "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == len(SERVICES)
    ready = httpx.get(f"http://127.0.0.1:{base + 3}/readyz", timeout=10).json()
    assert ready["checks"] == {"store": "ok", "chain": "ok"}
    assert {p.name for p in (stack_dir / "logs").iterdir()} >= {f"{s}.log" for s in SERVICES}
    down = gridledger(stack_dir, "down")
    assert down.returncode == 0 and "node" in down.stdout
    after = gridledger(stack_dir, "status")
    assert after.returncode == 1 and after.stdout.count("stopped") == len(SERVICES)
    assert all(_free(base + i) for i in range(4))
