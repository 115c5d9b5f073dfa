"""Per-leaf secret salts for the order, trade and reading Merkle leaves (pure).

Without a salt a leaf is the hash of a few low-entropy fields (a known address, a known
interval, a few thousand plausible Wh values), so the sibling hashes in anyone's statement proof
let its holder recover the neighbouring readings and trades by trying every value. Each leaf
therefore ends with a 32-byte salt word: ``abi.encode(fields..., bytes32 salt)``.

The salt is derived, not stored: ``HMAC-SHA256(leaf key, kind || abi.encode(identity))``, where
the leaf key is one random 32-byte operator secret and the identity names the record without
its values (an order by participant and nonce, a trade by both orders, a reading by meter and
sequence). Deriving keeps every existing table unchanged and lets a verifier that holds the key
re-execute an interval; a participant receives only the salts of its own leaves, with its
statement, so it can check its own proofs and learns nothing about the other leaves.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gridledger.errors import ValidationError

SALT_BYTES = 32


@dataclass(frozen=True, repr=False)
class LeafKey:
    """The operator secret every leaf salt is derived from (never printed, never logged)."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != SALT_BYTES:
            raise ValidationError("leaf_key", f"must be {SALT_BYTES} bytes, got {len(self.secret)}")

    @classmethod
    def random(cls) -> LeafKey:
        return cls(secrets.token_bytes(SALT_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> LeafKey:
        try:
            return cls(bytes.fromhex(text.removeprefix("0x")))
        except ValueError:
            raise ValidationError("leaf_key", "is not hex") from None

    def hex(self) -> str:
        return "0x" + self.secret.hex()

    def salt(self, kind: bytes, identity: bytes) -> bytes:
        """The salt of the ``kind`` leaf (b"order", b"trade", b"reading") named by ``identity``."""
        return hmac.new(self.secret, kind + b"\0" + identity, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "LeafKey(<secret>)"


def check_salt(salt: bytes) -> bytes:
    if len(salt) != SALT_BYTES:
        raise ValidationError("salt", f"must be {SALT_BYTES} bytes, got {len(salt)}")
    return salt
