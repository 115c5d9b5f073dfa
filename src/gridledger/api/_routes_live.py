"""Signed-in and meter-signed routes: orders, readings and proofs, accounts, registration."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, Field

from gridledger.api._auth import Principal
from gridledger.api._context import INT64_MAX, ApiContext, Ctx, StoreDep, row_json
from gridledger.api._routes_auth import (
    ADDRESS_PATTERN,
    Caller,
    checksummed,
    require_own,
    require_role,
)
from gridledger.errors import ConflictError, NotFoundError, ValidationError
from gridledger.market import SignedOrder, signed_order_from_json
from gridledger.merkle import verify_proof
from gridledger.metering import (
    reading_leaf,
    reading_proofs,
    reading_salt,
    signed_reading_to_json,
)
from gridledger.node.market import AUDITOR, GRID_OPERATOR, OPERATOR
from gridledger.privacy.access_log import node_now_s, record_access
from gridledger.privacy.erasure import erased_leaves_of
from gridledger.privacy.keys import leaf_key_of
from gridledger.store import StoredReading

OWN: dict[str, Any] = {"x-access": "own"}
OPERATOR_ONLY: dict[str, Any] = {"x-access": "operator"}
SIGNED_IN: dict[str, Any] = {"x-access": "signed-in"}
UINT = Field(ge=0, le=INT64_MAX)
READERS_OF_ANY_METER = (OPERATOR, GRID_OPERATOR, AUDITOR)
READERS_OF_ANY_STATEMENT = (OPERATOR, AUDITOR)


class OrderIn(BaseModel):
    """A signed order (EIP-712 ``Order``); a buy's price includes the grid fee."""

    participant: str = Field(pattern=ADDRESS_PATTERN)
    side: Literal["buy", "sell"]
    energy_wh: int = Field(ge=1, le=INT64_MAX)
    price_micro_per_kwh: int = UINT
    interval_start_s: int = UINT
    nonce: int = UINT
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    def signed(self) -> SignedOrder:
        return signed_order_from_json(self.model_dump())


class ParticipantIn(BaseModel):
    address: str = Field(pattern=ADDRESS_PATTERN)
    role: Literal["prosumer", "consumer", "auditor"] = "prosumer"
    grid_node: int = Field(0, ge=0, le=2**32 - 1)
    label: str = Field("", max_length=100)
    deposit_micro: int = Field(0, ge=0, le=10**15)


class MeterIn(BaseModel):
    address: str = Field(pattern=ADDRESS_PATTERN)
    owner: str = Field(pattern=ADDRESS_PATTERN)
    rated_power_w: int = Field(30_000, ge=1, le=10**9)


class DepositIn(BaseModel):
    amount_micro: int = Field(ge=1, le=10**15)


def reading_json(stored: StoredReading) -> dict[str, Any]:
    return {
        "id": stored.id,
        **signed_reading_to_json(stored.signed),
        "received_at_s": stored.received_at_s,
    }


router = APIRouter()


# -- orders ------------------------------------------------------------------------------
@router.post("/v1/orders", status_code=201, openapi_extra=OWN, tags=["orders"])
def submit_order(ctx: Ctx, principal: Caller, body: OrderIn, response: Response) -> dict[str, Any]:
    """Submit a signed order for the open interval (the signer must be the caller).

    Resending the same signed order is safe: it is acknowledged once (200, ``duplicate``).
    """
    receipt = ctx.live().submit_order(body.signed(), principal.address)
    if receipt.duplicate:
        response.status_code = 200
    return {**row_json(receipt.row), "duplicate": receipt.duplicate}


@router.get("/v1/orders", openapi_extra=OWN, tags=["orders"])
def list_orders(
    ctx: Ctx,
    principal: Caller,
    interval_start_s: int | None = Query(None, ge=0, le=INT64_MAX),
    participant: str | None = Query(None, pattern=ADDRESS_PATTERN),
) -> list[dict[str, Any]]:
    """The caller's orders in an interval (default: the open one); operators see all."""
    live = ctx.live()
    who: str | None = principal.address
    if participant is not None:
        require_own(principal, participant, *READERS_OF_ANY_STATEMENT)
        who = participant
    elif principal.role in READERS_OF_ANY_STATEMENT:
        who = None
    start = live.open_interval_start_s() if interval_start_s is None else interval_start_s
    rows = live.orders_of(start, who)
    log_reads(ctx, principal, {r["participant"] for r in rows}, "orders")
    return rows


