"""Evidence records: what a detector node saw, kept off-chain, committed on-chain by its hash.

The record names the detector node, the subject (a meter or participant address), the window,
the features and score behind the flag and the model version. Its canonical encoding is JSON
with sorted keys and every number as an integer (scores and features in millionths), so the
keccak hash is the same in any language. The node also signs
``Evidence(address subject,uint64 windowStartS,bytes32 evidenceHash)`` under EIP-712 with its
secp256k1 key, so the file alone proves who flagged whom.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak

from gridledger.eip712 import (
    Domain,
    StructType,
    address_of,
    recover_address,
    sign_digest,
    typed_digest,
)
from gridledger.errors import ValidationError

EVIDENCE_WINDOW_S = 86_400  # detectors agree on whole UTC days as evidence windows
MICRO = 1_000_000
EVIDENCE_TYPE = StructType(
    "Evidence",
    (("subject", "address"), ("windowStartS", "uint64"), ("evidenceHash", "bytes32")),
)


def to_micro(value: float) -> int:
    return round(value * MICRO)


@dataclass(frozen=True)
class Evidence:
    """One node's finding about one subject in one window (scores in millionths)."""

    detector: str
    subject: str
    window_start_s: int
    window_end_s: int
    kind: str  # "meter_stream" or "traffic"
    model_version: str
    score_micro: int
    features_micro: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        for name in ("detector", "subject"):
            if not is_checksum_address(getattr(self, name)):
                raise ValidationError(name, f"not a checksummed address: {getattr(self, name)!r}")
        if self.window_start_s % EVIDENCE_WINDOW_S:
            raise ValidationError("window_start_s", f"not a multiple of {EVIDENCE_WINDOW_S}")
        if self.window_end_s <= self.window_start_s:
            raise ValidationError("window_end_s", "must be after window_start_s")

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "subject": self.subject,
            "windowStartS": self.window_start_s,
            "windowEndS": self.window_end_s,
            "kind": self.kind,
            "modelVersion": self.model_version,
            "scoreMicro": self.score_micro,
            "featuresMicro": dict(self.features_micro),
        }

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def evidence_hash(self) -> bytes:
        """keccak256 of the canonical encoding: the 32 bytes that go on-chain."""
        return keccak(self.canonical_bytes())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        try:
            features = data["featuresMicro"]
            return cls(
                detector=str(data["detector"]),
                subject=str(data["subject"]),
                window_start_s=_int(data["windowStartS"], "windowStartS"),
                window_end_s=_int(data["windowEndS"], "windowEndS"),
                kind=str(data["kind"]),
                model_version=str(data["modelVersion"]),
                score_micro=_int(data["scoreMicro"], "scoreMicro"),
                features_micro=tuple(
                    sorted((str(k), _int(v, k)) for k, v in dict(features).items())
                ),
            )
        except KeyError as exc:
            raise ValidationError(str(exc.args[0]), "missing") from None


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    return value


def evidence_window(time_s: int) -> tuple[int, int]:
    """The evidence window (whole day) holding ``time_s``."""
    start = time_s - time_s % EVIDENCE_WINDOW_S
    return start, start + EVIDENCE_WINDOW_S


@dataclass(frozen=True)
class SignedEvidence:
    """An evidence record with its node's EIP-712 signature: the file kept off-chain."""

    evidence: Evidence
    signature: bytes

    def to_file(self) -> str:
        return json.dumps(
            {
                "evidence": self.evidence.to_json(),
                "evidenceHash": "0x" + self.evidence.evidence_hash.hex(),
                "signature": "0x" + self.signature.hex(),
            },
            sort_keys=True,
            indent=2,
        )


def evidence_digest(evidence: Evidence, domain: Domain) -> bytes:
    struct_hash = EVIDENCE_TYPE.hash_struct(
        (evidence.subject, evidence.window_start_s, evidence.evidence_hash)
    )
    return typed_digest(domain, struct_hash)


@dataclass(frozen=True)
class DetectorNode:
    """A detector node (community operator, grid operator, auditor) and its signing key."""

    name: str
    private_key: bytes
    domain: Domain

    @property
    def address(self) -> str:
        return address_of(self.private_key)

    def sign(self, evidence: Evidence) -> SignedEvidence:
        if evidence.detector != self.address:
            raise ValidationError("detector", f"{evidence.detector} is not this node")
        return SignedEvidence(
            evidence, sign_digest(self.private_key, evidence_digest(evidence, self.domain))
        )

    def evidence(
        self,
        subject: str,
        time_s: int,
        kind: str,
        model_version: str,
        score: float,
        features: Mapping[str, float],
    ) -> SignedEvidence:
        """Sign a finding about ``subject`` in the day holding ``time_s``."""
        start, end = evidence_window(time_s)
        record = Evidence(
            detector=self.address,
            subject=subject,
            window_start_s=start,
            window_end_s=end,
            kind=kind,
            model_version=model_version,
            score_micro=to_micro(score),
            features_micro=tuple(sorted((k, to_micro(v)) for k, v in features.items())),
        )
        return self.sign(record)


def verify_evidence_file(text: str, onchain_hash: bytes, domain: Domain) -> Evidence:
    """Check an off-chain evidence file against the hash recorded on-chain; return the record.

    Raises ValidationError when the record does not hash to ``onchain_hash`` or was not signed
    by the detector it names.
    """
    try:
        raw = json.loads(text)
        evidence = Evidence.from_json(raw["evidence"])
        signature = bytes.fromhex(str(raw["signature"]).removeprefix("0x"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError("evidence", f"not an evidence file: {exc}") from None
    if evidence.evidence_hash != onchain_hash:
        raise ValidationError("evidence", "record does not hash to the on-chain evidence hash")
    signer = recover_address(evidence_digest(evidence, domain), signature)
    if signer != evidence.detector:
        raise ValidationError("signature", f"signed by {signer}, not by {evidence.detector}")
    return evidence
