"""Map the gridledger exception tree to RFC 9457 problem details (application/problem+json).

Framework errors (unknown route, wrong method, a request that does not parse) and unexpected
exceptions are answered as problem documents too, so a client only ever parses one shape.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridledger import errors

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class NotLive(errors.ConflictError):
    """The server replays a finished run: there is no live market to act on."""


# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[errors.GridledgerError], int, str], ...] = (
    (errors.OrderRejected, 422, "order-rejected"),
    (errors.ReadingRejected, 422, "reading-rejected"),
    (errors.ValidationError, 422, "validation-error"),
    (errors.ConfigError, 500, "config-error"),
    (errors.NotFoundError, 404, "not-found"),
    (errors.Unauthenticated, 401, "unauthenticated"),
    (errors.AuthorizationError, 403, "forbidden"),
    (errors.RateLimited, 429, "rate-limited"),
    (NotLive, 503, "market-not-live"),
    (errors.ConflictError, 409, "conflict"),
    (errors.ChainUnavailable, 503, "chain-unavailable"),
    (errors.ChainError, 502, "chain-error"),
    (errors.StoreError, 503, "store-unavailable"),
    (errors.DataSourceError, 500, "data-source-error"),
)


def problem_body(status: int, slug: str, detail: str) -> dict[str, object]:
    return {
        "type": f"https://gridledger.org/problems/{slug}",
        "title": slug.replace("-", " "),
        "status": status,
        "detail": detail,
    }


def problem_for(exc: errors.GridledgerError) -> tuple[int, dict[str, object]]:
    status, slug = 500, "internal-error"
    for cls, code, name in _STATUS:
        if isinstance(exc, cls):
            status, slug = code, name
            break
    body = problem_body(status, slug, str(exc))
    for attr in ("field", "code", "error_name"):
        if hasattr(exc, attr):
            body[attr] = getattr(exc, attr)
    return status, body


def problem_response(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.GridledgerError)
        status, body = problem_for(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, errors.RateLimited):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        if isinstance(exc, errors.Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="gridledger"'
        return problem_response(status, body, headers)

    async def handle_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        body = problem_body(exc.status_code, slug, str(exc.detail))
        return problem_response(exc.status_code, body, dict(exc.headers or {}))

    async def handle_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        issues = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
        first = issues[0] if issues else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        body = problem_body(422, "validation-error", f"{where}: {first.get('msg', 'invalid')}")
        body["field"] = where
        body["errors"] = issues
        return problem_response(422, body)

    async def handle_bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in the API", exc_info=exc)
        return problem_response(500, problem_body(500, "internal-error", type(exc).__name__))

    app.add_exception_handler(errors.GridledgerError, handle)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(RequestValidationError, handle_invalid)
    app.add_exception_handler(Exception, handle_bug)
