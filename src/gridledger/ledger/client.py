"""The operator's view of the chain: deploy or attach the contracts, then register, escrow,
commit and settle intervals, and read everything back.

All amounts are ints in micro-units (the token has 6 decimals) and energy is in Wh.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from web3.contract import Contract

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.errors import ChainError, ChainUnavailable, ConflictError, ValidationError
from gridledger.ledger.artifacts import load_artifact
from gridledger.ledger.entries import pack_entries, unpack_entry
from gridledger.ledger.netting import NettingBook, NettingClaim, NettingRoot
from gridledger.ledger.sender import TxResult, TxSender, TxStats
from gridledger.ledger.transport import MEMORY, Connection, connect
from gridledger.verifier.attestation import (
    IntervalAttestation,
    settlement_hash_of_entries,
    settlement_hash_of_root,
)
from gridledger.verifier.panel import AttestationSource

DOMAIN_NAME = "gridledger"
DOMAIN_VERSION = "1"
GRID_OPERATOR_SEED = "grid-operator"
GRID_OPERATOR_ETH_WEI = 10**17  # 0.1 ETH: gas for the few transactions it may ever send
INTERVAL_S = 900
DEFAULT_EXIT_AFTER_INTERVALS = 96  # a day without a settlement opens the exit
_UINT256_MAX = (1 << 256) - 1

ACCOUNTS_VIEW_BATCH = 1_000  # accounts per accountsView call (a node's call gas cap)

# Fixed gas limits, about 1.5x-3x the measured use (tests/ledger report the real numbers).
_GAS = {
    "deploy": 4_000_000,
    "addParticipant": 150_000,
    "registerMeter": 100_000,
    "suspend": 80_000,
    "reinstate": 80_000,
    "mint": 120_000,
    "approve": 80_000,
    "deposit": 150_000,
    "depositFor": 150_000,
    "commitInterval": 250_000,
    "requestWithdrawal": 120_000,
    "withdraw": 150_000,
    "transfer": 21_000,
    "settleIntervalRoot": 150_000,
    "claim": 120_000,
    "claimAndWithdraw": 250_000,
    "exitWithdraw": 150_000,
    "exitClaimAndWithdraw": 250_000,
    "grant": 250_000,
    "revoke": 80_000,
    "commitAccessLog": 120_000,
}
_SETTLE_BASE_GAS = 80_000
# Worst case per entry: cold registry read + zero-to-nonzero escrow slot + calldata.
_SETTLE_GAS_PER_ENTRY = 35_000
# claimMany: ~22k per claim measured with 14-level proofs (contracts/test/NettingGas.t.sol);
# a first claim into an empty account slot costs 17,100 more.
_CLAIM_BASE_GAS = 60_000
_CLAIM_GAS_PER_CLAIM = 50_000
# 500 claims stay near 11M gas, well inside a 30M block even with first-time slots.
DEFAULT_CLAIM_BATCH = 500
# Per verifier signature: calldata (~1.2k), ecrecover (3k), a cold isVerifier read (2.1k).
_GAS_PER_ATTESTATION = 12_000
# Batched enrolment and deposits, per item (first-time slots and an event each; measured
# ~47k, ~27k and ~35k in tests/ledger), and the share of a block one batch may take.
_BATCH_BASE_GAS = 60_000
_BATCH_GAS_PER_ITEM = {
    "addParticipants": 70_000,
    "registerMeters": 45_000,
    "depositForMany": 55_000,
}
_BATCH_BLOCK_SHARE = 0.4


class Role(IntEnum):
    """Registry.Role, same numbering as the Solidity enum."""

    NONE = 0
    PROSUMER = 1
    CONSUMER = 2
    OPERATOR = 3
    GRID_OPERATOR = 4
    AUDITOR = 5


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live; enough to attach another client to them."""

    chain_id: int
    token: str
    registry: str
    market: str
    grid_operator: str
    consent: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        raw = json.loads(text)
        return cls(
            chain_id=int(raw["chain_id"]),
            token=to_checksum_address(raw["token"]),
            registry=to_checksum_address(raw["registry"]),
            market=to_checksum_address(raw["market"]),
            grid_operator=to_checksum_address(raw["grid_operator"]),
            consent=to_checksum_address(raw["consent"]),
        )


@dataclass(frozen=True)
class OnChainParticipant:
    role: Role
    grid_node: int
    active: bool


@dataclass(frozen=True)
class AccountView:
    """One account as an order check sees it (see Ledger.accounts_view)."""

    role: Role
    active: bool
    escrow_micro: int
    pending_withdrawal_micro: int


@dataclass(frozen=True)
class OnChainInterval:
    interval_start_s: int
    orders_root: bytes
    result_root: bytes
    readings_root: bytes
    price_micro_per_kwh: int
    volume_wh: int
    committed: bool
    settled: bool


