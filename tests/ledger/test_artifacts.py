"""The committed contract artifacts are exactly what the pinned compiler makes of contracts/src."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from gridledger.ledger.artifacts import CONTRACT_NAMES, load_artifact
from tests.ledger.conftest import deploy
from tests.support.services import REPO, in_ci

CONTRACTS = REPO / "contracts"
ARTIFACTS = REPO / "src/gridledger/ledger/artifacts"


def _require_node_toolchain() -> str:
    node = shutil.which("node")
    if node is None or not (CONTRACTS / "node_modules/solc").is_dir():
        message = "node or contracts/node_modules missing: run `npm ci` in contracts/"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return node


def test_compile_script_reproduces_the_committed_artifacts(tmp_path: Path) -> None:
    node = _require_node_toolchain()
    subprocess.run(
        [node, str(CONTRACTS / "scripts/compile.js"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in CONTRACT_NAMES:
        fresh = (tmp_path / f"{name}.json").read_bytes()
        assert fresh == (ARTIFACTS / f"{name}.json").read_bytes(), f"{name}.json is stale"


def test_source_hash_covers_exactly_the_current_sources() -> None:
    digest = hashlib.sha256()
    for path in sorted((CONTRACTS / "src").glob("*.sol")):
        digest.update(f"src/{path.name}\0".encode() + path.read_bytes() + b"\0")
    for name in CONTRACT_NAMES:
        artifact = load_artifact(name)
        assert artifact.source_hash == digest.hexdigest(), f"{name}: recompile contracts/src"


def test_deployed_code_is_the_artifact_runtime_code() -> None:
    # Market holds immutables (addresses patched in at deploy), so only these two compare as-is.
    ledger = deploy("memory")
    for name, address in (
        ("GridToken", ledger.deployment.token),
        ("Registry", ledger.deployment.registry),
    ):
        assert "0x" + ledger.code_at(address).hex() == load_artifact(name).deployed_bytecode
