"""Every command with every kind of bad input: one line on stderr, exit 1, no file created.

The commands run in-process (typer's runner, a fresh empty working folder) so the whole matrix
stays fast; the services are really down (a port nothing listens on), the files really missing.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.eip712 import address_of, key_from_seed
from gridledger.store import Store

GREENBUTTON = Path(__file__).resolve().parents[1] / "data" / "greenbutton" / "15minLP_15Days.xml"
NOBODY = address_of(key_from_seed("nobody"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DOWN = f"127.0.0.1:{closed_port()}"


def store_file(root: Path) -> str:
    """An existing, empty gridledger database (no participants, no meters)."""
    url = f"sqlite:///{root / 'known.sqlite'}"
    Store.open(url).close()
    return url


# (case id, argv builder given the inputs folder, words the error line must contain)
Case = tuple[str, Callable[[Path], list[str]], str]
CASES: list[Case] = [
    ("clear-missing-file", lambda d: ["market", "clear", "--orders", "no.csv"], "no.csv"),
    ("clear-a-folder", lambda d: ["market", "clear", "--orders", str(d)], "cannot read"),
    ("import-missing-file", lambda d: ["meter", "import", "no.xml"], "no.xml"),
    (
        "import-out-in-missing-folder",
        lambda d: ["meter", "import", str(GREENBUTTON), "--out", "missing/x.json"],
        "does not exist",
    ),
    (
        "import-out-is-a-folder",
        lambda d: ["meter", "import", str(GREENBUTTON), "--out", str(d)],
        "is a folder",
    ),
    (
        "import-meter-not-an-address",
        lambda d: ["meter", "import", str(GREENBUTTON), "--meter", "alice"],
        "--meter",
    ),
    ("export-meter-not-an-address", lambda d: ["meter", "export", "--meter", "0xabc"], "--meter"),
    ("export-no-database", lambda d: ["meter", "export", "--meter", NOBODY], "no database"),
    (
        "export-unknown-meter",
        lambda d: ["meter", "export", "--meter", NOBODY, "--db", store_file(d)],
        "not registered",
    ),
    (
        "export-out-in-missing-folder",
        lambda d: ["meter", "export", "--meter", NOBODY, "--db", store_file(d), "--out", "m/x.xml"],
        "does not exist",
    ),
    (
        "simulate-node-down",
        lambda d: ["meter", "simulate", "--url", f"http://{DOWN}"],
        "gridledger node",
    ),
    (
        "simulate-broker-down",
        lambda d: ["meter", "simulate", "--via", "mqtt", "--url", f"mqtt://{DOWN}"],
        "MQTT broker",
    ),
    ("simulate-bad-key", lambda d: ["meter", "simulate", "--url", "ftp://x"], "--url"),
    (
        "statement-not-an-address",
        lambda d: ["statement", "--participant", "0xabc"],
        "--participant",
    ),
    (
        "statement-bad-checksum",
        lambda d: ["statement", "--participant", NOBODY[:2] + NOBODY[2:].swapcase()],
        "checksum",
    ),
    ("statement-no-database", lambda d: ["statement", "--participant", NOBODY], "no database"),
    (
        "statement-unknown-participant",
        lambda d: ["statement", "--participant", NOBODY, "--db", store_file(d)],
        "not registered",
    ),
    ("demo-chain-down", lambda d: ["demo", "--chain", f"http://{DOWN}", "--no-serve"], "anvil"),
    (
        "demo-database-down",
        lambda d: ["demo", "--db", f"postgresql+psycopg://me:secret@{DOWN}/x", "--no-serve"],
        "no database server",
    ),
    (
        "demo-json-in-missing-folder",
        lambda d: ["demo", "--json", "m/s.json", "--no-serve"],
        "--json",
    ),
    ("node-chain-down", lambda d: ["node", "--chain", f"http://{DOWN}"], "start one"),
    ("node-missing-config", lambda d: ["node", "--config", "no.toml"], "no.toml"),
    (
        "node-database-under-a-file",
        lambda d: ["node", "--db", f"sqlite:///{d / 'book.csv'}/x.sqlite"],
        "is a file",
    ),
    ("sim-missing-scenario", lambda d: ["sim", "no.toml"], "no.toml"),
    (
        "sim-out-is-a-file",
        lambda d: ["sim", str(d / "tiny.toml"), "--out", str(d / "book.csv")],
        "--out",
    ),
    (
        "sim-out-under-a-file",
        lambda d: ["sim", str(d / "tiny.toml"), "--out", str(d / "book.csv" / "out")],
        "cannot be created",
    ),
    ("bench-chain-down", lambda d: ["bench", "chain", "--chain", f"http://{DOWN}"], "--chain"),
    (
        "bench-ingest-database-under-a-file",
        lambda d: ["bench", "ingest", "--db", f"sqlite:///{d / 'book.csv'}/x.sqlite"],
        "--db",
    ),
]


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Input files in one folder; the command runs in another, empty, working folder."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "book.csv").write_text("id,side,energy_wh,price\n1,buy,100,1\n")
    (folder / "tiny.toml").write_text("[community]\nhouseholds = 2\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("GRIDLEDGER_DB_URL", "GRIDLEDGER_CHAIN", "GRIDLEDGER_MQTT_URL"):
        monkeypatch.delenv(name, raising=False)
    return folder


def assert_one_line_error(argv: list[str], words: str, root: Path) -> None:
    before = files_under(root)
    result = CliRunner().invoke(app, argv)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, (argv, result.stdout, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert words in lines[0], lines[0]
    assert "secret" not in lines[0]  # a password in a URL is never printed
    assert files_under(root) == before, "a failed command left a file behind"


@pytest.mark.parametrize(("argv_of", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_no_file(
    inputs: Path, argv_of: Callable[[Path], list[str]], words: str
) -> None:
    argv = argv_of(inputs)  # may create the known database, which is an input
    assert_one_line_error(argv, words, inputs.parent)


def test_node_with_the_broker_down_fails_before_it_starts(
    inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDLEDGER_MQTT_URL", f"mqtt://{DOWN}")
    assert_one_line_error(["node"], "GRIDLEDGER_MQTT_URL", inputs.parent)


def test_bench_market_without_the_dev_extras_says_how_to_get_them(
    inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pymarket", None)  # what `import pymarket` sees uninstalled
    assert_one_line_error(["bench", "market", "--orders", "10"], "gridledger[dev]", inputs.parent)


def test_an_unknown_participant_is_an_empty_statement_only_when_asked(inputs: Path) -> None:
    db = store_file(inputs)
    result = CliRunner().invoke(
        app, ["statement", "--participant", NOBODY.lower(), "--db", db, "--allow-empty"]
    )
    assert result.exit_code == 0, result.stderr
    assert NOBODY in result.stdout  # a lower-case address is read as its EIP-55 form


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("gridledger ")
