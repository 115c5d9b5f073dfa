"""The k-of-n quorum rule, in Python exactly as the ``Evidence`` contract enforces it on-chain.

A subject is confirmed anomalous in a window once ``k`` distinct registered detector nodes have
submitted evidence for that (subject, window). A node counts once per (subject, window), so with
fewer than ``k`` lying nodes no honest subject is ever confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gridledger.errors import AuthorizationError, ConflictError, ValidationError
from gridledger.security.evidence import EVIDENCE_WINDOW_S, SignedEvidence


@dataclass(frozen=True, slots=True)
class Submission:
    """What a node sends on-chain: ``submitEvidence(subject, windowStartS, evidenceHash)``."""

    detector: str
    subject: str
    window_start_s: int
    evidence_hash: bytes

    @classmethod
    def of(cls, signed: SignedEvidence) -> Submission:
        e = signed.evidence
        return cls(e.detector, e.subject, e.window_start_s, e.evidence_hash)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """``AnomalyConfirmed``: the subject, the window and the k detectors that agreed."""

    subject: str
    window_start_s: int
    detectors: tuple[str, ...]


@dataclass(frozen=True)
class QuorumRule:
    k: int
    detectors: frozenset[str]
    window_length_s: int = EVIDENCE_WINDOW_S

    def __post_init__(self) -> None:
        if not 1 <= self.k <= len(self.detectors):
            raise ValidationError("k", f"must be in 1..{len(self.detectors)}, got {self.k}")


@dataclass
class QuorumBook:
    """The contract's state and checks; :meth:`submit` raises what ``submitEvidence`` reverts."""

    rule: QuorumRule
    _votes: dict[tuple[str, int], dict[str, bytes]] = field(default_factory=dict)
    _confirmed: dict[tuple[str, int], Confirmation] = field(default_factory=dict)

    def submit(self, submission: Submission) -> Confirmation | None:
        """Record a submission; the Confirmation when it is the k-th, else None."""
        if submission.detector not in self.rule.detectors:
            raise AuthorizationError(f"{submission.detector} is not a registered detector")
        if submission.window_start_s % self.rule.window_length_s:
            raise ValidationError("window_start_s", "not aligned to the evidence window")
        if submission.evidence_hash == b"\0" * 32:
            raise ValidationError("evidence_hash", "must not be zero")
        key = (submission.subject, submission.window_start_s)
        votes = self._votes.setdefault(key, {})
        if submission.detector in votes:
            raise ConflictError(f"{submission.detector} already submitted for {key}")
        votes[submission.detector] = submission.evidence_hash
        if len(votes) == self.rule.k and key not in self._confirmed:
            self._confirmed[key] = Confirmation(key[0], key[1], tuple(votes))
            return self._confirmed[key]
        return None

    def votes(self, subject: str, window_start_s: int) -> int:
        return len(self._votes.get((subject, window_start_s), {}))

    @property
    def confirmed(self) -> list[Confirmation]:
        return list(self._confirmed.values())


def confirmations(submissions: Iterable[Submission], rule: QuorumRule) -> list[Confirmation]:
    """Every confirmation a sequence of submissions produces (invalid ones are skipped)."""
    book = QuorumBook(rule)
    for submission in submissions:
        try:
            book.submit(submission)
        except (AuthorizationError, ConflictError, ValidationError):
            continue
    return book.confirmed