@router.delete("/v1/orders/{order_id}", openapi_extra=OWN, tags=["orders"])
def cancel_order(
    ctx: Ctx, principal: Caller, order_id: int = Path(ge=1, le=INT64_MAX)
) -> dict[str, Any]:
    """Cancel one of the caller's orders while its interval is still open."""
    row = ctx.live().cancel_order(order_id, principal.address)
    return {**row_json(row), "cancelled": True}


# -- readings ----------------------------------------------------------------------------
@router.post("/v1/readings", openapi_extra={"x-access": "meter-signature"}, tags=["readings"])
def post_readings(
    ctx: Ctx,
    payload: list[dict[str, Any]] | dict[str, Any] = Body(
        ..., description="one signed reading or a list (docs/reading-format.md)"
    ),
) -> list[dict[str, Any]]:
    """Meter readings, single or batch; one acknowledgement per reading, in order.

    ``accepted`` and ``duplicate`` both mean stored once: stop resending.
    """
    batch = payload if isinstance(payload, list) else [payload]
    if len(batch) > 5_000:
        raise ValidationError("readings", f"at most 5000 per request, got {len(batch)}")
    per_meter = Counter(str(r.get("meter")) for r in batch if isinstance(r, dict))
    for meter, count in per_meter.items():
        ctx.meter_limit.take("meter:" + meter, count)
    return ctx.live().ingest_readings(batch)