@dataclass(frozen=True)
class WithdrawalRequest:
    amount_micro: int
    unlock_after_seq: int  # withdraw() works once this many intervals are settled


@dataclass(frozen=True)
class NettingAccount:
    """Market.accountState: claimed escrow, root-path net applied so far, last root claimed."""

    escrow_micro: int
    applied_micro: int
    claimed_root_seq: int


@dataclass(frozen=True)
class ConsentGrant:
    """One Consent grant (times in unix seconds; revoked_at_s 0 = still in force)."""

    grant_id: int
    owner: str
    grantee: str
    scope_bits: int
    data_from_s: int
    data_to_s: int
    granted_at_s: int
    expires_at_s: int
    revoked_at_s: int


@dataclass(frozen=True)
class AccessLogCommitment:
    """One day's access-log Merkle root as committed on chain (committed_at_s 0 = none)."""

    day_start_s: int
    root: bytes
    entry_count: int
    committed_at_s: int


@dataclass(frozen=True)
class ChainEvent:
    """One decoded contract event, for the chain explorer."""

    block_number: int
    tx_hash: str
    log_index: int
    contract: str  # "GridToken", "Registry", "Market" or "Consent"
    name: str
    args: dict[str, Any]


# In-process chains by deployment, so Ledger.attach("memory", ...) finds the EVM it lives in.
_MEMORY_CHAINS: dict[Deployment, Connection] = {}


class _Contracts:
    def __init__(self, conn: Connection, deployment: Deployment) -> None:
        self.token = _contract(conn, deployment.token, "GridToken")
        self.registry = _contract(conn, deployment.registry, "Registry")
        self.market = _contract(conn, deployment.market, "Market")
        self.consent = _contract(conn, deployment.consent, "Consent")

    def by_name(self) -> dict[str, Contract]:
        return {
            "GridToken": self.token,
            "Registry": self.registry,
            "Market": self.market,
            "Consent": self.consent,
        }


