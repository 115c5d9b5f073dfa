"""Checks a command makes before it starts work, and writing its results atomically.

A run that takes minutes must not lose its result to a typo in an output path or a service that
was never started, so commands check every path and URL first (each failure is one error that
says what to do), and results are written to a temporary file in the target folder and renamed
into place: a reader never sees half a file, and a failed run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from gridledger.errors import (
    ChainUnavailable,
    NotFoundError,
    ServiceUnavailable,
    StoreError,
    ValidationError,
)

TIMEOUT_S = 3.0


def _writable_folder(folder: Path, option: str) -> None:
    """Probe by writing (permission bits lie for root and on read-only file systems)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValidationError(
            option, f"cannot write in {folder} ({exc.strerror or exc}); choose another folder"
        ) from None


def check_output_file(path: Path, option: str = "--out") -> Path:
    """``path`` can be written: its folder exists and is writable, and it is not a folder."""
    if path.is_dir():
        raise ValidationError(option, f"{path} is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise ValidationError(option, f"folder {folder} does not exist; create it first")
    _writable_folder(folder, option)
    return path


def check_output_dir(path: Path, option: str = "--out") -> Path:
    """``path`` is, or can be created as, a writable folder (nothing is created here)."""
    if path.exists() and not path.is_dir():
        raise ValidationError(option, f"{path} is a file, not a folder; give a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValidationError(option, f"{existing} is a file, so {path} cannot be created")
    _writable_folder(existing, option)
    return path


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; results are meant to be read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def check_db_url(db_url: str, *, must_exist: bool = False, option: str = "--db") -> None:
    """A SQLite file's folder is writable (and the file exists when ``must_exist``).

    A server database is reached when the store opens it (it fails fast with one line).
    """
    import sqlalchemy as sa

    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"{option}: not a database URL: {db_url!r}; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    if url.get_backend_name() != "sqlite":
        _reach_server(url.host or "localhost", url.port or 5432, db_url, option)
        return
    if url.database in (None, "", ":memory:"):
        return
    file = Path(url.database)
    if must_exist and not file.is_file():
        raise NotFoundError(
            f"{option}: no database at {file}; run `gridledger demo` or `gridledger node` "
            "first, or pass --db URL"
        )
    if not must_exist:
        check_output_dir(file.parent, option)


def _reach_server(host: str, port: int, db_url: str, option: str) -> None:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        shown = db_url.split("@")[-1]  # never print a password
        raise StoreError(
            f"{option}: no database server answers at {shown} ({exc.strerror or exc}); "
            "start it or fix the URL"
        ) from None


def check_chain_url(chain: str, option: str = "--chain") -> None:
    """``memory``, or an EVM JSON-RPC node that answers ``eth_chainId`` within a few seconds."""
    if chain == "memory":
        return
    if urlsplit(chain).scheme not in ("http", "https"):
        raise ValidationError(option, f"must be 'memory' or an http(s) JSON-RPC URL, got {chain!r}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        chain, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = json.loads(response.read())
        if "result" not in answer:
            raise ValueError("no result")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ChainUnavailable(
            f"{option}: no EVM node answers at {chain} ({reason}); start one "
            "(e.g. `anvil --port 8545`) or use --chain memory"
        ) from None


def check_service_url(
    url: str, schemes: tuple[str, ...], what: str, hint: str, option: str
) -> None:
    """A TCP connection to ``url``'s host and port succeeds (``what`` is listening there)."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        shown = " or ".join(f"{s}://HOST:PORT" for s in schemes)
        raise ValidationError(option, f"must be a URL like {shown}, got {url!r}")
    default = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}.get(parts.scheme, 0)
    try:
        port = parts.port or default
    except ValueError:
        raise ValidationError(option, f"bad port in {url!r}") from None
    try:
        socket.create_connection((parts.hostname, port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        raise ServiceUnavailable(
            f"{option}: no {what} at {url} ({exc.strerror or exc}); {hint}"
        ) from None


def check_node_url(url: str, option: str = "--url") -> None:
    check_service_url(
        url, ("http", "https"), "gridledger node", "start one with `gridledger node`", option
    )


def check_broker_url(url: str, option: str = "--url") -> None:
    check_service_url(
        url,
        ("mqtt", "mqtts"),
        "MQTT broker",
        "start one (e.g. `mosquitto -p 1883`) or fix the URL",
        option,
    )


def check_address(value: str, option: str) -> str:
    """The EIP-55 form of an address; mixed case must match its checksum."""
    from eth_utils.address import is_address, is_checksum_address, to_checksum_address

    if is_checksum_address(value):
        return value
    if is_address(value):
        digits = value.removeprefix("0x")
        if digits in (digits.lower(), digits.upper()):  # no checksum given: take it as is
            return to_checksum_address(value)
        raise ValidationError(
            option,
            f"{value} fails its EIP-55 checksum (a mistyped letter?); "
            f"the checksummed form of these digits is {to_checksum_address(value)}",
        )
    raise ValidationError(option, f"not an address: {value!r}; give 0x and 40 hex digits")
