"""Signing keys at rest: encrypted keystore files (the Ethereum keystore v3 format, eth-account).

The operator node, meters and verifiers load their secp256k1 key with :func:`load_key` from a
keystore file, with the passphrase from a file (a mounted secret) or typed at a prompt. A hex key
in the environment (``GRIDLEDGER_OPERATOR_KEY``) remains for tests and the demo only.

Keystores are written with scrypt (the v3 default), mode 0600, never over an existing file, and
named ``UTC--<time>--<address>.json`` as geth and Foundry do, so those tools read them too.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address

from gridledger.errors import ConfigError, DataSourceError

MIN_PASSPHRASE_CHARS = 8


@dataclass(frozen=True)
class KeystoreEntry:
    path: Path
    address: str  # EIP-55


def new_key(folder: Path, passphrase: str) -> KeystoreEntry:
    """A fresh random key, written encrypted into ``folder``."""
    account = Account.create()
    return _write(folder, bytes(account.key), passphrase)


def import_key(folder: Path, private_key: bytes, passphrase: str) -> KeystoreEntry:
    """An existing 32-byte key, written encrypted into ``folder``."""
    if len(private_key) != 32:
        raise ConfigError(f"key: a private key is 32 bytes, got {len(private_key)}")
    return _write(folder, private_key, passphrase)


def list_keys(folder: Path) -> list[KeystoreEntry]:
    """The keystore files in ``folder`` with their addresses (nothing is decrypted)."""
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob("*.json")):
        data = _read_keystore(path)
        entries.append(
            KeystoreEntry(path, to_checksum_address("0x" + str(data["address"]).removeprefix("0x")))
        )
    return entries


def load_key(path: str | Path, passphrase_file: str | Path | None = None) -> bytes:
    """The private key in keystore ``path``; the passphrase from ``passphrase_file`` or a prompt.

    Without a passphrase file and without a terminal to ask on, a ConfigError says what to pass.
    """
    keystore = Path(path)
    data = _read_keystore(keystore)
    passphrase = read_passphrase(passphrase_file, f"passphrase of {keystore.name}: ")
    try:
        return bytes(Account.decrypt(data, passphrase))
    except ValueError:
        raise ConfigError(
            f"{keystore}: wrong passphrase (the keystore's MAC does not match)"
        ) from None


def read_passphrase(passphrase_file: str | Path | None, prompt: str, confirm: bool = False) -> str:
    """The passphrase in a file (trailing newline dropped), else typed at the terminal."""
    if passphrase_file is not None:
        try:
            return Path(passphrase_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise DataSourceError(f"passphrase file {passphrase_file}: {exc.strerror}") from None
    if not sys.stdin.isatty():
        raise ConfigError("no passphrase: pass --passphrase-file FILE (no terminal to ask on)")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigError("the two passphrases differ")
    return first


def parse_hex_key(text: str, field: str = "key") -> bytes:
    try:
        key = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise ConfigError(f"{field}: not a hex private key") from None
    if len(key) != 32:
        raise ConfigError(f"{field}: a private key is 32 bytes, got {len(key)}")
    return key


def _write(folder: Path, private_key: bytes, passphrase: str) -> KeystoreEntry:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ConfigError(f"passphrase: at least {MIN_PASSPHRASE_CHARS} characters")
    encrypted = Account.encrypt(private_key, passphrase)
    address = Account.from_key(private_key).address
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"UTC--{stamp}--{address[2:].lower()}.json"
    for existing in list_keys(folder):
        if existing.address == address:
            raise ConfigError(f"{existing.path}: this key is already in the keystore")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: exists already; not overwritten") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(encrypted, out)
    return KeystoreEntry(path, address)


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataSourceError(f"keystore {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise ConfigError(f"keystore {path}: not a JSON keystore file") from None
    if not isinstance(data, dict) or data.get("version") != 3 or "address" not in data:
        raise ConfigError(f"keystore {path}: not a keystore v3 file (version 3, address)")
    return data
