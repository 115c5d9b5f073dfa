"""The one exception hierarchy of gridledger.

Every error derives from :class:`GridledgerError`; each subclass also derives from the
built-in exception it resembles, so callers can catch either (``except ValueError`` keeps
working around a :class:`ValidationError`). The API maps these classes to RFC 9457 problems.

::

    GridledgerError (Exception)
    ├── ConfigError (ValueError)            bad configuration or environment variable
    ├── ValidationError (ValueError)        bad input; names the field and the reason
    │   ├── OrderRejected                   an order failed verification (carries a reason code)
    │   └── ReadingRejected                 a meter reading failed verification (reason code)
    ├── NotFoundError (LookupError)         a participant, meter, interval or reading is unknown
    ├── AuthorizationError (PermissionError)  the caller may not do this
    │   └── Unauthenticated                 no valid token: sign in first (HTTP 401)
    ├── RateLimited (RuntimeError)          too many requests; carries retry_after_s (HTTP 429)
    ├── ConflictError (RuntimeError)        the state forbids it (committed twice, settled twice)
    ├── ChainError (RuntimeError)           the chain did not do what was asked
    │   ├── ContractRevert                  a call reverted; carries the custom error and args
    │   └── ChainUnavailable (ConnectionError)  the node cannot be reached
    ├── StoreError (RuntimeError)           the database refused or is unreachable
    ├── DataSourceError (OSError)           an external data file is missing or malformed
    └── ServiceUnavailable (ConnectionError)  a broker or node the command needs is not reachable
"""

from __future__ import annotations

from typing import Any


class GridledgerError(Exception):
    """Root of every gridledger error."""


class ConfigError(GridledgerError, ValueError):
    """Configuration is missing or malformed."""


class ValidationError(GridledgerError, ValueError):
    """Input is malformed: names the offending field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class OrderRejected(ValidationError):
    """An order failed verification; ``code`` is a stable machine-readable reason."""

    def __init__(self, code: str, field: str, reason: str) -> None:
        self.code = code
        super().__init__(field, reason)

    def __str__(self) -> str:
        return f"order rejected ({self.code}): {self.field}: {self.reason}"


class ReadingRejected(ValidationError):
    """A meter reading failed verification; ``code`` is a stable reason code."""

    def __init__(self, code: str, field: str, reason: str) -> None:
        self.code = code
        super().__init__(field, reason)

    def __str__(self) -> str:
        return f"reading rejected ({self.code}): {self.field}: {self.reason}"


class NotFoundError(GridledgerError, LookupError):
    """A named thing does not exist."""


class AuthorizationError(GridledgerError, PermissionError):
    """The caller is not allowed to do this."""


class Unauthenticated(AuthorizationError):
    """No valid token: sign in first (401, as opposed to 403 for a known caller)."""


class RateLimited(GridledgerError, RuntimeError):
    """Too many requests for one participant or meter; retry after ``retry_after_s``."""

    def __init__(self, who: str, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"rate limit exceeded for {who}; retry after {retry_after_s:.1f} s")


class ConflictError(GridledgerError, RuntimeError):
    """The current state forbids the action (for example, settling an interval twice)."""


class AttestationRefused(ConflictError):
    """A verifier will not co-sign an interval (its re-execution disagrees), or too few did."""


class AttestationPending(GridledgerError, RuntimeError):
    """Too few verifiers have attested an interval yet, but a quorum is still possible."""


class ChainError(GridledgerError, RuntimeError):
    """The chain did not do what was asked."""


class ContractRevert(ChainError):
    """A contract call reverted with a (decoded) custom error."""

    def __init__(self, error_name: str, args: tuple[Any, ...] = (), tx_hash: str | None = None):
        self.error_name = error_name
        self.error_args = args
        self.tx_hash = tx_hash
        shown = ", ".join(repr(a) for a in args)
        super().__init__(f"contract reverted: {error_name}({shown})")


class ChainUnavailable(ChainError, ConnectionError):
    """The EVM node cannot be reached."""


class StoreError(GridledgerError, RuntimeError):
    """The database refused the operation or cannot be reached."""


class DataSourceError(GridledgerError, OSError):
    """An external data file or data set is missing or malformed."""


class ServiceUnavailable(GridledgerError, ConnectionError):
    """A service the command needs (an MQTT broker, a gridledger node) cannot be reached."""
