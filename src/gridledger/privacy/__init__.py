"""Privacy: secret leaf salts, the access log, consent rules, DP aggregates and erasure.

Only the pure salt primitives are re-exported here, because the market and metering cores import
them; the store-backed parts live in their own modules (``gridledger.privacy.records`` ...).
"""

from gridledger.privacy.salts import SALT_BYTES, LeafKey, check_salt

__all__ = ["SALT_BYTES", "LeafKey", "check_salt"]
