"""What the node serves independent detector processes (``gridledger detector``).

Detector access: the caller signs in with SIWE like everyone (a detector is registered in the
Registry as an auditor) and must be in the Evidence contract's detector set. The data is raw and
signed where it can be: each detector re-verifies every reading's signature and applies its own
model and its own traffic thresholds, so a detector does not have to trust this node's analysis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Path, Query, Request

from gridledger.errors import AuthorizationError, Unauthenticated
from gridledger.metering.reading import signed_reading_to_json
from gridledger.privacy.access_log import node_now_s, record_reads

if TYPE_CHECKING:
    from gridledger.node.parts import NodeParts as Node
    from gridledger.node.security import SecurityMonitor

INT64_MAX = (1 << 63) - 1
DETECTOR_ACCESS: dict[str, Any] = {"x-access": "detector"}
PUBLIC: dict[str, Any] = {"x-access": "public"}


def add_detector_routes(app: FastAPI, node: Node, monitor: SecurityMonitor) -> None:
    detectors = frozenset(monitor.policy.detectors())

    def detector_of(request: Request) -> str:
        value = request.headers.get("authorization", "")
        if not value.lower().startswith("bearer "):
            raise Unauthenticated("sign in first: send Authorization: Bearer <token>")
        principal = request.app.state.api.tokens.verify(value[7:])
        if principal.address not in detectors:
            raise AuthorizationError(f"{principal.address} is not a registered detector")
        return str(principal.address)

    @app.get("/v1/security/evidence", openapi_extra=PUBLIC, tags=["security"])
    def evidence() -> dict[str, Any]:
        """The Evidence contract, its quorum k and the detector set findings are counted from."""
        contract = monitor.contract
        return {
            "contract": contract.address if contract is not None else None,
            "quorum": monitor.policy.quorum,
            "detectors": sorted(detectors),
            "model_version": monitor.model_version,
        }

    @app.get(
        "/v1/security/intervals/{interval_start_s}/readings",
        openapi_extra=DETECTOR_ACCESS,
        tags=["security"],
    )
    def interval_readings(
        request: Request,
        interval_start_s: int = Path(ge=0, le=INT64_MAX, description="Unix seconds"),
    ) -> dict[str, Any]:
        """Every registered meter and every signed reading the node holds for the interval."""
        reader = detector_of(request)
        store = node.store
        readings = store.readings_in_interval(interval_start_s)
        owners = {m.address: m.owner for m in store.meters()}
        record_reads(  # personal data: logged for every owner it names (docs/privacy.md)
            store,
            reader=reader,
            reader_role="detector",
            subjects=[owners[r.reading.meter] for r in readings if r.reading.meter in owners],
            what=f"security-readings {interval_start_s}",
            at_s=node_now_s(node.market),
        )
        return {
            "interval_start_s": interval_start_s,
            "market_time_s": int(node.market.clock.now()),
            "meters": [
                {"address": m.address, "owner": m.owner, "active": m.active} for m in store.meters()
            ],
            "readings": [signed_reading_to_json(r.signed) for r in readings],
        }

    @app.get("/v1/security/traffic", openapi_extra=DETECTOR_ACCESS, tags=["security"])
    def traffic(
        request: Request,
        after_id: int = Query(0, ge=0, le=INT64_MAX),
        limit: int = Query(5_000, ge=1, le=50_000),
    ) -> dict[str, Any]:
        """Raw traffic events (request outcomes by source and reason code) after ``after_id``."""
        detector_of(request)
        events, last = monitor.traffic_since(after_id, limit)
        return {"events": events, "last_id": last, "market_time_s": int(node.market.clock.now())}
