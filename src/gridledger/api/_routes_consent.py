"""Privacy routes: a participant's access log, and DP community statistics for grantees.

Aggregates are answered to any signed-in caller (a researcher, an aggregator) and charged to
that caller's epsilon budget (docs/privacy.md); a release over budget is a 409 problem.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Path, Query

from gridledger.api._app import INT64_MAX, ApiContext
from gridledger.api._auth import Principal
from gridledger.api._routes_auth import caller_dependency, require_own
from gridledger.node.market import AUDITOR, OPERATOR
from gridledger.privacy.access_log import access_report
from gridledger.privacy.aggregates import load_profile, self_sufficiency
from gridledger.privacy.commands import report_json
from gridledger.privacy.keys import leaf_key_of

OWN: dict[str, Any] = {"x-access": "own"}
SIGNED_IN: dict[str, Any] = {"x-access": "signed-in"}
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def _window() -> tuple[Any, Any, Any]:
    return (
        Query(0, ge=0, le=INT64_MAX, description="first interval start, Unix seconds"),
        Query(INT64_MAX, ge=1, le=INT64_MAX, description="end of the window (exclusive)"),
        Query(0.1, gt=0, le=10, description="privacy loss of this release (epsilon)"),
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
