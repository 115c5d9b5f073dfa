"""The documentation site builds offline with ``mkdocs build --strict``; references complete."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import typer.main

from gridledger.cli import app
from gridledger.config import Settings
from tests.support.services import REPO


def test_the_site_builds_strictly_with_every_setting_and_command(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        # any download would fail: the site must build offline
        **{name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "HTTPS_PROXY")},
        "no_proxy": "",
        "NO_PROXY": "",
    }
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    configuration = (site / "reference" / "configuration" / "index.html").read_text()
    for field in dataclasses.fields(Settings):
        assert f"GRIDLEDGER_{field.name.upper()}" in configuration, field.name
    cli = (site / "reference" / "cli" / "index.html").read_text()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        assert f"gridledger {name}" in cli, name
        for sub in getattr(command, "commands", {}):
            assert f"gridledger {name} {sub}" in cli, (name, sub)
    python = (site / "reference" / "python" / "index.html").read_text()
    assert "settle_with_delivery" in python and "load_key" in python
    for tutorial in ("own-feeder", "mqtt-meters", "evm-network", "verify-your-bill"):
        assert (site / "tutorials" / tutorial / "index.html").is_file()
