"""The compiled contracts (ABI + bytecode) shipped with the package, and their custom errors.

The JSON files are written by ``contracts/scripts/compile.js`` and checked in;
``tests/ledger/test_artifacts.py`` proves they are reproducible from ``contracts/src``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.errors import ContractRevert

CONTRACT_NAMES = ("GridToken", "Registry", "Market", "PerTradeSettlement", "Evidence", "Consent")

# Built-in Solidity reverts: require(..., "reason") and panics (overflow, division by zero...).
_BUILTIN_ERRORS = (
    {"type": "error", "name": "Error", "inputs": [{"type": "string", "name": "reason"}]},
    {"type": "error", "name": "Panic", "inputs": [{"type": "uint256", "name": "code"}]},
)


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_hash: str


@cache
def load_artifact(name: str) -> Artifact:
    text = resources.files("gridledger.ledger").joinpath("artifacts", f"{name}.json").read_text()
    raw = json.loads(text)
    return Artifact(
        name=raw["contractName"],
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
        source_hash=raw["sourceHash"],
    )


def _canonical_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


@dataclass(frozen=True)
class ErrorAbi:
    name: str
    types: tuple[str, ...]


@cache
def error_table() -> dict[bytes, ErrorAbi]:
    """4-byte selector -> custom error, over every contract (same signature, same selector)."""
    table: dict[bytes, ErrorAbi] = {}
    entries = [e for n in CONTRACT_NAMES for e in load_artifact(n).abi if e["type"] == "error"]
    for entry in [*entries, *_BUILTIN_ERRORS]:
        types = tuple(_canonical_type(p) for p in entry["inputs"])
        signature = f"{entry['name']}({','.join(types)})"
        table[keccak(text=signature)[:4]] = ErrorAbi(entry["name"], types)
    return table


def decode_revert(data: bytes, tx_hash: str | None = None) -> ContractRevert:
    """Turn raw revert data into a ContractRevert naming the custom error and its arguments."""
    if not data:
        return ContractRevert("EmptyRevert", (), tx_hash)
    error = error_table().get(data[:4])
    if error is None:
        return ContractRevert("UnknownError", ("0x" + data.hex(),), tx_hash)
    try:
        args = abi_decode(list(error.types), data[4:])
    except Exception:  # malformed payload: report it raw rather than hide the revert
        return ContractRevert(error.name, ("0x" + data.hex(),), tx_hash)
    return ContractRevert(error.name, tuple(_plain(a) for a in args), tx_hash)


def _plain(value: Any) -> Any:
    """Checksum addresses as eth_abi returns them lower-case; leave numbers and bytes alone."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return value
