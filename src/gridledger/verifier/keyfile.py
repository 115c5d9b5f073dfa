"""A verifier's signing key from a file: a hex private key, or an eth-account keystore (v3)."""

from __future__ import annotations

import json
from pathlib import Path

from gridledger.errors import ConfigError


def load_key_file(path: Path, passphrase: str | None = None) -> bytes:
    """The 32-byte key in ``path``; a keystore needs ``passphrase`` (ConfigError names the file)."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"key file {path}: cannot read it ({exc.strerror})") from None
    if text.startswith("{"):
        return _from_keystore(path, text, passphrase)
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ConfigError(f"key file {path}: neither a hex key nor a keystore") from None
    if len(key) != 32:
        raise ConfigError(f"key file {path}: a key is 32 bytes, this one has {len(key)}")
    return key


def _from_keystore(path: Path, text: str, passphrase: str | None) -> bytes:
    from eth_account import Account

    if passphrase is None:
        raise ConfigError(f"key file {path}: a keystore: give its passphrase file")
    try:
        return bytes(Account.decrypt(json.loads(text), passphrase))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"key file {path}: cannot decrypt the keystore ({exc})") from None
