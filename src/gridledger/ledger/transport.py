"""Connections to a chain: the in-process EVM ("memory") or an HTTP JSON-RPC node.

web3's HTTP provider retries idempotent reads on connection errors (a bounded number of times,
with backoff); sending is retried by the sender, which knows resending signed bytes is safe.
What is left here is mapping an unreachable node to ChainUnavailable, and getting raw revert
bytes out of each backend (eth-tester raises its own exception, a node returns JSON-RPC data).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from gridledger.errors import ChainError, ChainUnavailable

MEMORY = "memory"
# Keys of the funded dev accounts: eth-tester uses 0x..01, 0x..02, ...; anvil its mnemonic.
MEMORY_DEV_KEY = (1).to_bytes(32, "big")
ANVIL_DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
ANVIL_CHAIN_ID = 31337

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
)
RETRIES = 3  # then about 0.1 + 0.2 + 0.4 s of backoff before giving up
BACKOFF_S = 0.1

T = TypeVar("T")


@dataclass
class Connection:
    """A live Web3 plus what we learned about the chain once, at connect time."""

    chain: str
    w3: Web3
    chain_id: int
    block_gas_limit: int
    tester: Any = None  # the EthereumTester behind "memory", else None

    @property
    def is_memory(self) -> bool:
        return self.tester is not None

    def default_key(self) -> bytes:
        if self.is_memory:
            return MEMORY_DEV_KEY
        return ANVIL_DEV_KEY

    def call(self, fn: Callable[[], T]) -> T:
        """Run one read RPC (web3 retried it already); an unreachable node is ChainUnavailable."""
        return unavailable_as_chain_error(fn, self.chain)

    def revert_data(self, tx: dict[str, Any], block_number: int | str) -> bytes | None:
        """Replay `tx` as a call at `block_number`; the revert bytes, or None if it succeeds."""
        if self.tester is not None:
            return self._tester_revert_data(tx, block_number)
        try:
            self.call(lambda: self.w3.eth.call(tx, block_number))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            return _hex_bytes(exc.data)
        except Web3RPCError as exc:
            return _rpc_error_data(exc)
        return None

    def _tester_revert_data(self, tx: dict[str, Any], block_number: int | str) -> bytes | None:
        from eth_tester.exceptions import TransactionFailed

        call_tx = {k: tx[k] for k in ("from", "to", "data", "gas", "value") if k in tx}
        if isinstance(call_tx.get("data"), bytes):
            call_tx["data"] = "0x" + call_tx["data"].hex()
        try:
            self.tester.call(call_tx, block_number)
        except TransactionFailed as exc:
            first = exc.args[0] if exc.args else b""
            if isinstance(first, Exception):
                first = first.args[0] if first.args else b""
            if isinstance(first, bytes):
                return first
            return _parse_bytes_repr(str(first))
        return None


def unavailable_as_chain_error(fn: Callable[[], T], chain: str) -> T:
    try:
        return fn()
    except TRANSIENT_ERRORS as exc:
        raise ChainUnavailable(f"cannot reach the chain node at {chain}: {exc}") from exc


def connect(chain: str) -> Connection:
    if chain == MEMORY:
        provider = EthereumTesterProvider()
        w3 = Web3(provider)
        tester = provider.ethereum_tester
    elif chain.startswith(("http://", "https://")):
        retry = ExceptionRetryConfiguration(
            errors=TRANSIENT_ERRORS, retries=RETRIES, backoff_factor=BACKOFF_S
        )
        http = HTTPProvider(
            chain, request_kwargs={"timeout": 30}, exception_retry_configuration=retry
        )
        w3 = Web3(http)
        tester = None
    else:
        raise ChainError(f"unsupported chain {chain!r}: use 'memory' or an http(s) JSON-RPC URL")
    # We sign locally and pass every field explicitly, so web3's gas/ENS/validation layers only
    # cost time (they roughly halve throughput on the in-process EVM).
    for name in ("gas_price_strategy", "ens_name_to_address", "validation", "gas_estimate"):
        if name in w3.middleware_onion:
            w3.middleware_onion.remove(name)
    chain_id = unavailable_as_chain_error(lambda: w3.eth.chain_id, chain)
    latest = unavailable_as_chain_error(lambda: w3.eth.get_block("latest"), chain)
    return Connection(chain, w3, chain_id, int(latest["gasLimit"]), tester)


def _hex_bytes(data: Any) -> bytes | None:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _rpc_error_data(exc: Web3RPCError) -> bytes | None:
    response = exc.rpc_response or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict):
        return _hex_bytes(error.get("data"))
    return None


def _parse_bytes_repr(message: str) -> bytes | None:
    """eth-tester may stringify revert bytes as "execution reverted: b'...'"."""
    start = message.find("b'")
    if start < 0:
        start = message.find('b"')
    if start < 0:
        return None
    try:
        value = ast.literal_eval(message[start:])
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None
