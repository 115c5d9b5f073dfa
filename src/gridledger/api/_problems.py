"""Map the gridledger exception tree to RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridledger import errors

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[errors.GridledgerError], int, str], ...] = (
    (errors.OrderRejected, 422, "order-rejected"),
    (errors.ReadingRejected, 422, "reading-rejected"),
    (errors.ValidationError, 422, "validation-error"),
    (errors.ConfigError, 500, "config-error"),
    (errors.NotFoundError, 404, "not-found"),
    (errors.AuthorizationError, 403, "forbidden"),
    (errors.ConflictError, 409, "conflict"),
    (errors.ChainUnavailable, 503, "chain-unavailable"),
    (errors.ChainError, 502, "chain-error"),
    (errors.StoreError, 503, "store-unavailable"),
    (errors.DataSourceError, 500, "data-source-error"),
)


def problem_for(exc: errors.GridledgerError) -> tuple[int, dict[str, object]]:
    status, slug = 500, "internal-error"
    for cls, code, name in _STATUS:
        if isinstance(exc, cls):
            status, slug = code, name
            break
    body: dict[str, object] = {
        "type": f"https://gridledger.org/problems/{slug}",
        "title": slug.replace("-", " "),
        "status": status,
        "detail": str(exc),
    }
    for attr in ("field", "code", "error_name"):
        if hasattr(exc, attr):
            body[attr] = getattr(exc, attr)
    return status, body


def install_problem_handlers(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.GridledgerError)
        status, body = problem_for(exc)
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    app.add_exception_handler(errors.GridledgerError, handle)
