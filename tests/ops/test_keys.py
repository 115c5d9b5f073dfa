"""Keystore v3 files: create, import, list, load with a passphrase file; the CLI around them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.errors import ConfigError
from gridledger.keys import import_key, list_keys, load_key, new_key

PASSPHRASE = "correct horse battery"


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")  # as an editor or a secret mount writes it
    return path


def test_a_new_key_is_encrypted_private_and_loads_back(
    tmp_path: Path, passphrase_file: Path
) -> None:
    entry = new_key(tmp_path / "ks", PASSPHRASE)
    text = entry.path.read_text()
    assert json.loads(text)["version"] == 3 and json.loads(text)["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    key = load_key(entry.path, passphrase_file)
    assert Account.from_key(key).address == entry.address
    assert key.hex() not in text
    assert list_keys(tmp_path / "ks") == [entry]


def test_import_keeps_the_address_and_refuses_the_same_key_twice(tmp_path: Path) -> None:
    key = bytes(range(1, 33))
    entry = import_key(tmp_path, key, PASSPHRASE)
    assert entry.address == Account.from_key(key).address
    with pytest.raises(ConfigError, match="already in the keystore"):
        import_key(tmp_path, key, PASSPHRASE)


def test_wrong_passphrase_short_passphrase_and_no_terminal(tmp_path: Path) -> None:
    entry = new_key(tmp_path, PASSPHRASE)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase")
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_key(entry.path, wrong)
    with pytest.raises(ConfigError, match="at least 8"):
        new_key(tmp_path, "short")
    with pytest.raises(ConfigError, match="--passphrase-file"):
        load_key(entry.path)  # pytest's stdin is not a terminal


def test_a_file_that_is_not_a_keystore_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": 1}')
    with pytest.raises(ConfigError, match=r"bogus\.json: not a keystore v3"):
        load_key(bogus, None)


def test_cli_new_import_list(tmp_path: Path, passphrase_file: Path) -> None:
    runner = CliRunner()
    ks = str(tmp_path / "ks")
    made = runner.invoke(
        app, ["keys", "new", "--keystore", ks, "--passphrase-file", str(passphrase_file)]
    )
    assert made.exit_code == 0, made.output
    hex_file = tmp_path / "key.hex"
    hex_file.write_text("0x" + "11" * 32 + "\n")
    imported = runner.invoke(
        app,
        [
            "keys",
            "import",
            str(hex_file),
            "--keystore",
            ks,
            "--passphrase-file",
            str(passphrase_file),
        ],
    )
    assert imported.exit_code == 0, imported.output
    assert Account.from_key(b"\x11" * 32).address in imported.output
    listed = runner.invoke(app, ["keys", "list", "--keystore", ks])
    assert listed.exit_code == 0
    assert len(listed.output.strip().splitlines()) == 2
    bad = tmp_path / "bad.hex"
    bad.write_text("zz")
    refused = runner.invoke(
        app,
        ["keys", "import", str(bad), "--keystore", ks, "--passphrase-file", str(passphrase_file)],
    )
    assert refused.exit_code == 1 and "not a hex private key" in refused.output
    assert "Traceback" not in refused.output
