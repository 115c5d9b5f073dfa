"""Sign-In with Ethereum (EIP-4361), short-lived HMAC tokens, and per-caller token buckets.

Flow: ``GET /v1/auth/nonce?address=0x…`` returns an EIP-4361 message with a fresh single-use
nonce; the participant signs it with its key (EIP-191 ``personal_sign``) and
``POST /v1/auth/token`` exchanges message + signature for a bearer token
``base64url(claims).base64url(HMAC-SHA256(secret, claims))`` that expires after
``Settings.auth_token_lifetime_s``. The role comes from the chain's registry at sign-in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct

from gridledger.eip712 import is_checksummed
from gridledger.errors import RateLimited, Unauthenticated, ValidationError

SIWE_STATEMENT = "Sign in to the gridledger energy market."
NONCE_LIFETIME_S = 300
MAX_PENDING_NONCES = 10_000


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message that gridledger issues and checks."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    expiration_time: str
    statement: str = SIWE_STATEMENT
    version: str = "1"

    def text(self) -> str:
        return (
            f"{self.domain} wants you to sign in with your Ethereum account:\n"
            f"{self.address}\n\n{self.statement}\n\n"
            f"URI: {self.uri}\nVersion: {self.version}\nChain ID: {self.chain_id}\n"
            f"Nonce: {self.nonce}\nIssued At: {self.issued_at}\n"
            f"Expiration Time: {self.expiration_time}"
        )


_SIWE = re.compile(
    r"(?P<domain>[^\s]+) wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n\n(?P<statement>[^\n]*)\n\n"
    r"URI: (?P<uri>[^\n]+)\nVersion: (?P<version>1)\nChain ID: (?P<chain_id>[0-9]{1,20})\n"
    r"Nonce: (?P<nonce>[0-9a-zA-Z]{8,64})\nIssued At: (?P<issued_at>[^\n]+)\n"
    r"Expiration Time: (?P<expiration_time>[^\n]+)"
)


def parse_siwe(text: str) -> SiweMessage:
    match = _SIWE.fullmatch(text)
    if match is None:
        raise ValidationError("message", "not an EIP-4361 message issued by this server")
    g = match.groupdict()
    return SiweMessage(
        g["domain"],
        g["address"],
        g["uri"],
        int(g["chain_id"]),
        g["nonce"],
        g["issued_at"],
        g["expiration_time"],
        g["statement"],
        g["version"],
    )


def iso_utc(instant_s: float) -> str:
    return dt.datetime.fromtimestamp(int(instant_s), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> float:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        raise ValidationError("message", f"not an ISO-8601 UTC time: {text!r}") from None


def recover_personal_sign(text: str, signature_hex: str) -> str:
    """The address that signed ``text`` with EIP-191 personal_sign."""
    try:
        signature = bytes.fromhex(signature_hex.removeprefix("0x"))
        if len(signature) != 65:
            raise ValueError(f"must be 65 bytes, got {len(signature)}")
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception as exc:  # eth_account raises several types for a malformed signature
        raise ValidationError("signature", f"cannot recover a signer: {exc}") from None


def sign_in_message_signature(text: str, private_key: bytes) -> str:
    """What a wallet does for the message (tests and scripts use it)."""
    signed = Account.sign_message(encode_defunct(text=text), private_key=private_key)
    return "0x" + bytes(signed.signature).hex()


class NonceBook:
    """Nonces issued and not yet used, each bound to one address and expiring; single use."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def issue(self, address: str) -> str:
        nonce = secrets.token_hex(16)
        with self._lock:
            now = self._clock()
            while self._pending and (
                len(self._pending) >= MAX_PENDING_NONCES
                or next(iter(self._pending.values()))[1] < now
            ):
                self._pending.popitem(last=False)
            self._pending[nonce] = (address, now + NONCE_LIFETIME_S)
        return nonce

    def redeem(self, nonce: str, address: str) -> None:
        with self._lock:
            entry = self._pending.pop(nonce, None)
        if entry is None or entry[1] < self._clock():
            raise Unauthenticated("nonce: unknown, used or expired; ask for a new one")
        if entry[0] != address:
            raise Unauthenticated("nonce: issued for another address")


@dataclass(frozen=True)
class Principal:
    """A signed-in caller."""

    address: str
    role: str
    expires_at_s: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    def __init__(self, secret: bytes, lifetime_s: int, clock: Callable[[], float] = time.time):
        self._secret, self.lifetime_s, self._clock = secret, lifetime_s, clock

    def issue(self, address: str, role: str) -> tuple[str, Principal]:
        now = int(self._clock())
        principal = Principal(address, role, now + self.lifetime_s)
        claims = {"sub": address, "role": role, "iat": now, "exp": principal.expires_at_s}
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}", principal

    def verify(self, token: str) -> Principal:
        payload, _, mac = token.partition(".")
        if not payload or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise Unauthenticated("token: not issued by this node (bad signature)")
        try:
            claims = json.loads(_unb64(payload))
            principal = Principal(str(claims["sub"]), str(claims["role"]), int(claims["exp"]))
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("token: malformed claims") from None
        if principal.expires_at_s <= self._clock():
            raise Unauthenticated("token: expired; sign in again")
        if not is_checksummed(principal.address):
            raise Unauthenticated("token: malformed subject")
        return principal

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())


class RateLimiter:
    """One token bucket per key: ``per_minute`` tokens a minute, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, tokens: int = 1) -> None:
        """Spend ``tokens`` for ``key`` or raise RateLimited (nothing spent) with the wait."""
        with self._lock:
            now = self._clock()
            have, at = self._buckets.get(key, (self.capacity, now))
            have = min(self.capacity, have + (now - at) * self.refill_per_s)
            if tokens > self.capacity:
                raise RateLimited(key, 60.0)
            if have < tokens:
                self._buckets[key] = (have, now)
                raise RateLimited(key, (tokens - have) / self.refill_per_s)
            self._buckets[key] = (have - tokens, now)
            if len(self._buckets) > 100_000:  # forget the fullest buckets first
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity}
