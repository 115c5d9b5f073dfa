"""Privacy routes: consents, the data a grantee may read, a participant's access log, and DP
community statistics.

A grantee signed in with SIWE reads an owner's data only under a grant in force on the Consent
contract, exactly the granted period, as JSON or Green Button XML; anything else is a 403
problem naming the reason. Aggregates are answered to any signed-in caller and charged to its
epsilon budget (docs/privacy.md); a release over budget is a 409 problem.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import Depends, FastAPI, Path, Query
from fastapi.responses import Response

from gridledger.api._auth import Principal
from gridledger.api._context import INT64_MAX, ApiContext
from gridledger.api._routes_auth import caller_dependency, require_own
from gridledger.iotools.greenbutton import from_readings, write_greenbutton
from gridledger.metering import Reading
from gridledger.node.market import AUDITOR, OPERATOR
from gridledger.privacy.access_log import access_report, node_now_s, record_access
from gridledger.privacy.aggregates import load_profile, self_sufficiency
from gridledger.privacy.commands import report_json
from gridledger.privacy.consent import (
    ConsentChain,
    consented_readings,
    grant_status,
    scope_names,
)
from gridledger.privacy.keys import leaf_key_of

OWN: dict[str, Any] = {"x-access": "own"}
SIGNED_IN: dict[str, Any] = {"x-access": "signed-in"}
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def _window() -> tuple[Any, Any, Any]:
    return (
        Query(0, ge=0, le=INT64_MAX, description="first interval start, Unix seconds"),
        Query(INT64_MAX, ge=1, le=INT64_MAX, description="end of the window (exclusive)"),
        Query(0.1, ge=0.001, le=10, description="privacy loss of this release (epsilon)"),
    )


def add_privacy_routes(app: FastAPI, ctx: ApiContext) -> None:
    caller = caller_dependency(ctx)
    store = ctx.state.store
    from_q, to_q, eps_q = _window()

    @app.get("/v1/participants/{address}/access-log", openapi_extra=OWN, tags=["privacy"])
    def access_log(
        address: str = Path(pattern=ADDRESS_PATTERN), principal: Principal = Depends(caller)
    ) -> dict[str, Any]:
        """Who read this participant's data, when and under which consent, each committed day's
        entries with their salts and Merkle proofs against the day's on-chain root."""
        require_own(principal, address, OPERATOR, AUDITOR)
        return report_json(access_report(store, address, leaf_key_of(store)))

    def consent_chain() -> tuple[ConsentChain, Any]:
        view = ctx.chain_view()
        return view.ledger, view.lock

    @app.get("/v1/consents", openapi_extra=SIGNED_IN, tags=["privacy"])
    def consents(principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
        """The grants the caller gave or received, as the Consent contract holds them."""
        view = ctx.chain_view()
        with view.lock:
            events = view.ledger.consent_events()
            ids = sorted(
                {
                    int(e.args["id"])
                    for e in events
                    if e.name == "ConsentGranted"
                    and principal.address in (e.args["owner"], e.args["grantee"])
                }
            )
            grants = [view.ledger.consent_grant(i) for i in ids]
        now = node_now_s(ctx.state.live)
        return [
            {**dataclasses.asdict(g), "scopes": scope_names(g.scope_bits), **grant_status(g, now)}
            for g in grants
        ]

    @app.get("/v1/grantee/{address}/readings", openapi_extra=OWN, tags=["privacy"])
    def grantee_readings(
        address: str = Path(pattern=ADDRESS_PATTERN),
        from_s: int | None = Query(None, ge=0, le=INT64_MAX),
        to_s: int | None = Query(None, ge=1, le=INT64_MAX),
        format: str = Query("json", pattern="^(json|greenbutton)$"),
        principal: Principal = Depends(caller),
    ) -> Any:
        """The owner's meter readings the caller may read: the owner itself, operators and
        auditors all of them; anyone else exactly what a consent grant in force covers."""
        if principal.address == address or principal.role in (OPERATOR, AUDITOR):
            readings = _own_readings(address, from_s, to_s)
            record_access(
                store,
                reader=principal.address,
                reader_role=principal.role,
                subject=address,
                what="readings",
                at_s=node_now_s(ctx.state.live),
            )
            grant_id = 0
        else:
            chain, lock = consent_chain()
            with lock:
                served = consented_readings(
                    store,
                    chain,
                    address,
                    principal.address,
                    (from_s, to_s),
                    node_now_s(ctx.state.live),
                )
            readings, grant_id = list(served.readings), served.grant_id
        if format == "greenbutton":
            xml = write_greenbutton(from_readings(readings), title=f"gridledger {address}")
            return Response(xml, media_type="application/atom+xml")
        return {
            "owner": address,
            "consent_id": grant_id,
            "readings": [dataclasses.asdict(r) for r in readings],
        }

    def _own_readings(owner: str, from_s: int | None, to_s: int | None) -> list[Reading]:
        lo, hi = from_s or 0, to_s or INT64_MAX
        meters = [m.address for m in store.meters() if m.owner == owner]
        return [
            s.reading
            for m in meters
            for s in store.readings_of_meter(m)
            if lo <= s.reading.interval_start_s and s.reading.interval_end_s <= hi
        ]

    @app.get("/v1/aggregates/load-profile", openapi_extra=SIGNED_IN, tags=["privacy"])
    def community_load_profile(
        from_s: int = from_q,
        to_s: int = to_q,
        epsilon: float = eps_q,
        principal: Principal = Depends(caller),
    ) -> dict[str, Any]:
        """The community's imported Wh per interval, differentially private (charged to the
        caller's epsilon budget)."""
        starts, release = load_profile(store, principal.address, from_s, to_s, epsilon)
        return {
            "intervals": [
                {"interval_start_s": s, "imported_wh": v}
                for s, v in zip(starts, release.values, strict=True)
            ],
            **_cost(release),
        }

    @app.get("/v1/aggregates/self-sufficiency", openapi_extra=SIGNED_IN, tags=["privacy"])
    def community_self_sufficiency(
        from_s: int = from_q,
        to_s: int = to_q,
        epsilon: float = eps_q,
        principal: Principal = Depends(caller),
    ) -> dict[str, Any]:
        """Share of the community's imports bought in the local market, differentially private."""
        share, release = self_sufficiency(store, principal.address, from_s, to_s, epsilon)
        return {"self_sufficiency_percent": round(100 * share, 1), **_cost(release)}


def _cost(release: Any) -> dict[str, Any]:
    return {
        "epsilon": release.epsilon,
        "spent_epsilon": release.spent_epsilon,
        "budget_epsilon": release.budget_epsilon,
    }
