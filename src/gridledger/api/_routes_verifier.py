"""Verifier routes: the data a verifier re-executes, and where it hands in its attestation.

Only members of the Registry's verifier set may call them (signed in with SIWE like everyone;
membership as the operator last read it from the Registry, refreshed at every collection).
The package is what the operator claims; the verifier checks it against the chain, never
against this server. No route here touches the chain client: the operator holds it while it
waits for these POSTs.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, Field

from gridledger.api._auth import Principal
from gridledger.api._context import INT64_MAX, ApiContext
from gridledger.api._routes_auth import caller_dependency
from gridledger.errors import AuthorizationError, ValidationError
from gridledger.privacy.access_log import node_now_s, record_reads
from gridledger.privacy.keys import leaf_key_of
from gridledger.verifier.local import package_of
from gridledger.verifier.reexecute import IntervalPackage
from gridledger.verifier.remote import AttestationBox, known_verifier_set
from gridledger.verifier.wire import attestation_from_json, package_to_json, unhex

VERIFIER_ONLY: dict[str, Any] = {"x-access": "verifier"}


class AttestationIn(BaseModel):
    attestation: dict[str, Any] = Field(description="the IntervalAttestation fields, 0x-hex roots")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


def add_verifier_routes(app: FastAPI, ctx: ApiContext) -> None:
    caller = caller_dependency(ctx)

    def verifiers() -> list[str]:
        # Never the chain client here: the operator holds it while it waits for these POSTs.
        return known_verifier_set(ctx.state.store)

    def verifier(principal: Principal = Depends(caller)) -> Principal:
        if principal.address not in set(verifiers()):
            raise AuthorizationError(f"{principal.address} is not in the Registry's verifier set")
        return principal

    def box() -> AttestationBox:
        live = ctx.live()
        return AttestationBox(ctx.state.store, live.ledger.domain, verifiers)

    @app.get(
        "/v1/verifier/intervals/{interval_start_s}", openapi_extra=VERIFIER_ONLY, tags=["verifier"]
    )
    def interval_package(
        interval_start_s: int = _start(), principal: Principal = Depends(verifier)
    ) -> dict[str, Any]:
        """The committed interval as the operator claims it: signed book, signed readings,
        meter owners, trades, settlement deltas, the attestation it asks for, netting base.
        Personal data: the read is logged for every participant it names (docs/privacy.md)."""
        package = package_of(ctx.live().operator, interval_start_s)
        record_reads(
            ctx.state.store,
            reader=principal.address,
            reader_role="verifier",
            subjects=package_subjects(package),
            what=f"interval-package {interval_start_s}",
            at_s=node_now_s(ctx.state.live),
        )
        return package_to_json(package)

    @app.get("/v1/verifier/deployment", openapi_extra={"x-access": "public"}, tags=["verifier"])
    def deployment() -> dict[str, Any]:
        """The contracts (and the operator account) verifiers attach to; the chain proves them."""
        live = ctx.live()
        return {
            "deployment": json.loads(live.ledger.deployment.to_json()),
            "operator": live.ledger.operator,
        }

    @app.get("/v1/verifier/leaf-key", openapi_extra=VERIFIER_ONLY, tags=["verifier"])
    def leaf_key(_: Principal = Depends(verifier)) -> dict[str, str]:
        """The leaf-salt secret the committed roots are built with (verifiers re-build them)."""
        return {"leaf_key": leaf_key_of(ctx.state.store).hex()}

    @app.post(
        "/v1/verifier/intervals/{interval_start_s}/attestations",
        status_code=201,
        openapi_extra=VERIFIER_ONLY,
        tags=["verifier"],
    )
    def post_attestation(
        body: AttestationIn,
        interval_start_s: int = _start(),
        principal: Principal = Depends(verifier),
    ) -> dict[str, Any]:
        """Hand in the caller's EIP-712 signature over its attestation of the interval."""
        att = attestation_from_json(body.attestation)
        if att.interval_start_s != interval_start_s:
            raise ValidationError("attestation.interval_start_s", "is not the interval in the path")
        signer = box().add(att, unhex(body.signature, "signature", 65), principal.address)
        return {"interval_start_s": interval_start_s, "signer": signer}

    @app.get(
        "/v1/verifier/intervals/{interval_start_s}/attestations",
        openapi_extra=VERIFIER_ONLY,
        tags=["verifier"],
    )
    def list_attestations(
        interval_start_s: int = _start(), _: Principal = Depends(verifier)
    ) -> dict[str, Any]:
        """Which verifiers signed what for the interval (the honest attestation or a void)."""
        signed = box().signed_by(interval_start_s)
        return {
            "interval_start_s": interval_start_s,
            "signed": {
                signer: {"settlement_hash": "0x" + att.settlement_hash.hex()}
                for signer, att in signed.items()
            },
        }


def package_subjects(package: IntervalPackage) -> list[str]:
    """Every account whose data the package carries: bidders, meter owners, parties, payees."""
    return sorted(
        {s.order.participant for s in package.orders}
        | set(package.meter_owners.values())
        | {t.buyer for t in package.trades}
        | {t.seller for t in package.trades}
        | set(package.deltas_micro)
    )


def _start() -> Any:
    return Path(ge=0, le=INT64_MAX, description="interval start, Unix seconds")
