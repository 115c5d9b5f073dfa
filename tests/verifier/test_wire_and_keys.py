"""The package's JSON form round-trips; key files load as hex or keystore, or fail by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from gridledger.errors import ConfigError, ValidationError
from gridledger.verifier.attestation import settlement_hash_of_entries
from gridledger.verifier.keyfile import load_key_file
from gridledger.verifier.reexecute import NettingBase, reexecute, void_attestation
from gridledger.verifier.wire import package_from_json, package_to_json
from tests.verifier.test_reexecute import KEY, RULES, addr, honest


def test_package_round_trips_through_json() -> None:
    package, facts = honest(NettingBase(2, {addr("ana"): 7}))
    text = json.dumps(package_to_json(package))
    back = package_from_json(json.loads(text))
    assert back == package
    assert reexecute(back, facts, RULES, KEY) == package.attestation


def test_package_json_names_a_missing_field() -> None:
    package, _ = honest()
    data = package_to_json(package)
    del data["orders"][0]["signature"]
    with pytest.raises(ValidationError, match="signature"):
        package_from_json(data)


def test_void_attestation_keeps_the_committed_roots_and_moves_nothing() -> None:
    package, facts = honest()
    void = void_attestation(package, facts, "0x" + "00" * 20)
    assert (void.orders_root, void.result_root, void.readings_root) == (
        facts.orders_root,
        facts.result_root,
        facts.readings_root,
    )
    assert void.settlement_hash == settlement_hash_of_entries([])
    assert void != package.attestation


def test_hex_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("0x" + "11" * 32 + "\n")
    assert load_key_file(path) == bytes.fromhex("11" * 32)


def test_keystore_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(b"\x22" * 32, "pw", kdf="pbkdf2", iterations=2)))
    secret, wrong = tmp_path / "pass", tmp_path / "wrong"
    secret.write_text("pw\n")
    wrong.write_text("nope")
    assert load_key_file(path, secret) == b"\x22" * 32
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_key_file(path, wrong)


def test_bad_key_files_fail_by_name(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abcd")
    with pytest.raises(ConfigError, match="32 bytes"):
        load_key_file(short)
    with pytest.raises(ConfigError, match="cannot read"):
        load_key_file(tmp_path / "missing")
