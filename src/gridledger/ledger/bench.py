"""Settlement gas on a real EVM: our two settlement paths against one transfer per trade.

``bench_chain(participants)`` deploys the contracts and a per-trade baseline
(``contracts/src/PerTradeSettlement.sol``) on one chain, plays one trading model through all
three, and reports measured transaction gas (receipts' gasUsed, so calldata and the 21,000
intrinsic gas are included). Then it posts a netting root for 10,000 participants on a fresh
deployment and claims a sample against its 14-level tree, to compare a 10,000-participant
interval with a 30M-gas block.
"""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ValidationError
from gridledger.ledger.artifacts import load_artifact
from gridledger.ledger.client import Ledger, Role
from gridledger.ledger.entries import pack_entries
from gridledger.verifier.panel import (
    DEV_QUORUM,
    InProcessVerifiers,
    dev_verifier_addresses,
    dev_verifier_keys,
)

BLOCK_GAS_LIMIT = 30_000_000
INTERVALS_PER_DAY = 96
LARGE_INTERVAL_PARTICIPANTS = 10_000
TRADES_PER_PARTICIPANT = 2  # each participant is in about two trades per interval
GRID_FEE_PPM = 20_000  # 2% of each trade to the grid operator
_LARGE_SAMPLE_CLAIMS = 40
_ESCROW_MICRO = 10**12  # every account funded: the steady state (no zero-to-nonzero slots)
_T0 = 1_700_000_100
_ROOT = b"\x5a" * 32
_PER_TRADE_GAS = 120_000
_BATCH = 250  # claims per claimMany in the bench (about 6M gas)

Trade = tuple[str, str, int]  # buyer, seller, amount in micro-units