@router.get("/v1/readings", openapi_extra=OWN, tags=["readings"])
def list_readings(
    ctx: Ctx,
    principal: Caller,
    store: StoreDep,
    meter: str | None = Query(None, pattern=ADDRESS_PATTERN),
    limit: int = Query(96, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """Readings of the caller's meters (or of ``meter``, which must be the caller's)."""
    if meter is not None:
        _require_meter_reader(ctx, principal, meter)
        meters = [meter]
    else:
        meters = [m.address for m in store.meters() if m.owner == principal.address]
        log_reads(ctx, principal, {principal.address}, "readings")
    rows = [r for m in meters for r in store.readings_of_meter(m)]
    rows.sort(key=lambda r: (r.reading.interval_start_s, r.reading.meter), reverse=True)
    return [reading_json(r) for r in rows[:limit]]


@router.get("/v1/readings/{reading_id}", openapi_extra=OWN, tags=["readings"])
def get_reading(
    ctx: Ctx, principal: Caller, store: StoreDep, reading_id: int = Path(ge=1, le=INT64_MAX)
) -> dict[str, Any]:
    stored = store.reading(reading_id)
    _require_meter_reader(ctx, principal, stored.reading.meter)
    return reading_json(stored)


@router.get("/v1/readings/{reading_id}/proof", openapi_extra=OWN, tags=["readings"])
def reading_proof(
    ctx: Ctx, principal: Caller, store: StoreDep, reading_id: int = Path(ge=1, le=INT64_MAX)
) -> dict[str, Any]:
    """A Merkle proof of the reading against its interval's readings root on-chain."""
    stored = store.reading(reading_id)
    _require_meter_reader(ctx, principal, stored.reading.meter)
    start = stored.reading.interval_start_s
    row = store.interval(start)
    if row.status != "settled" or row.readings_root is None:
        raise ConflictError(f"interval {start} is not anchored yet (status {row.status})")
    key = leaf_key_of(store)
    erased = erased_leaves_of(store, start, "reading")
    proof = reading_proofs(store.readings_in_interval(start), key, erased)[reading_id]
    salt = reading_salt(key, stored.reading)
    leaf = reading_leaf(stored.reading, salt)
    on_chain = ctx.chain_view().interval(start)["readings_root"]
    return {
        "reading": reading_json(stored),
        "interval_start_s": start,
        "salt": "0x" + salt.hex(),
        "leaf": "0x" + leaf.hex(),
        "proof": ["0x" + p.hex() for p in proof],
        "readings_root": row.readings_root,
        "on_chain_readings_root": on_chain,
        "verified": verify_proof(leaf, proof, bytes.fromhex(on_chain[2:])),
    }


# -- accounts ----------------------------------------------------------------------------
@router.get("/v1/participants/{address}/statement", openapi_extra=OWN, tags=["accounts"])
def statement(
    ctx: Ctx,
    principal: Caller,
    store: StoreDep,
    address: str = Path(pattern=ADDRESS_PATTERN),
    limit: int = Query(96, ge=1, le=10_000),
) -> dict[str, Any]:
    """Escrow, trades, settlements and readings of one participant (its own only)."""
    require_own(principal, address, *READERS_OF_ANY_STATEMENT)
    live = ctx.live()
    store.participant(address)
    log_reads(ctx, principal, {address}, "statement")
    trades = [row_json(t) for t in store.trades_of(address, limit)]
    settlements = [row_json(s) for s in store.settlements_of(address, limit)]
    meters = live.meters_of(address)
    readings = [reading_json(r) for m in meters for r in store.readings_of_meter(m.address)]
    readings.sort(key=lambda r: r["intervalStartS"], reverse=True)
    return {
        "participant": address,
        "escrow_micro": live.escrow_micro(address),
        "net_settled_micro": sum(s["delta_micro"] for s in settlements),
        "trades": trades,
        "settlements": settlements,
        "meters": [row_json(m) for m in meters],
        "readings": readings[:limit],
    }


@router.get("/v1/meters", openapi_extra=OWN, tags=["accounts"])
def meters(ctx: Ctx, principal: Caller) -> list[dict[str, Any]]:
    """The caller's meters; operators, grid operators and auditors see every meter."""
    owner = None if principal.role in READERS_OF_ANY_METER else principal.address
    return [row_json(m) for m in ctx.live().meters_of(owner)]


@router.post("/v1/participants", status_code=201, openapi_extra=OPERATOR_ONLY, tags=["accounts"])
def add_participant(ctx: Ctx, principal: Caller, body: ParticipantIn) -> dict[str, Any]:
    """Register a participant on-chain and in the store, optionally escrowing a deposit."""
    require_role(principal, OPERATOR)
    address = checksummed(body.address)
    live = ctx.live()
    row = live.register_participant(
        address, body.role, body.grid_node, body.label, body.deposit_micro
    )
    return {**row_json(row), "escrow_micro": live.escrow_micro(address)}


@router.post("/v1/meters", status_code=201, openapi_extra=OPERATOR_ONLY, tags=["accounts"])
def add_meter(ctx: Ctx, principal: Caller, body: MeterIn) -> dict[str, Any]:
    """Register a meter for a participant, on-chain and in the store."""
    require_role(principal, OPERATOR)
    meter = ctx.live().register_meter(
        checksummed(body.address), checksummed(body.owner, "owner"), body.rated_power_w
    )
    return row_json(meter)


@router.post("/v1/participants/{address}/deposits", openapi_extra=OPERATOR_ONLY, tags=["accounts"])
def deposit(
    ctx: Ctx,
    principal: Caller,
    body: DepositIn,
    address: str = Path(pattern=ADDRESS_PATTERN),
) -> dict[str, Any]:
    """Escrow newly minted tokens for a participant (the demo's on-ramp)."""
    require_role(principal, OPERATOR)
    return {
        "participant": address,
        "escrow_micro": ctx.live().deposit(checksummed(address), body.amount_micro),
    }


def _require_meter_reader(ctx: ApiContext, principal: Principal, meter: str) -> None:
    owners = ctx.state.store.meters_by_address([meter])
    if meter not in owners:
        if principal.role in READERS_OF_ANY_METER:
            raise NotFoundError(f"meter {meter} is not registered")
        raise NotFoundError(f"meter {meter} is not one of yours")
    require_own(principal, owners[meter].owner, *READERS_OF_ANY_METER)
    log_reads(ctx, principal, {owners[meter].owner}, "readings")


def log_reads(ctx: ApiContext, principal: Principal, subjects: set[str], what: str) -> None:
    """Record the read in the access log (docs/privacy.md) before the data leaves the node."""
    for subject in sorted(subjects):
        record_access(
            ctx.state.store,
            reader=principal.address,
            reader_role=principal.role,
            subject=subject,
            what=what,
            at_s=node_now_s(ctx.state.live),
        )
