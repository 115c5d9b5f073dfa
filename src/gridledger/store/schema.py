"""The relational schema (SQLAlchemy Core): integers for energy and money, hex strings for hashes.

Addresses are checksummed strings; hashes, roots, signatures and transaction hashes are 0x-hex.
Every energy and money column is a 64-bit integer in fixed units (Wh, micro-units).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ADDRESS = sa.String(42)
HEX32 = sa.String(66)
SIGNATURE = sa.String(132)

participants = sa.Table(
    "participants",
    metadata,
    sa.Column("address", ADDRESS, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("grid_node", sa.Integer, nullable=False),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)

meters = sa.Table(
    "meters",
    metadata,
    sa.Column("address", ADDRESS, primary_key=True),
    sa.Column("owner", ADDRESS, sa.ForeignKey("participants.address"), nullable=False),
    sa.Column("rated_power_w", sa.BigInteger, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)

readings = sa.Table(
    "readings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meter", ADDRESS, sa.ForeignKey("meters.address"), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("interval_start_s", sa.BigInteger, nullable=False, index=True),
    sa.Column("interval_length_s", sa.BigInteger, nullable=False),
    sa.Column("imported_wh", sa.BigInteger, nullable=False),
    sa.Column("exported_wh", sa.BigInteger, nullable=False),
    sa.Column("signature", SIGNATURE, nullable=False),
    sa.Column("received_at_s", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("meter", "sequence", name="uq_readings_meter_sequence"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("interval_start_s", sa.BigInteger, nullable=False, index=True),
    sa.Column("participant", ADDRESS, nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("energy_wh", sa.BigInteger, nullable=False),
    sa.Column("price_micro_per_kwh", sa.BigInteger, nullable=False),
    sa.Column("nonce", sa.BigInteger, nullable=False),
    sa.Column("signature", SIGNATURE, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.UniqueConstraint("participant", "nonce", name="uq_orders_participant_nonce"),
)

intervals = sa.Table(
    "intervals",
    metadata,
    sa.Column("interval_start_s", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("clearing_price_micro_per_kwh", sa.BigInteger, nullable=True),
    sa.Column("cleared_energy_wh", sa.BigInteger, nullable=False, default=0),
    sa.Column("orders_root", HEX32, nullable=True),
    sa.Column("result_root", HEX32, nullable=True),
    sa.Column("readings_root", HEX32, nullable=True),
    sa.Column("commit_tx", HEX32, nullable=True),
    sa.Column("settle_tx", HEX32, nullable=True),
    sa.Column("gas_used", sa.BigInteger, nullable=True),
    sa.CheckConstraint(
        "status IN ('open', 'cleared', 'committed', 'settled')", name="ck_intervals_status"
    ),
)

trades = sa.Table(
    "trades",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("interval_start_s", sa.BigInteger, nullable=False, index=True),
    sa.Column("buyer", ADDRESS, nullable=False, index=True),
    sa.Column("seller", ADDRESS, nullable=False, index=True),
    sa.Column("energy_wh", sa.BigInteger, nullable=False),
    sa.Column("price_micro_per_kwh", sa.BigInteger, nullable=False),
    sa.Column("fee_micro", sa.BigInteger, nullable=False),
    # what the result root commits to (gridledger.market.TradeLine), for statement proofs
    sa.Column("buy_nonce", sa.BigInteger, nullable=False, default=0),
    sa.Column("sell_nonce", sa.BigInteger, nullable=False, default=0),
    sa.Column("fee_micro_per_kwh", sa.BigInteger, nullable=False, default=0),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("interval_start_s", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("participant", ADDRESS, primary_key=True),
    sa.Column("delta_micro", sa.BigInteger, nullable=False),
)

anchors = sa.Table(
    "anchors",
    metadata,
    sa.Column("interval_start_s", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("readings_root", HEX32, nullable=False),
    sa.Column("tx_hash", HEX32, nullable=True),
    sa.Column("status", sa.String(8), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'mined')", name="ck_anchors_status"),
)

statement_lines = sa.Table(
    "statement_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("interval_start_s", sa.BigInteger, nullable=False, index=True),
    sa.Column("participant", ADDRESS, nullable=False, index=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("energy_wh", sa.BigInteger, nullable=False),
    sa.Column("price_micro_per_kwh", sa.BigInteger, nullable=False),
    sa.Column("amount_micro", sa.BigInteger, nullable=False),
    sa.Column("counterparty", ADDRESS, nullable=False),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# -- settlement by netting root (Market.settleIntervalRoot and claims) -------------------------
# The operator's plan of an interval's settlement, written before anything is sent on-chain, so
# that a restart re-sends (or only records) exactly what was planned, never a recomputation.
settlement_plans = sa.Table(
    "settlement_plans",
    metadata,
    sa.Column("interval_start_s", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_seq", sa.BigInteger, nullable=True),  # None: the direct batch
    sa.Column("body", sa.Text, nullable=False),  # JSON: deltas, statement lines, unsettled
)

netting_roots = sa.Table(
    "netting_roots",
    metadata,
    sa.Column("root_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("interval_start_s", sa.BigInteger, nullable=False, unique=True),
    sa.Column("root", HEX32, nullable=False),
    sa.Column("credits_micro", sa.BigInteger, nullable=False),
    sa.Column("account_count", sa.BigInteger, nullable=False),
    sa.Column("settle_tx", HEX32, nullable=True),
)

# Cumulative root-path net of an account as of a root, one row per account whose net changed
# in that root; an account's cumulative at root r is its row with the highest root_seq <= r.
netting_positions = sa.Table(
    "netting_positions",
    metadata,
    sa.Column("root_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account", ADDRESS, primary_key=True),
    sa.Column("cumulative_micro", sa.BigInteger, nullable=False),
    sa.Index("ix_netting_positions_account", "account", "root_seq"),
)

# Claims the chain has applied (from its Claimed events): what each account's escrow holds of
# its root-path net, so the spendable escrow is escrow + cumulative - applied.
netting_claims = sa.Table(
    "netting_claims",
    metadata,
    sa.Column("account", ADDRESS, primary_key=True),
    sa.Column("applied_micro", sa.BigInteger, nullable=False),
    sa.Column("claimed_root_seq", sa.BigInteger, nullable=False),
)