class Ledger:
    """Operator client of one deployment of GridToken + Registry + Market."""

    def __init__(
        self,
        conn: Connection,
        deployment: Deployment,
        operator_key: bytes,
        confirmations: int = 0,
        sender: TxSender | None = None,
        netting: NettingBook | None = None,
    ) -> None:
        self._conn = conn
        self._deployment = deployment
        self._confirmations = confirmations
        self._sender = sender or TxSender(conn, operator_key, TxStats(), confirmations)
        self.stats = self._sender.stats
        self._c = _Contracts(conn, deployment)
        self._market_allowance_ok = False
        # Off-chain data of the netting-root path; persist it with to_json to survive restarts.
        self.netting = netting or NettingBook()

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def deploy(
        cls,
        chain: str,
        operator_key: bytes | None = None,
        *,
        verifiers: Sequence[str],
        quorum: int,
        exit_after_intervals: int = DEFAULT_EXIT_AFTER_INTERVALS,
        confirmations: int = 0,
    ) -> Ledger:
        """Deploy fresh contracts; the operator gets every role; the grid operator is registered.

        ``verifiers`` (none of them the operator) and ``quorum`` form the Registry's verifier
        set: every settlement needs ``quorum`` of their attestations. After
        ``exit_after_intervals`` interval lengths without a settlement, participants may exit.
        """
        listed = [_addr(v) for v in verifiers]
        if not 1 <= quorum <= len(listed):
            raise ValidationError("quorum", f"must be between 1 and {len(listed)}, got {quorum}")
        if exit_after_intervals < 1:
            raise ValidationError("exit_after_intervals", "must be at least 1")
        conn = connect(chain)
        key = operator_key or conn.default_key()
        sender = TxSender(conn, key, TxStats(), confirmations)
        operator = sender.address
        grid_operator = address_of(key_from_seed(GRID_OPERATOR_SEED))
        token = _deploy(sender, "GridToken", ["address"], [operator])
        registry = _deploy(
            sender, "Registry", ["address", "address[]", "uint256"], [operator, listed, quorum]
        )
        market = _deploy(
            sender,
            "Market",
            ["address", "address", "address", "address", "uint64", "uint64"],
            [token, registry, grid_operator, operator, INTERVAL_S, exit_after_intervals],
        )
        consent = _deploy(sender, "Consent", ["address"], [operator])
        deployment = Deployment(conn.chain_id, token, registry, market, grid_operator, consent)
        ledger = cls(conn, deployment, key, confirmations, sender)
        ledger.add_participant(grid_operator, Role.GRID_OPERATOR, 0)
        ledger.fund_eth(grid_operator, GRID_OPERATOR_ETH_WEI)
        ledger._approve_market()
        if conn.is_memory:
            _MEMORY_CHAINS[deployment] = conn
        return ledger

    @classmethod
    def attach(
        cls,
        chain: str,
        deployment: Deployment,
        operator_key: bytes | None = None,
        *,
        confirmations: int = 0,
        netting: NettingBook | None = None,
    ) -> Ledger:
        """A client of contracts deployed earlier (for "memory": earlier in this process)."""
        if chain == MEMORY:
            conn = _MEMORY_CHAINS.get(deployment)
            if conn is None:
                raise ChainUnavailable("no in-process memory chain holds this deployment")
        else:
            conn = connect(chain)
            if conn.chain_id != deployment.chain_id:
                raise ValidationError(
                    "deployment", f"chain id {deployment.chain_id} != node's {conn.chain_id}"
                )
        key = operator_key or conn.default_key()
        return cls(conn, deployment, key, confirmations, netting=netting)

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    @property
    def chain(self) -> str:
        return self._conn.chain

    @property
    def chain_id(self) -> int:
        return self._conn.chain_id

    @property
    def operator(self) -> str:
        return self._sender.address

    @property
    def domain(self) -> Domain:
        return _domain(self.chain_id, self._deployment.market)

    @property
    def block_number(self) -> int:
        w3 = self._conn.w3
        return int(self._conn.call(lambda: w3.eth.block_number))

    # ------------------------------------------------------------ operator transactions

    def add_participant(self, account: str, role: Role, grid_node: int) -> TxResult:
        args = [_addr(account), int(role), grid_node]
        return self._send(self._c.registry, "addParticipant", args)

    def register_meter(self, meter: str, owner: str) -> TxResult:
        return self._send(self._c.registry, "registerMeter", [_addr(meter), _addr(owner)])

    def suspend(self, account: str) -> TxResult:
        return self._send(self._c.registry, "suspend", [_addr(account)])

    def reinstate(self, account: str) -> TxResult:
        return self._send(self._c.registry, "reinstate", [_addr(account)])

    def mint(self, to: str, amount_micro: int) -> TxResult:
        return self._send(self._c.token, "mint", [_addr(to), amount_micro])

    def deposit_for(self, account: str, amount_micro: int) -> TxResult:
        """Mint `amount_micro` to the operator and escrow it for `account` (the demo's on-ramp)."""
        self._approve_market()
        self.mint(self.operator, amount_micro)
        return self._send(self._c.market, "depositFor", [_addr(account), amount_micro])

    def fund_eth(self, account: str, wei: int) -> TxResult:
        result, _ = self._sender.transact(_addr(account), b"", _GAS["transfer"], "transfer", wei)
        return result

    def commit_interval(
        self,
        interval_start_s: int,
        orders_root: bytes,
        result_root: bytes,
        readings_root: bytes,
        price_micro_per_kwh: int,
        volume_wh: int,
    ) -> TxResult:
        args = [
            interval_start_s,
            orders_root,
            result_root,
            readings_root,
            price_micro_per_kwh,
            volume_wh,
        ]
        return self._send(self._c.market, "commitInterval", args)

    def settle_interval(
        self,
        interval_start_s: int,
        deltas_micro: Mapping[str, int],
        attestations: Sequence[bytes],
    ) -> TxResult:
        """Settle net payments: `deltas_micro` maps account -> signed escrow change (sum 0).

        `attestations`: a verifier quorum's signatures over :meth:`direct_attestation`,
        ascending by signer address.
        """
        entries = pack_entries(deltas_micro)
        gas = (
            _SETTLE_BASE_GAS
            + _SETTLE_GAS_PER_ENTRY * len(entries)
            + _GAS_PER_ATTESTATION * len(attestations)
        )
        args = [interval_start_s, entries, [bytes(a) for a in attestations]]
        return self._send(self._c.market, "settleInterval", args, gas)

    def settle_direct(
        self, interval_start_s: int, deltas_micro: Mapping[str, int], source: AttestationSource
    ) -> TxResult:
        """settle_interval with the attestations `source` collects for these deltas."""
        attestations = source.collect(self.direct_attestation(interval_start_s, deltas_micro))
        return self.settle_interval(interval_start_s, deltas_micro, attestations)

    def settle_by_root(
        self, interval_start_s: int, deltas_micro: Mapping[str, int], source: AttestationSource
    ) -> TxResult:
        """Prepare the next netting root, collect its attestations from `source`, post it."""
        posted = self.prepare_root(interval_start_s, deltas_micro)
        return self.settle_prepared_root(posted, source.collect(self.root_attestation(posted)))

    def attestation_of(self, interval_start_s: int, settlement_hash: bytes) -> IntervalAttestation:
        """What verifiers sign for an interval: its on-chain roots and a settlement (zero roots
        for an uncommitted interval, which the Market then refuses with NotCommitted)."""
        it = self.interval(interval_start_s)
        return IntervalAttestation(
            interval_start_s, it.orders_root, it.result_root, it.readings_root, settlement_hash
        )

    def direct_attestation(
        self, interval_start_s: int, deltas_micro: Mapping[str, int]
    ) -> IntervalAttestation:
        """The attestation for settling `deltas_micro` directly (settle_interval)."""
        entries = pack_entries(deltas_micro)
        return self.attestation_of(interval_start_s, settlement_hash_of_entries(entries))

    def root_attestation(self, posted: NettingRoot) -> IntervalAttestation:
        """The attestation for posting a prepared netting root (settle_prepared_root)."""
        count = len(posted.cumulative_micro)
        moved = posted.moved_micro
        digest = settlement_hash_of_root(posted.root, moved, moved, count)
        return self.attestation_of(posted.interval_start_s, digest)

    def deposit_many(self, amounts_micro: Mapping[str, int]) -> list[TxResult]:
        """Mint the total once, then escrow every amount with batched depositForMany calls."""
        accounts = list(amounts_micro)
        return self.deposit_for_many(accounts, [amounts_micro[a] for a in accounts])

    def deposit_for_many(
        self,
        accounts: Sequence[str],
        amounts_micro: Sequence[int],
        progress: Callable[[int], None] | None = None,
    ) -> list[TxResult]:
        """Mint the total to the operator, then escrow `amounts_micro[i]` for `accounts[i]`, in
        as few depositForMany transactions as the block gas limit allows (one token transfer
        each). `progress(n)` is called with the number of accounts done after each batch."""
        _same_length("amounts_micro", accounts, amounts_micro)
        total = sum(amounts_micro)
        if not accounts or total <= 0:
            return []
        self._approve_market()
        self.mint(self.operator, total)
        rows: list[list[Any]] = [[_addr(a) for a in accounts], [int(x) for x in amounts_micro]]
        return self._send_batches(self._c.market, "depositForMany", rows, progress)

    def add_participants(
        self,
        accounts: Sequence[str],
        roles: Sequence[Role],
        grid_nodes: Sequence[int],
        progress: Callable[[int], None] | None = None,
    ) -> list[TxResult]:
        """Register many participants in batched addParticipants calls (see deposit_for_many)."""
        _same_length("roles", accounts, roles)
        _same_length("grid_nodes", accounts, grid_nodes)
        rows: list[list[Any]] = [
            [_addr(a) for a in accounts],
            [int(r) for r in roles],
            [int(n) for n in grid_nodes],
        ]
        return self._send_batches(self._c.registry, "addParticipants", rows, progress)

    def register_meters(
        self,
        meters: Sequence[str],
        owners: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> list[TxResult]:
        """Bind many meters to their owners in batched registerMeters calls."""
        _same_length("owners", meters, owners)
        rows: list[list[Any]] = [[_addr(m) for m in meters], [_addr(o) for o in owners]]
        return self._send_batches(self._c.registry, "registerMeters", rows, progress)

    def batch_size(self, function: str) -> int:
        """Items per batched call: as many as fit a share of the block gas limit."""
        budget = int(self._conn.block_gas_limit * _BATCH_BLOCK_SHARE) - _BATCH_BASE_GAS
        return max(1, budget // _BATCH_GAS_PER_ITEM[function])

    def _send_batches(
        self,
        contract: Contract,
        function: str,
        columns: list[list[Any]],
        progress: Callable[[int], None] | None,
    ) -> list[TxResult]:
        size, n = self.batch_size(function), len(columns[0])
        results = []
        for start in range(0, n, size):
            args = [column[start : start + size] for column in columns]
            count = len(args[0])
            gas = _BATCH_BASE_GAS + _BATCH_GAS_PER_ITEM[function] * count
            results.append(self._send(contract, function, args, gas))
            if progress is not None:
                progress(start + count)
        return results

    # ------------------------------------------------------------ settlement by netting root

    def prepare_root(self, interval_start_s: int, deltas_micro: Mapping[str, int]) -> NettingRoot:
        """The next netting root of `self.netting` with `deltas_micro` applied (nothing sent):
        build its attestation with :meth:`root_attestation`, then :meth:`settle_prepared_root`.
        """
        root_seq = self.root_count() + 1
        if self.netting.latest_root_seq != root_seq - 1:
            raise ConflictError(
                f"netting book is at root {self.netting.latest_root_seq}, "
                f"the chain at {root_seq - 1}: load the book that posted them"
            )
        return self.netting.prepare(root_seq, interval_start_s, deltas_micro)

    def settle_prepared_root(self, posted: NettingRoot, attestations: Sequence[bytes]) -> TxResult:
        """Post a prepared root (:meth:`settle_interval_root`), then record it in `self.netting`.

        Nothing moves on chain until claims (:meth:`claim_many`, or each participant's own
        claim). The operator must check debits against :meth:`effective_escrow_of`.
        """
        moved = posted.moved_micro
        count = len(posted.cumulative_micro)
        result = self.settle_interval_root(
            posted.interval_start_s, posted.root, moved, moved, count, attestations
        )
        self.netting.record(posted)
        return result

    def settle_interval_root(
        self,
        interval_start_s: int,
        root: bytes,
        credits_micro: int,
        debits_micro: int,
        account_count: int,
        attestations: Sequence[bytes],
    ) -> TxResult:
        """Settle a committed interval by netting root: O(1) gas, whatever the participant count.

        The chain call only; :meth:`settle_prepared_root` also keeps `self.netting` in step.
        `attestations`: a verifier quorum's signatures over the root's attestation.
        """
        args = [
            interval_start_s,
            root,
            credits_micro,
            debits_micro,
            account_count,
            [bytes(a) for a in attestations],
        ]
        gas = _GAS["settleIntervalRoot"] + _GAS_PER_ATTESTATION * len(attestations)
        return self._send(self._c.market, "settleIntervalRoot", args, gas)

    def claim_many(
        self, accounts: list[str] | None = None, batch_size: int = DEFAULT_CLAIM_BATCH
    ) -> list[TxResult]:
        """Claim the newest root for `accounts` (default: every booked account still behind it),
        in operator batches of `batch_size`."""
        if batch_size < 1:
            raise ValidationError("batch_size", "must be at least 1")
        latest = self.netting.root()
        wanted = self.netting.accounts if accounts is None else [_addr(a) for a in accounts]
        behind = [a for a in wanted if self.account_state(a).claimed_root_seq < latest.root_seq]
        claims = [latest.claim(a) for a in behind]
        results: list[TxResult] = []
        for start in range(0, len(claims), batch_size):
            results.append(self.send_claims(claims[start : start + batch_size]))
        return results

    def send_claims(self, claims: list[NettingClaim]) -> TxResult:
        """One claimMany transaction; every claim must be against the same root."""
        if not claims:
            raise ValidationError("claims", "empty batch")
        seqs = {c.root_seq for c in claims}
        if len(seqs) != 1:
            raise ValidationError("claims", f"one root per batch, got {sorted(seqs)}")
        tuples = [(c.account, c.cumulative_micro, list(c.proof)) for c in claims]
        gas = _CLAIM_BASE_GAS + _CLAIM_GAS_PER_CLAIM * len(claims)
        return self._send(self._c.market, "claimMany", [seqs.pop(), tuples], gas)

    def claim_for(self, account: str, root_seq: int | None = None) -> TxResult:
        """The operator claims one account's leaf (default: the newest root)."""
        c = self.netting.claim(account, root_seq)
        args = [c.account, c.root_seq, c.cumulative_micro, list(c.proof)]
        return self._send(self._c.market, "claim", args)

    def root_count(self) -> int:
        return int(self._read(self._c.market, "rootCount"))

    def settlement_root(self, root_seq: int) -> bytes:
        return bytes(self._read(self._c.market, "settlementRoot", root_seq))

    def netting_capacity(self) -> tuple[int, int]:
        """(credits, debits) posted by roots and not yet claimed."""
        credits, debits = self._read(self._c.market, "nettingCapacity")
        return int(credits), int(debits)

    def settled_deltas(self, interval_start_s: int, tx_hash: str) -> dict[str, int]:
        """The deltas a successful ``settleInterval`` transaction of this Market applied.

        Read from the transaction's own calldata (found by hash, no log scan), so a verifier
        need not trust the operator's store; raises ChainError when ``tx_hash`` is not such a
        settlement of ``interval_start_s``.
        """
        w3, market = self._conn.w3, self._c.market
        tx = self._conn.call(lambda: w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        receipt = self._conn.call(lambda: w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        if receipt["status"] != 1 or str(tx["to"]).lower() != market.address.lower():
            raise ChainError(f"tx_hash: {tx_hash} is not a successful call of the Market")
        function, args = market.decode_function_input(tx["input"])
        if function.fn_name != "settleInterval" or int(args["intervalStartS"]) != interval_start_s:
            raise ChainError(f"tx_hash: {tx_hash} does not settle interval {interval_start_s}")
        return dict(unpack_entry(bytes(entry)) for entry in args["entries"])

    def accounts_view(self, accounts: Sequence[str]) -> dict[str, AccountView]:
        """Role, status, escrow and pending withdrawal of many accounts, 1,000 per call."""
        views: dict[str, AccountView] = {}
        # In slices: one eth_call over 10,000 accounts runs out of gas (anvil's call gas cap).
        for first in range(0, len(accounts), ACCOUNTS_VIEW_BATCH):
            batch = list(accounts[first : first + ACCOUNTS_VIEW_BATCH])
            listed = [_addr(a) for a in batch]
            roles, active, escrow, pending = self._read(self._c.market, "accountsView", listed)
            for account, r, a, e, p in zip(batch, roles, active, escrow, pending, strict=True):
                views[account] = AccountView(Role(int(r)), bool(a), int(e), int(p))
        return views

    def account_state(self, account: str) -> NettingAccount:
        escrow, applied, claimed = self._read(self._c.market, "accountState", _addr(account))
        return NettingAccount(int(escrow), int(applied), int(claimed))

    def unclaimed_micro(self, account: str) -> int:
        """Root-path net posted for `account` but not yet applied to its escrow."""
        return self.netting.cumulative_micro(account) - self.account_state(account).applied_micro

    def effective_escrow_of(self, account: str) -> int:
        """Escrow plus unclaimed root-path net: what the account can spend in the next interval."""
        state = self.account_state(account)
        return state.escrow_micro + self.netting.cumulative_micro(account) - state.applied_micro

    def participant_client(self, private_key: bytes) -> ParticipantClient:
        return ParticipantClient(self, private_key)

    # ------------------------------------------------------------ verifiers and exit

    def verifiers(self) -> list[str]:
        return [to_checksum_address(v) for v in self._read(self._c.registry, "verifiers")]

    def verifier_threshold(self) -> int:
        return int(self._read(self._c.registry, "verifierThreshold"))

    def verifier_epoch(self) -> int:
        return int(self._read(self._c.registry, "verifierEpoch"))

    def is_verifier(self, account: str) -> bool:
        return bool(self._read(self._c.registry, "isVerifier", _addr(account)))

    def verifier_set_digest(self, verifiers: Sequence[str], threshold: int) -> bytes:
        """What the current verifiers sign (eip712.sign_digest) to install a new set."""
        listed = [_addr(v) for v in verifiers]
        return bytes(self._read(self._c.registry, "verifierSetDigest", listed, threshold))

    def change_verifiers(
        self, verifiers: Sequence[str], threshold: int, signatures: Sequence[bytes]
    ) -> TxResult:
        """Install a new verifier set, authorised by a quorum of the current one."""
        args = [[_addr(v) for v in verifiers], threshold, [bytes(s) for s in signatures]]
        gas = 150_000 + 60_000 * len(verifiers) + _GAS_PER_ATTESTATION * len(signatures)
        return self._send(self._c.registry, "changeVerifiers", args, gas)

    def exit_window_s(self) -> int:
        return int(self._read(self._c.market, "exitWindowS"))

    def last_settled_at_s(self) -> int:
        return int(self._read(self._c.market, "lastSettledAtS"))

    def exit_opens_at_s(self) -> int:
        """When participants may exit alone if nothing is settled before (unix seconds)."""
        return int(self._read(self._c.market, "exitOpensAtS"))

    def is_stalled(self) -> bool:
        return bool(self._read(self._c.market, "isStalled"))

    # ------------------------------------------------------------ consent and access log

    def consent_grant(self, grant_id: int) -> ConsentGrant:
        raw = self._read(self._c.consent, "grantOf", grant_id)
        owner, grantee, scope, data_from, data_to, granted, expires, revoked = raw
        return ConsentGrant(
            grant_id,
            to_checksum_address(owner),
            to_checksum_address(grantee),
            int(scope),
            int(data_from),
            int(data_to),
            int(granted),
            int(expires),
            int(revoked),
        )

    def consent_grant_ids(self, owner: str, grantee: str) -> list[int]:
        ids = self._read(self._c.consent, "grantIds", _addr(owner), _addr(grantee))
        return [int(i) for i in ids]

    def is_allowed(
        self,
        owner: str,
        grantee: str,
        scope_bits: int,
        at_s: int,
        data_from_s: int,
        data_to_s: int,
    ) -> bool:
        """Whether a grant of `owner` lets `grantee` read `scope_bits` of [data_from_s, data_to_s)
        at time `at_s`."""
        args = (_addr(owner), _addr(grantee), scope_bits, at_s, data_from_s, data_to_s)
        return bool(self._read(self._c.consent, "isAllowed", *args))

    def consent_events(self, from_block: int = 0) -> list[ChainEvent]:
        """ConsentGranted / ConsentRevoked / AccessLogCommitted events, in chain order."""
        names = {"ConsentGranted", "ConsentRevoked", "AccessLogCommitted"}
        return [e for e in self.events(from_block) if e.contract == "Consent" and e.name in names]

    def commit_access_log(self, day_start_s: int, root: bytes, entry_count: int) -> TxResult:
        """Commit the Merkle root of one day's access log (once per day)."""
        return self._send(self._c.consent, "commitAccessLog", [day_start_s, root, entry_count])

    def access_log(self, day_start_s: int) -> AccessLogCommitment:
        root, count, committed_at = self._read(self._c.consent, "accessLog", day_start_s)
        return AccessLogCommitment(day_start_s, bytes(root), int(count), int(committed_at))

    # ------------------------------------------------------------ reads

    def is_active(self, account: str) -> bool:
        return bool(self._read(self._c.registry, "isActive", _addr(account)))

    def participant(self, account: str) -> OnChainParticipant:
        role, grid_node, active = self._read(self._c.registry, "participant", _addr(account))
        return OnChainParticipant(Role(role), int(grid_node), bool(active))

    def meter_owner(self, meter: str) -> str | None:
        owner = str(self._read(self._c.registry, "meterOwner", _addr(meter)))
        return None if int(owner, 16) == 0 else to_checksum_address(owner)

    def escrow_of(self, account: str) -> int:
        return int(self._read(self._c.market, "escrowOf", _addr(account)))

    def token_balance_of(self, account: str) -> int:
        return int(self._read(self._c.token, "balanceOf", _addr(account)))

    def withdrawal_request(self, account: str) -> WithdrawalRequest:
        amount, unlock = self._read(self._c.market, "withdrawalRequest", _addr(account))
        return WithdrawalRequest(int(amount), int(unlock))

    def progress(self) -> tuple[int, int, int]:
        """(last committed interval start, committed count, settled count)."""
        last, committed, settled = self._read(self._c.market, "progress")
        return int(last), int(committed), int(settled)

    def interval(self, interval_start_s: int) -> OnChainInterval:
        raw = self._read(self._c.market, "interval", interval_start_s)
        orders, result, readings, price, volume, committed, settled = raw
        return OnChainInterval(
            interval_start_s,
            bytes(orders),
            bytes(result),
            bytes(readings),
            int(price),
            int(volume),
            bool(committed),
            bool(settled),
        )

    def code_at(self, address: str) -> bytes:
        """The runtime bytecode at `address` (empty for an account without code)."""
        w3, checked = self._conn.w3, _addr(address)
        return bytes(self._conn.call(lambda: w3.eth.get_code(checked)))  # type: ignore[arg-type]

    def events(self, from_block: int = 0, to_block: int | str = "latest") -> list[ChainEvent]:
        """Every event of the deployment's contracts in the block range, in chain order."""
        contracts = self._c.by_name()
        by_address = {c.address.lower(): (name, c) for name, c in contracts.items()}
        w3 = self._conn.w3
        query: Any = {
            "fromBlock": from_block,
            "toBlock": to_block,
            "address": [c.address for c in contracts.values()],
        }
        logs = self._conn.call(lambda: w3.eth.get_logs(query))
        return [_decode_log(log, by_address) for log in logs]

    # ------------------------------------------------------------ plumbing

    def _approve_market(self) -> None:
        if self._market_allowance_ok:
            return
        token, market = self._c.token, self._deployment.market
        if int(self._read(token, "allowance", self.operator, market)) < _UINT256_MAX // 2:
            self._send(token, "approve", [market, _UINT256_MAX])
        self._market_allowance_ok = True

    def _send(
        self, contract: Contract, function: str, args: list[Any], gas: int | None = None
    ) -> TxResult:
        data = bytes.fromhex(contract.encode_abi(function, args=args)[2:])
        limit = gas if gas is not None else _GAS[function]
        result, _ = self._sender.transact(contract.address, data, limit, function)
        return result

    def _read(self, contract: Contract, function: str, *args: Any) -> Any:
        call = contract.functions[function](*args)
        return self._conn.call(lambda: call.call())


class ParticipantClient:
    """What a participant does with its own key: escrow its tokens and withdraw them."""

    def __init__(self, ledger: Ledger, private_key: bytes) -> None:
        self._ledger = ledger
        self._sender = TxSender(ledger._conn, private_key, ledger.stats, ledger._confirmations)

    @property
    def address(self) -> str:
        return self._sender.address

    def deposit(self, amount_micro: int) -> TxResult:
        """Approve the market for `amount_micro` of the caller's tokens and escrow them."""
        self._send(self._ledger._c.token, "approve", [self._ledger.deployment.market, amount_micro])
        return self._send(self._ledger._c.market, "deposit", [amount_micro])

    def request_withdrawal(self, amount_micro: int) -> TxResult:
        return self._send(self._ledger._c.market, "requestWithdrawal", [amount_micro])

    def withdraw(self) -> TxResult:
        return self._send(self._ledger._c.market, "withdraw", [])

    def claim(self, root_seq: int | None = None) -> TxResult:
        """Apply the caller's cumulative net of a root (default: the newest in the book)."""
        c = self._ledger.netting.claim(self.address, root_seq)
        args = [c.account, c.root_seq, c.cumulative_micro, list(c.proof)]
        return self._send(self._ledger._c.market, "claim", args)

    def exit_withdraw(self) -> TxResult:
        """Leave a stalled market with the whole escrow, no operator needed (see Market notes).

        Claims the caller's leaf in the newest root first when it has one that is unclaimed."""
        book = self._ledger.netting
        address = self.address
        in_root = book.latest_root_seq > 0 and address in book.root().cumulative_micro
        claimed = self._ledger.account_state(address).claimed_root_seq
        if in_root and claimed < book.latest_root_seq:
            c = book.claim(address)
            args = [c.root_seq, c.cumulative_micro, list(c.proof)]
            return self._send(self._ledger._c.market, "exitClaimAndWithdraw", args)
        return self._send(self._ledger._c.market, "exitWithdraw", [])

    def grant_consent(
        self,
        grantee: str,
        scope_bits: int,
        data_from_s: int,
        data_to_s: int,
        expires_at_s: int,
    ) -> tuple[int, TxResult]:
        """Let `grantee` read the caller's data of `scope_bits` in [data_from_s, data_to_s) until
        `expires_at_s`; returns the grant id and the transaction."""
        consent = self._ledger._c.consent
        args = [_addr(grantee), scope_bits, data_from_s, data_to_s, expires_at_s]
        data = bytes.fromhex(consent.encode_abi("grant", args=args)[2:])
        result, receipt = self._sender.transact(consent.address, data, _GAS["grant"], "grant")
        granted = consent.events.ConsentGranted().process_receipt(receipt)  # type: ignore[attr-defined]
        return int(granted[0]["args"]["id"]), result

    def revoke_consent(self, grant_id: int) -> TxResult:
        return self._send(self._ledger._c.consent, "revoke", [grant_id])

    def claim_and_withdraw(self) -> TxResult:
        """Claim the newest root, then withdraw, in one transaction (needed once roots exist).

        Without a leaf in the newest root (no roots yet, or never traded by root) this is a plain
        withdraw: the contract then needs no claim, or refuses with UnclaimedSettlement."""
        book = self._ledger.netting
        if book.latest_root_seq == 0 or self.address not in book.root().cumulative_micro:
            return self.withdraw()
        c = book.claim(self.address)
        args = [c.root_seq, c.cumulative_micro, list(c.proof)]
        return self._send(self._ledger._c.market, "claimAndWithdraw", args)

    def _send(self, contract: Contract, function: str, args: list[Any]) -> TxResult:
        data = bytes.fromhex(contract.encode_abi(function, args=args)[2:])
        result, _ = self._sender.transact(contract.address, data, _GAS[function], function)
        return result


def _contract(conn: Connection, address: str, name: str) -> Contract:
    return conn.w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name).abi)


def _same_length(name: str, first: Sequence[Any], other: Sequence[Any]) -> None:
    if len(other) != len(first):
        raise ValidationError(name, f"has {len(other)} items for {len(first)} accounts")


def _addr(account: str) -> str:
    try:
        return to_checksum_address(account)
    except ValueError as exc:
        raise ValidationError("account", f"not an address: {account!r}") from exc


def _deploy(sender: TxSender, name: str, types: list[str], args: list[Any]) -> str:
    artifact = load_artifact(name)
    data = bytes.fromhex(artifact.bytecode[2:]) + abi_encode(types, args)
    _, receipt = sender.transact(None, data, _GAS["deploy"], f"deploy {name}")
    return to_checksum_address(receipt["contractAddress"])


def _decode_log(log: Any, by_address: dict[str, tuple[str, Contract]]) -> ChainEvent:
    contract_name, contract = by_address[str(log["address"]).lower()]
    topic0 = bytes(log["topics"][0])
    for event in contract.events:  # type: ignore[attr-defined]
        if _topic_bytes(event.topic) == topic0:
            decoded = event.process_log(log)
            args = {k: _jsonable(v) for k, v in decoded["args"].items()}
            return ChainEvent(
                int(log["blockNumber"]),
                "0x" + bytes(log["transactionHash"]).hex(),
                int(log["logIndex"]),
                contract_name,
                str(decoded["event"]),
                args,
            )
    return ChainEvent(
        int(log["blockNumber"]),
        "0x" + bytes(log["transactionHash"]).hex(),
        int(log["logIndex"]),
        contract_name,
        "Unknown",
        {"topic0": "0x" + topic0.hex()},
    )


def _topic_bytes(topic: Any) -> bytes:
    return bytes.fromhex(topic[2:]) if isinstance(topic, str) else bytes(topic)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


@functools.lru_cache(maxsize=64)
def _domain(chain_id: int, market: str) -> Domain:
    # One object per (chain, market): its separator hash is computed once, not per order.
    return Domain(DOMAIN_NAME, DOMAIN_VERSION, chain_id, market)
