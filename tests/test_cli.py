"""The `gridledger` command as a user runs it: a real process, real files, a real anvil node."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gridledger.eip712 import address_of, key_from_seed
from tests.support.services import Service

GRIDLEDGER = [sys.executable, "-m", "gridledger"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GRIDLEDGER, *args], capture_output=True, text=True, timeout=300)


def test_market_clear_prints_json_for_a_csv_book(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    book.write_text(
        "id,side,energy_wh,price\n1,buy,1000,250000\n2,sell,800,100000\n"
        "3,sell,500,200000\n4,buy,300,90000\n"
    )
    done = run("market", "clear", "--orders", str(book), "--grid-fee", "10000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["cleared_energy_wh"] == 1000
    assert result["clearing_price_micro_per_kwh"] == 220_000  # (250k - 10k fee + 200k) / 2


def test_a_bad_csv_row_is_named_and_exits_1(tmp_path: Path) -> None:
    book = tmp_path / "bad.csv"
    book.write_text("id,side,energy_wh,price\n1,buy,1000,250000\n2,sell,-5,100000\n")
    done = run("market", "clear", "--orders", str(book))
    assert done.returncode == 1
    assert "row 3, energy_wh" in done.stderr and "Traceback" not in done.stderr


def test_demo_on_anvil_then_a_statement_verifies_and_tampering_is_caught(
    anvil_server: Service, tmp_path: Path
) -> None:
    db = tmp_path / "demo.sqlite"
    summary_path = tmp_path / "summary.json"
    done = run(
        "demo",
        "--chain",
        anvil_server.url,
        "--db",
        f"sqlite:///{db}",
        "--households",
        "3",
        "--intervals",
        "4",
        "--first-interval",
        "48",
        "--no-serve",
        "--json",
        str(summary_path),
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["settled_intervals"] == summary["intervals"] == 4
    who = address_of(key_from_seed("household-1"))
    verified = run(
        "statement",
        "--participant",
        who,
        "--month",
        "2016-06",
        "--verify",
        "--db",
        f"sqlite:///{db}",
    )
    assert verified.returncode == 0, verified.stderr
    assert "verified 4 intervals" in verified.stderr
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE statement_lines SET amount_micro = amount_micro - 1 WHERE id = "
            "(SELECT min(id) FROM statement_lines WHERE participant = ?)",
            (who,),
        )
    tampered = run("statement", "--participant", who, "--verify", "--db", f"sqlite:///{db}")
    assert tampered.returncode == 1
    assert "FAILS" in tampered.stderr and "line 1" in tampered.stderr


def test_statement_of_an_embedded_chain_run_says_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "memory.sqlite"
    done = run(
        "demo", "--db", f"sqlite:///{db}", "--households", "2", "--intervals", "1", "--no-serve"
    )
    assert done.returncode == 0, done.stderr
    who = address_of(key_from_seed("household-0"))
    verified = run("statement", "--participant", who, "--verify", "--db", f"sqlite:///{db}")
    assert verified.returncode == 1
    assert "--chain URL" in verified.stderr


@pytest.mark.parametrize("name", ["15minLP_15Days.xml", "test_usage_data_01.xml"])
def test_meter_import_reads_real_green_button_files(greenbutton_dir: Path, name: str) -> None:
    done = run("meter", "import", str(greenbutton_dir / name))
    assert done.returncode == 0, done.stderr
    assert "intervals of 15 min from" in done.stdout and "gaps: 0" in done.stdout


def test_sim_runs_a_scenario_on_the_embedded_chain(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(
        'name = "tiny"\n[community]\nhouseholds = 4\n[run]\ndays = 1\nchain = "memory"\n'
    )
    done = run("sim", str(scenario), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["kpis"]["gas_used"] > 0
    assert (tmp_path / "out" / "report.html").read_text().count("<img") >= 5


def test_a_bad_scenario_key_is_named(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[market]\nstrategy = "psychic"\n')
    done = run("sim", str(scenario))
    assert done.returncode == 1
    assert "market.strategy" in done.stderr