def trades_for(participants: int, seed: str = "bench") -> tuple[list[str], list[Trade]]:
    """The trading model: the first half of the participants sell, the rest buy; buyer k buys
    from sellers k and k+1 (a ring), so there are as many trades as participants and each one
    is in two trades. Amounts are 0.1-1.0 kWh at 0.25 EUR/kWh, varied deterministically."""
    if participants < 2:
        raise ValidationError("participants", "at least 2 (a seller and a buyer)")
    accounts = [address_of(key_from_seed(f"{seed}:{i}")) for i in range(participants)]
    sellers, buyers = accounts[: participants // 2], accounts[participants // 2 :]
    trades: list[Trade] = []
    for k, buyer in enumerate(buyers):
        for j in (k, k + 1):
            if len(trades) == participants:
                break
            seller = sellers[j % len(sellers)]
            amount_micro = 25_000 + (k * 7_919 + j * 104_729) % 225_000
            trades.append((buyer, seller, amount_micro))
    return accounts, trades


def net_deltas(trades: list[Trade], grid: str) -> dict[str, int]:
    """Each participant's net payment for the interval; the grid fee is the buyers' extra."""
    deltas: dict[str, int] = {}
    for buyer, seller, amount in trades:
        fee = amount * GRID_FEE_PPM // 1_000_000
        deltas[buyer] = deltas.get(buyer, 0) - amount - fee
        deltas[seller] = deltas.get(seller, 0) + amount
        deltas[grid] = deltas.get(grid, 0) + fee
    return deltas


def _deploy_with_dev_verifiers(chain: str) -> tuple[Ledger, InProcessVerifiers]:
    """A fresh deployment with the dev verifier set, and those verifiers (quorum 2 of 3)."""
    ledger = Ledger.deploy(chain, verifiers=dev_verifier_addresses(), quorum=DEV_QUORUM)
    return ledger, InProcessVerifiers(dev_verifier_keys(), domain=ledger.domain)


def bench_chain(participants: int, chain: str = "memory") -> dict[str, Any]:
    """Gas per participant-interval and per trade: direct settlement, netting root and the
    per-trade baseline, plus one netting-root interval of 10,000 participants vs 30M gas."""
    accounts, trades = trades_for(participants)
    ledger, verifiers = _deploy_with_dev_verifiers(chain)
    grid = ledger.deployment.grid_operator
    ledger.add_participants(accounts, [Role.PROSUMER] * len(accounts), [1] * len(accounts))
    ledger.deposit_many({a: _ESCROW_MICRO for a in [*accounts, grid]})
    deltas = net_deltas(trades, grid)

    # Direct path: one interval, every entry applied now.
    ledger.commit_interval(_T0, _ROOT, _ROOT, _ROOT, 250_000, 1_000)
    commit_gas = ledger.stats.by_function["commitInterval"][1]
    direct_gas = ledger.settle_direct(_T0, deltas, verifiers).gas_used
    entries = len(pack_entries(deltas))

    # Netting root: two intervals posted, then one claim per account covers both (the claim
    # costs the same after 2 roots or after 96: the leaf is cumulative).
    for i in (1, 2):
        ledger.commit_interval(_T0 + 900 * i, _ROOT, _ROOT, _ROOT, 250_000, 1_000)
        root_gas = ledger.settle_by_root(_T0 + 900 * i, deltas, verifiers).gas_used
    claim_results = ledger.claim_many(batch_size=_BATCH)
    claims = len(ledger.netting.accounts)
    claim_gas = sum(r.gas_used for r in claim_results) / claims
    expected = _ESCROW_MICRO + 3 * deltas[accounts[0]]
    if ledger.escrow_of(accounts[0]) != expected:  # cheap end-to-end check of the claims
        raise AssertionError("netting claims did not apply the two roots")

    baseline_gas = _per_trade_baseline(ledger, accounts, trades)

    n_trades = len(trades)
    daily = (root_gas + claims * claim_gas / INTERVALS_PER_DAY) / n_trades
    every = (root_gas + claims * claim_gas) / n_trades
    direct_per_trade = direct_gas / n_trades
    large = _large_interval(chain)
    per_entry_direct = direct_gas / entries
    return {
        "participants": participants,
        "chain": "memory" if chain == "memory" else "http",
        "block_gas_limit": BLOCK_GAS_LIMIT,
        "model": {
            "description": (
                "Half the participants sell, half buy; buyer k buys from sellers k and k+1, so "
                "each participant is in ~2 trades per interval and trades == participants. Each "
                "buyer also pays a 2% grid fee to the grid operator (an extra account in every "
                "settlement). Every escrow slot is already funded (steady state). Gas is the "
                "receipts' gasUsed (execution + calldata + 21,000 per transaction)."
            ),
            "trades_per_interval": n_trades,
            "trades_per_participant": 2 * n_trades / participants,
            "settlement_accounts": entries,
            "intervals_per_day": INTERVALS_PER_DAY,
            "grid_fee_ppm": GRID_FEE_PPM,
            "claims": (
                "netting-root claims are cumulative: one claim per account catches up on every "
                "root since its last one, so 'daily' means each account is claimed once per 96 "
                "intervals (by the operator's claimMany batches), 'every interval' once per root"
            ),
        },
        "commit_interval_gas": commit_gas,
        "direct": {
            "settle_gas": direct_gas,
            "gas_per_entry": round(per_entry_direct),
            "gas_per_participant_interval": round(direct_gas / participants),
            "gas_per_trade": round(direct_per_trade),
        },
        "netting_root": {
            "settle_root_gas": root_gas,
            "claim_gas_batched": round(claim_gas),
            "claim_batch_size": _BATCH,
            "gas_per_participant_interval_daily_claims": round(
                (root_gas + claims * claim_gas / INTERVALS_PER_DAY) / participants
            ),
            "gas_per_trade_daily_claims": round(daily),
            "gas_per_trade_daily_claims_incl_commit": round(daily + commit_gas / n_trades),
            "gas_per_participant_interval_claims_every_interval": round(
                (root_gas + claims * claim_gas) / participants
            ),
            "gas_per_trade_claims_every_interval": round(every),
        },
        "per_trade_baseline": {
            "contract": "PerTradeSettlement",
            "what": "one settleTrade transaction per trade (escrow to escrow, one event)",
            "gas_per_trade": round(baseline_gas),
        },
        "ratio_vs_baseline": {
            "netting_root_daily_claims": round(baseline_gas / daily, 1),
            "netting_root_daily_claims_incl_commit": round(
                baseline_gas / (daily + commit_gas / n_trades), 1
            ),
            "netting_root_claims_every_interval": round(baseline_gas / every, 1),
            "direct": round(baseline_gas / direct_per_trade, 1),
        },
        "interval_10000": {
            **large,
            "direct_settle_gas_extrapolated": round(per_entry_direct * (large["participants"] + 1)),
            "direct_blocks_needed": -(
                -round(per_entry_direct * (large["participants"] + 1)) // BLOCK_GAS_LIMIT
            ),
        },
    }


def _per_trade_baseline(ledger: Ledger, accounts: list[str], trades: list[Trade]) -> float:
    """Deploy PerTradeSettlement next to Market, fund every account, send one tx per trade."""
    sender = ledger._sender
    artifact = load_artifact("PerTradeSettlement")
    data = bytes.fromhex(artifact.bytecode[2:]) + abi_encode(
        ["address", "address"], [ledger.deployment.token, ledger.operator]
    )
    _, receipt = sender.transact(None, data, 1_500_000, "deploy PerTradeSettlement")
    address = to_checksum_address(receipt["contractAddress"])
    baseline = ledger._conn.w3.eth.contract(address=address, abi=artifact.abi)
    ledger.mint(ledger.operator, _ESCROW_MICRO * len(accounts))
    ledger._send(ledger._c.token, "approve", [address, _ESCROW_MICRO * len(accounts)])
    for account in accounts:
        _call(ledger, baseline, "depositFor", [account, _ESCROW_MICRO])
    gas = [_call(ledger, baseline, "settleTrade", list(t)) for t in trades]
    return sum(gas) / len(gas)


def _call(ledger: Ledger, contract: Any, function: str, args: list[Any]) -> int:
    data = bytes.fromhex(contract.encode_abi(function, args=args)[2:])
    result, _ = ledger._sender.transact(contract.address, data, _PER_TRADE_GAS, function)
    return result.gas_used


def _large_interval(chain: str) -> dict[str, Any]:
    """A netting root over 10,000 participants (fresh deployment) and a sample of claims."""
    participants = LARGE_INTERVAL_PARTICIPANTS
    ledger, verifiers = _deploy_with_dev_verifiers(chain)
    accounts, trades = trades_for(participants, seed="bench-10k")
    deltas = net_deltas(trades, ledger.deployment.grid_operator)
    # Steady state like the rest of the bench: the sampled accounts already hold escrow (a
    # first claim into an empty slot costs 17,100 more), and the root is not the first one.
    sample = [a for a in accounts if deltas.get(a, 0) > 0][:_LARGE_SAMPLE_CLAIMS]
    for account in sample:
        ledger.add_participant(account, Role.PROSUMER, 1)
    ledger.deposit_many({a: _ESCROW_MICRO for a in sample})
    for i in (0, 1):
        ledger.commit_interval(_T0 + 900 * i, _ROOT, _ROOT, _ROOT, 250_000, 1_000)
        root_gas = ledger.settle_by_root(_T0 + 900 * i, deltas, verifiers).gas_used
    proof_levels = len(ledger.netting.claim(sample[0]).proof)
    batch_gas = ledger.claim_many(sample, batch_size=len(sample))[0].gas_used
    claim_gas = batch_gas / len(sample)
    claims_per_block = int(BLOCK_GAS_LIMIT // claim_gas)
    leaves = len(ledger.netting.accounts)
    return {
        "participants": participants,
        "settle_root_gas": root_gas,
        "fits_block": root_gas <= BLOCK_GAS_LIMIT,
        "share_of_block": round(root_gas / BLOCK_GAS_LIMIT, 5),
        "tree_leaves": leaves,
        "proof_levels": proof_levels,
        "claim_gas_batched": round(claim_gas),
        "claim_sample": len(sample),
        "claims_per_block": claims_per_block,
        "daily_claim_gas_all_accounts": round(claim_gas * leaves),
        "daily_claim_blocks": round(claim_gas * leaves / BLOCK_GAS_LIMIT, 2),
        "note": (
            "settleIntervalRoot is O(1); the claims are the O(n) part, spread over the day "
            "(each account once per day: about daily_claim_blocks full blocks per day)"
        ),
    }
