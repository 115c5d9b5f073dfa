"""``gridledger bench verifier``: CPU a verifier spends re-executing one interval.

A synthetic interval of ``participants`` households (each one signed order and one signed
reading; half buy, half sell) is built the way an operator builds it: clear, commit the three
roots, settle against delivery, hash the settlement. The baseline is that operator work itself,
timed in the same run; the verifier's extra cost is mostly the signature recoveries.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.ledger.entries import pack_entries
from gridledger.market import Book, Order, clear, orders_root, result_lines, sign_order
from gridledger.market.commitments import lines_root
from gridledger.metering import Reading, readings_root, sign_reading
from gridledger.privacy.salts import LeafKey
from gridledger.settlement import Delivery, Tariffs, settle_with_delivery
from gridledger.settlement.statements import settled_trades
from gridledger.verifier.attestation import IntervalAttestation, settlement_hash_of_entries
from gridledger.verifier.reexecute import (
    ChainFacts,
    IntervalPackage,
    MarketRules,
    reexecute,
)
from gridledger.verifier.wire import package_from_json, package_to_json

START_S = 1_451_606_400  # 2016-01-01 00:00 UTC, the SimBench year
DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
T = TypeVar("T")


def _rules() -> MarketRules:
    return MarketRules(
        DOMAIN,
        "uniform",
        20_000,
        Tariffs(300_000, 80_000),
        address_of(key_from_seed("bench-grid")),
        address_of(key_from_seed("bench-supplier")),
    )


def _cpu(fn: Callable[[], T]) -> tuple[T, float]:
    began = time.process_time()
    value = fn()
    return value, time.process_time() - began


def operate(
    orders: list[Order], readings: list[Reading], owners: dict[str, str], rules: MarketRules
) -> tuple[tuple[bytes, bytes, bytes], dict[str, int], IntervalAttestation]:
    """What the operator computes for the interval (the baseline)."""
    key = LeafKey(b"\x07" * 32)
    lines = result_lines(
        clear(Book.from_orders(orders), rules.mechanism, rules.grid_fee_micro_per_kwh)
    )
    deliveries = {owners[r.meter]: Delivery(r.imported_wh, r.exported_wh) for r in readings}
    deltas = settle_with_delivery(
        settled_trades(lines),
        deliveries,
        rules.tariffs,
        grid_operator=rules.grid_operator,
        supplier=rules.supplier,
    ).deltas_micro
    roots = (orders_root(orders, key), lines_root(lines, key), readings_root(readings, key))
    att = IntervalAttestation(START_S, *roots, settlement_hash_of_entries(pack_entries(deltas)))
    return roots, deltas, att


def bench_verifier(participants: int = 1_000, seed_prefix: str = "bench") -> dict[str, Any]:
    """CPU seconds to re-execute one interval vs the operator's own work on it."""
    rules, key = _rules(), LeafKey(b"\x07" * 32)
    people = [key_from_seed(f"{seed_prefix}-p{i}") for i in range(participants)]
    meters = [key_from_seed(f"{seed_prefix}-m{i}") for i in range(participants)]
    orders, readings, owners = [], [], {}
    for i, (person, meter) in enumerate(zip(people, meters, strict=True)):
        buy = i % 2 == 0
        energy_wh = 200 + (i * 37) % 1_500
        price = 100_000 + (i * 7_919) % 150_000
        orders.append(
            Order(address_of(person), "buy" if buy else "sell", energy_wh, price, START_S, 1)
        )
        imported, exported = (energy_wh, 0) if buy else (0, energy_wh)
        readings.append(Reading(address_of(meter), 1, START_S, 900, imported, exported))
        owners[address_of(meter)] = address_of(person)
    signed = tuple(sign_order(o, k, DOMAIN) for o, k in zip(orders, people, strict=True))
    signed_readings = tuple(
        sign_reading(r, k, DOMAIN) for r, k in zip(readings, meters, strict=True)
    )
    (roots, deltas, att), operator_cpu_s = _cpu(lambda: operate(orders, readings, owners, rules))
    lines = result_lines(
        clear(Book.from_orders(orders), rules.mechanism, rules.grid_fee_micro_per_kwh)
    )
    package = IntervalPackage(START_S, signed, signed_readings, owners, lines, deltas, att)
    facts = ChainFacts(*roots, dict(owners), None)
    verdict, verifier_cpu_s = _cpu(lambda: reexecute(package, facts, rules, key))
    if verdict != att:
        raise AssertionError(f"the bench interval did not re-execute: {verdict}")
    # What a `gridledger verifier` process adds: the package arrives as JSON over HTTP.
    text = json.dumps(package_to_json(package))
    received, wire_cpu_s = _cpu(lambda: package_from_json(json.loads(text)))
    if received != package:
        raise AssertionError("the bench package did not survive its JSON")
    return {
        "participants": participants,
        "orders": len(orders),
        "readings": len(readings),
        "trades": len(lines),
        "verifier_cpu_s_per_interval": round(verifier_cpu_s, 4),
        "operator_cpu_s_per_interval": round(operator_cpu_s, 4),
        "verifier_over_operator": round(verifier_cpu_s / operator_cpu_s, 2)
        if operator_cpu_s
        else None,
        "package_json_bytes": len(text),
        "package_decode_cpu_s": round(wire_cpu_s, 4),
        "verifier_process_cpu_s_per_interval": round(verifier_cpu_s + wire_cpu_s, 4),
        "interval_length_s": 900,
        "share_of_interval_cpu": round(verifier_cpu_s / 900, 6),
    }
