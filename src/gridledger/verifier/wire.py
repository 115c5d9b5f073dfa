"""JSON form of an :class:`IntervalPackage` (the operator's verifier data endpoint) and back.

Integers stay integers, bytes are 0x-hex, addresses EIP-55. Parsing names the bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridledger.errors import ValidationError
from gridledger.market import Order, SignedOrder, TradeLine
from gridledger.metering import signed_reading_from_json, signed_reading_to_json
from gridledger.verifier.attestation import IntervalAttestation
from gridledger.verifier.reexecute import IntervalPackage, NettingBase

_TRADE_FIELDS = (
    "interval_start_s",
    "buyer",
    "buy_nonce",
    "seller",
    "sell_nonce",
    "energy_wh",
    "price_micro_per_kwh",
    "fee_micro_per_kwh",
)
_ORDER_FIELDS = ("participant", "side", "energy_wh", "price_micro_per_kwh", "interval_start_s")
_ROOTS = ("orders_root", "result_root", "readings_root", "settlement_hash")


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def unhex(value: Any, field: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValidationError(field, "must be a 0x-prefixed hex string")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError:
        raise ValidationError(field, "not valid hex") from None
    if length is not None and len(data) != length:
        raise ValidationError(field, f"must be {length} bytes, got {len(data)}")
    return data


def attestation_to_json(att: IntervalAttestation) -> dict[str, Any]:
    return {
        "interval_start_s": att.interval_start_s,
        **{name: hex0x(getattr(att, name)) for name in _ROOTS},
    }


def attestation_from_json(data: Mapping[str, Any]) -> IntervalAttestation:
    roots = [unhex(_get(data, name), name, 32) for name in _ROOTS]
    return IntervalAttestation(_int(data, "interval_start_s"), *roots)


def package_to_json(package: IntervalPackage) -> dict[str, Any]:
    netting = package.netting
    return {
        "interval_start_s": package.interval_start_s,
        "orders": [
            {
                **{name: getattr(s.order, name) for name in _ORDER_FIELDS},
                "nonce": s.order.nonce,
                "signature": hex0x(s.signature),
            }
            for s in package.orders
        ],
        "readings": [signed_reading_to_json(s) for s in package.readings],
        "meter_owners": dict(sorted(package.meter_owners.items())),
        "trades": [{name: getattr(t, name) for name in _TRADE_FIELDS} for t in package.trades],
        "deltas_micro": dict(sorted(package.deltas_micro.items())),
        "attestation": attestation_to_json(package.attestation),
        "netting": None
        if netting is None
        else {
            "root_seq": netting.root_seq,
            "cumulative_micro": dict(sorted(netting.cumulative_micro.items())),
        },
    }


def package_from_json(data: Mapping[str, Any]) -> IntervalPackage:
    orders = tuple(_signed_order(o) for o in _list(data, "orders"))
    readings = tuple(signed_reading_from_json(r) for r in _list(data, "readings"))
    trades = tuple(
        TradeLine(**{n: _get(t, n) for n in _TRADE_FIELDS}) for t in _list(data, "trades")
    )
    raw_netting = data.get("netting")
    netting = None
    if raw_netting is not None:
        netting = NettingBase(
            _int(raw_netting, "root_seq"), _int_map(raw_netting, "cumulative_micro")
        )
    return IntervalPackage(
        _int(data, "interval_start_s"),
        orders,
        readings,
        {str(k): str(v) for k, v in _map(data, "meter_owners").items()},
        trades,
        _int_map(data, "deltas_micro"),
        attestation_from_json(_map(data, "attestation")),
        netting,
    )


def _signed_order(data: Mapping[str, Any]) -> SignedOrder:
    order = Order(**{n: _get(data, n) for n in (*_ORDER_FIELDS, "nonce")})
    return SignedOrder(order, unhex(_get(data, "signature"), "signature", 65))


def _get(data: Any, field: str) -> Any:
    if not isinstance(data, Mapping):
        raise ValidationError(field, "its parent is not a JSON object")
    if field not in data:
        raise ValidationError(field, "missing")
    return data[field]


def _int(data: Any, field: str) -> int:
    value = _get(data, field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer")
    return value


def _list(data: Any, field: str) -> list[Any]:
    value = _get(data, field)
    if not isinstance(value, list):
        raise ValidationError(field, "must be a JSON array")
    return value


def _map(data: Any, field: str) -> Mapping[str, Any]:
    value = _get(data, field)
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a JSON object")
    return value


def _int_map(data: Any, field: str) -> dict[str, int]:
    return {str(k): _int({field: v}, field) for k, v in _map(data, field).items()}
