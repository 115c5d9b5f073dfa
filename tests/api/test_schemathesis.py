"""Schemathesis against the live node's OpenAPI document: no input makes the server fail (5xx).

Runs the schemathesis CLI (property-based requests generated from the document) with a
participant's token, a bounded number of examples per operation and a fixed seed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import World

MAX_EXAMPLES = 20


def test_no_generated_request_causes_a_server_error(world: World, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.txt"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{world.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "8",
        "--phases",
        "examples,coverage,fuzzing",
        "--exclude-path",
        "/v1/events",  # an endless stream: covered by tests/web and test_sse
        "--header",
        f"Authorization: Bearer {world.victim.participant.token}",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=170)
    report.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert counts is not None and counts[1] == counts[2] and int(counts[1]) > 300, done.stdout
