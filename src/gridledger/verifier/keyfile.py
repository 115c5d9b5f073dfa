"""A verifier's signing key from a file: a hex private key, or a keystore (gridledger keys)."""

from __future__ import annotations

from pathlib import Path

from gridledger.errors import ConfigError
from gridledger.keys import load_key, parse_hex_key


def load_key_file(path: Path, passphrase_file: Path | None = None) -> bytes:
    """The 32-byte key in ``path``: a keystore v3 file, or one hex key (tests and demos)."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"key file {path}: cannot read it ({exc.strerror})") from None
    if text.startswith("{"):
        return load_key(path, passphrase_file)
    return parse_hex_key(text, f"key file {path}")
