"""Sending transactions fast: local signing, a local nonce, fixed gas limits, tight receipt polls.

estimate_gas costs a full extra EVM execution (on py-evm roughly 45 tx/s instead of 140), so
callers pass a gas limit known to be safe for the function. A receipt with status 0 is replayed
as eth_call at its block to recover the custom error, raised as ContractRevert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from web3.exceptions import TransactionNotFound, Web3RPCError

from gridledger.errors import ChainError, ChainUnavailable, ContractRevert
from gridledger.ledger.artifacts import decode_revert
from gridledger.ledger.transport import BACKOFF_S, RETRIES, TRANSIENT_ERRORS, Connection

RECEIPT_POLL_S = 0.005
RECEIPT_TIMEOUT_S = 120.0
CONFIRMATION_POLL_S = 0.05
PRIORITY_FEE_WEI = 10**9
_FEE_REFRESH_EVERY = 64


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    gas_used: int
    block_number: int


@dataclass
class TxStats:
    """Totals of what one client sent, overall and per contract function."""

    tx_count: int = 0
    gas_used: int = 0
    by_function: dict[str, tuple[int, int]] = field(default_factory=dict)

    def record(self, function: str, gas_used: int) -> None:
        self.tx_count += 1
        self.gas_used += gas_used
        count, gas = self.by_function.get(function, (0, 0))
        self.by_function[function] = (count + 1, gas + gas_used)


class TxSender:
    """Signs and sends transactions from one key, one at a time, waiting for each receipt."""

    def __init__(
        self, conn: Connection, private_key: bytes, stats: TxStats, confirmations: int = 0
    ) -> None:
        self._conn = conn
        self._account = Account.from_key(private_key)
        self._stats = stats
        self._confirmations = confirmations
        self._nonce: int | None = None
        self._max_fee_wei = 0
        self._sent_since_fee_refresh = _FEE_REFRESH_EVERY

    @property
    def address(self) -> str:
        return str(self._account.address)

    @property
    def stats(self) -> TxStats:
        return self._stats

    def transact(
        self, to: str | None, data: bytes, gas: int, function: str, value_wei: int = 0
    ) -> tuple[TxResult, dict[str, Any]]:
        """Send and wait; returns the result and the raw receipt. Raises ContractRevert."""
        tx = self._build(to, data, min(gas, self._conn.block_gas_limit), value_wei)
        tx_hash = self._sign_and_send(tx)
        receipt = self._wait(tx_hash)
        gas_used = int(receipt["gasUsed"])
        self._stats.record(function, gas_used)
        if receipt["status"] != 1:
            raise self._explain_failure(tx, receipt, tx_hash)
        self._await_confirmations(int(receipt["blockNumber"]))
        return TxResult(tx_hash, gas_used, int(receipt["blockNumber"])), dict(receipt)

    def _build(self, to: str | None, data: bytes, gas: int, value_wei: int) -> dict[str, Any]:
        if self._nonce is None:
            self._resync_nonce()
        self._refresh_fee()
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self._conn.chain_id,
            "nonce": self._nonce,
            "gas": gas,
            "maxFeePerGas": self._max_fee_wei,
            "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
            "value": value_wei,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        return tx

    def _resync_nonce(self) -> None:
        w3 = self._conn.w3
        self._nonce = self._conn.call(
            lambda: w3.eth.get_transaction_count(self._account.address, "pending")
        )

    def _refresh_fee(self) -> None:
        # Twice the base fee survives several full blocks of base-fee growth (12.5% each).
        if self._sent_since_fee_refresh < _FEE_REFRESH_EVERY:
            self._sent_since_fee_refresh += 1
            return
        w3 = self._conn.w3
        block = self._conn.call(lambda: w3.eth.get_block("latest"))
        base_fee = int(block.get("baseFeePerGas", 0) or 0)
        self._max_fee_wei = 2 * base_fee + PRIORITY_FEE_WEI
        self._sent_since_fee_refresh = 1

    def _sign_and_send(self, tx: dict[str, Any]) -> str:
        for attempt in range(2):
            signed = self._account.sign_transaction(tx)
            try:
                self._send_raw(bytes(signed.raw_transaction))
            except Web3RPCError as exc:
                if attempt == 0 and "nonce" in str(exc).lower():
                    # Another client used this key: take the node's nonce and re-sign once.
                    self._resync_nonce()
                    tx["nonce"] = self._nonce
                    continue
                raise ChainError(f"node rejected the transaction: {exc}") from exc
            assert self._nonce is not None
            self._nonce += 1
            return "0x" + bytes(signed.hash).hex()
        raise AssertionError("unreachable")

    def _send_raw(self, raw: bytes) -> None:
        w3 = self._conn.w3
        for attempt in range(RETRIES + 1):
            try:
                w3.eth.send_raw_transaction(raw)
                return
            except TRANSIENT_ERRORS as exc:
                if attempt == RETRIES:
                    raise ChainUnavailable(f"cannot reach {self._conn.chain}: {exc}") from exc
                time.sleep(BACKOFF_S * 2**attempt)
            except Web3RPCError as exc:
                # Resending the very same bytes after a lost reply: the first one arrived (and
                # may be mined already). Never re-sign here: that could pay twice.
                message = str(exc).lower()
                if attempt > 0 and ("already known" in message or "nonce too low" in message):
                    return
                raise

    def _wait(self, tx_hash: str) -> Any:
        w3 = self._conn.w3
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        while True:
            try:
                return self._conn.call(lambda: w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    message = f"no receipt for {tx_hash} after {RECEIPT_TIMEOUT_S} s"
                    raise ChainError(message) from None
                time.sleep(RECEIPT_POLL_S)

    def _await_confirmations(self, block_number: int) -> None:
        if self._confirmations <= 0:
            return
        w3 = self._conn.w3
        target = block_number + self._confirmations
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        while self._conn.call(lambda: w3.eth.block_number) < target:
            if time.monotonic() > deadline:
                message = f"block {block_number} not {self._confirmations}x confirmed in time"
                raise ChainError(message)
            time.sleep(CONFIRMATION_POLL_S)

    def _explain_failure(self, tx: dict[str, Any], receipt: Any, tx_hash: str) -> ChainError:
        call = {"from": self.address, "data": tx["data"], "gas": tx["gas"], "value": tx["value"]}
        if "to" in tx:
            call["to"] = tx["to"]
        data = self._conn.revert_data(call, int(receipt["blockNumber"]))
        if data is not None:
            return decode_revert(data, tx_hash)
        if int(receipt["gasUsed"]) >= int(tx["gas"]):
            return ContractRevert("OutOfGas", (int(tx["gas"]),), tx_hash)
        return ChainError(f"transaction {tx_hash} failed but its replay succeeds")
