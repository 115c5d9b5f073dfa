"""The off-chain half of settlement by netting root (``Market.settleIntervalRoot`` and claims).

Each root commits every booked account's CUMULATIVE root-path net payment, so one claim catches
an account up on every root since its last claim. The book keeps those cumulative nets, builds
the trees (``gridledger.merkle``: OpenZeppelin-compatible, double-hashed leaves) and hands out
proofs. The chain stores only roots, so the book is the data that makes claims possible: the
operator must keep it (``to_json``/``from_json``) and publish it to participants.

Leaf: ``keccak(keccak(abi.encode(uint32 rootSeq, address account, int96 cumulativeMicro)))``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from eth_abi.abi import encode as abi_encode

from gridledger.eip712 import checksum_address
from gridledger.errors import ConflictError, NotFoundError, ValidationError
from gridledger.merkle import MerkleTree, build_tree, leaf_hash

_INT96_MIN = -(1 << 95)
_INT96_MAX = (1 << 95) - 1
_UINT32_MAX = (1 << 32) - 1
# Claims go against the newest root; a few older ones stay for claims already in flight.
DEFAULT_KEEP_ROOTS = 4


def netting_leaf(root_seq: int, account: str, cumulative_micro: int) -> bytes:
    """The leaf ``Market._claim`` recomputes for (root, account, cumulative net)."""
    words = abi_encode(["uint32", "address", "int96"], [root_seq, account, cumulative_micro])
    return leaf_hash(words)


@dataclass(frozen=True)
class NettingClaim:
    """Everything ``Market.claim`` needs for one account against one root."""

    account: str
    root_seq: int
    cumulative_micro: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class NettingRoot:
    """One root: every booked account's cumulative net as of this root, and its tree."""

    root_seq: int
    interval_start_s: int
    cumulative_micro: Mapping[str, int]
    moved_micro: int  # this interval's gross credits (== gross debits)
    tree: MerkleTree = field(repr=False, compare=False)

    @property
    def root(self) -> bytes:
        return self.tree.root

    def claim(self, account: str) -> NettingClaim:
        address = _checksum(account)
        try:
            cumulative = self.cumulative_micro[address]
        except KeyError:
            raise NotFoundError(f"{address} is not in netting root {self.root_seq}") from None
        proof = self.tree.proof(netting_leaf(self.root_seq, address, cumulative))
        return NettingClaim(address, self.root_seq, cumulative, tuple(proof))


class NettingBook:
    """Cumulative root-path nets of every account, and the newest roots' trees."""

    def __init__(self, keep_roots: int = DEFAULT_KEEP_ROOTS) -> None:
        if keep_roots < 1:
            raise ValidationError("keep_roots", "keep at least the newest root")
        self._keep_roots = keep_roots
        self._cumulative_micro: dict[str, int] = {}
        self._roots: dict[int, NettingRoot] = {}
        self._latest_seq = 0

    @property
    def latest_root_seq(self) -> int:
        return self._latest_seq

    @property
    def accounts(self) -> list[str]:
        return sorted(self._cumulative_micro)

    def cumulative_micro(self, account: str) -> int:
        """The account's cumulative net as of the newest root (0 if never booked)."""
        return self._cumulative_micro.get(_checksum(account), 0)

    def root(self, root_seq: int | None = None) -> NettingRoot:
        seq = self._latest_seq if root_seq is None else root_seq
        try:
            return self._roots[seq]
        except KeyError:
            raise NotFoundError(f"netting root {seq} is not in the book") from None

    def claim(self, account: str, root_seq: int | None = None) -> NettingClaim:
        return self.root(root_seq).claim(account)

    def prepare(
        self, root_seq: int, interval_start_s: int, deltas_micro: Mapping[str, int]
    ) -> NettingRoot:
        """The next root with `deltas_micro` added; the book changes only on :meth:`record`."""
        if root_seq != self._latest_seq + 1:
            raise ConflictError(
                f"netting book is at root {self._latest_seq}, cannot prepare root {root_seq}"
            )
        if root_seq > _UINT32_MAX:
            raise ValidationError("root_seq", "beyond uint32")
        cumulative = dict(self._cumulative_micro)
        total = moved = 0
        for account, delta in deltas_micro.items():
            address = _checksum(account)
            value = cumulative.get(address, 0) + delta
            if not _INT96_MIN <= value <= _INT96_MAX:
                raise ValidationError("deltas_micro", f"cumulative of {address} leaves int96")
            cumulative[address] = value
            total += delta
            moved += max(delta, 0)
        if total != 0:
            raise ValidationError("deltas_micro", f"deltas sum to {total}, not 0")
        leaves = [netting_leaf(root_seq, a, c) for a, c in cumulative.items()]
        tree = build_tree(leaves)
        return NettingRoot(root_seq, interval_start_s, cumulative, moved, tree)

    def record(self, posted: NettingRoot) -> None:
        """Adopt a root once it is on chain."""
        if posted.root_seq != self._latest_seq + 1:
            raise ConflictError(f"root {posted.root_seq} does not follow {self._latest_seq}")
        self._cumulative_micro = dict(posted.cumulative_micro)
        self._roots[posted.root_seq] = posted
        self._latest_seq = posted.root_seq
        for seq in [s for s in self._roots if s <= self._latest_seq - self._keep_roots]:
            del self._roots[seq]

    # ------------------------------------------------------------ persistence

    def to_json(self) -> str:
        """The kept roots' cumulative nets (trees are rebuilt on load)."""
        roots = [
            {
                "root_seq": r.root_seq,
                "interval_start_s": r.interval_start_s,
                "moved_micro": r.moved_micro,
                "cumulative_micro": dict(sorted(r.cumulative_micro.items())),
            }
            for r in sorted(self._roots.values(), key=lambda r: r.root_seq)
        ]
        return json.dumps({"keep_roots": self._keep_roots, "roots": roots}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NettingBook:
        raw = json.loads(text)
        book = cls(int(raw["keep_roots"]))
        for item in raw["roots"]:
            seq = int(item["root_seq"])
            cumulative = {_checksum(a): int(v) for a, v in item["cumulative_micro"].items()}
            leaves = [netting_leaf(seq, a, c) for a, c in cumulative.items()]
            posted = NettingRoot(
                seq,
                int(item["interval_start_s"]),
                cumulative,
                int(item["moved_micro"]),
                build_tree(leaves),
            )
            book._latest_seq = seq - 1  # roots are stored in order; adopt each in turn
            book.record(posted)
        return book

    def roots(self) -> Iterable[NettingRoot]:
        return (self._roots[s] for s in sorted(self._roots))


def _checksum(account: str) -> str:
    try:
        return checksum_address(account)
    except ValueError as exc:
        raise ValidationError("account", f"not an address: {account!r}") from exc
