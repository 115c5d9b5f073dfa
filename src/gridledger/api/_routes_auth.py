"""Sign-in routes and the ``Caller`` dependency every signed-in route uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gridledger.api._auth import (
    NONCE_LIFETIME_S,
    Principal,
    SiweMessage,
    iso_utc,
    parse_iso_utc,
    parse_siwe,
    recover_personal_sign,
)
from gridledger.api._context import PUBLIC, ApiContext, Ctx
from gridledger.eip712 import is_checksummed
from gridledger.errors import AuthorizationError, Unauthenticated, ValidationError

bearer = HTTPBearer(auto_error=False, description="token from POST /v1/auth/token")
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def checksummed(address: str, field: str = "address") -> str:
    if not is_checksummed(address):
        raise ValidationError(field, f"not a checksummed (EIP-55) address: {address!r}")
    return address


class TokenRequest(BaseModel):
    message: str = Field(max_length=2_000, description="the EIP-4361 message from /v1/auth/nonce")
    signature: str = Field(max_length=200, description="EIP-191 personal_sign signature, 0x-hex")


def _principal(ctx: ApiContext, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise Unauthenticated("sign in first: send Authorization: Bearer <token>")
    principal = ctx.tokens.verify(credentials.credentials)
    ctx.participant_limit.take(principal.address)
    return principal


def current_caller(
    ctx: Ctx, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The dependency resolving the bearer token to a Principal (401 without one)."""
    return _principal(ctx, credentials)


Caller = Annotated[Principal, Depends(current_caller)]


def caller_dependency(ctx: ApiContext) -> Callable[..., Principal]:
    """``current_caller`` bound to one context (for route modules not yet on ``Caller``)."""

    def caller(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        return _principal(ctx, credentials)

    return caller


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise AuthorizationError(
            f"role {principal.role} may not do this; needs {' or '.join(roles)}"
        )


def require_own(principal: Principal, owner: str, *privileged: str) -> None:
    """Only ``owner`` itself, or a caller with a privileged role, passes."""
    if principal.address != owner and principal.role not in privileged:
        raise AuthorizationError(f"{owner}'s data is visible to its owner only")


def _domain(ctx: ApiContext, request: Request) -> str:
    return ctx.state.settings.auth_domain or request.headers.get("host", "localhost")


router = APIRouter(tags=["auth"])


@router.get("/v1/auth/nonce", openapi_extra=PUBLIC)
def nonce(
    ctx: Ctx, request: Request, address: str = Query(pattern=ADDRESS_PATTERN)
) -> dict[str, Any]:
    """An EIP-4361 message with a fresh single-use nonce, for ``address`` to sign."""
    checksummed(address)
    client = request.client.host if request.client else "unknown"
    ctx.sign_in_limit.take("sign-in:" + client)
    live = ctx.live()
    now = time.time()
    message = SiweMessage(
        domain=_domain(ctx, request),
        address=address,
        uri=str(request.base_url).rstrip("/"),
        chain_id=live.ledger.chain_id,
        nonce=ctx.nonces.issue(address),
        issued_at=iso_utc(now),
        expiration_time=iso_utc(now + NONCE_LIFETIME_S),
    )
    return {
        "message": message.text(),
        "nonce": message.nonce,
        "expires_at": message.expiration_time,
    }


@router.post("/v1/auth/token", openapi_extra=PUBLIC)
def token(ctx: Ctx, body: TokenRequest, request: Request) -> dict[str, Any]:
    """Exchange a signed EIP-4361 message for a short-lived bearer token."""
    client = request.client.host if request.client else "unknown"
    ctx.sign_in_limit.take("sign-in:" + client)
    live = ctx.live()
    message = parse_siwe(body.message)
    signer = recover_personal_sign(body.message, body.signature)
    if signer != message.address:
        raise Unauthenticated(f"signature: signed by {signer}, not {message.address}")
    ctx.nonces.redeem(message.nonce, message.address)
    if message.domain != _domain(ctx, request):
        raise Unauthenticated(f"message: domain {message.domain!r} is not this server")
    if message.chain_id != live.ledger.chain_id:
        raise Unauthenticated(f"message: chain id {message.chain_id} is not this chain's")
    if parse_iso_utc(message.expiration_time) <= time.time():
        raise Unauthenticated("message: expired; ask for a new nonce")
    role = live.role_of(message.address)
    if role is None:
        raise AuthorizationError(f"{message.address} is not a registered participant")
    issued, principal = ctx.tokens.issue(message.address, role)
    return {
        "token": issued,
        "token_type": "Bearer",
        "address": principal.address,
        "role": role,
        "expires_at_s": principal.expires_at_s,
    }


@router.get("/v1/auth/me", openapi_extra={"x-access": "signed-in"})
def me(principal: Caller) -> dict[str, Any]:
    """Who the token belongs to, its role, and when it expires."""
    return {
        "address": principal.address,
        "role": principal.role,
        "expires_at_s": principal.expires_at_s,
    }
