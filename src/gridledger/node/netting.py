"""The operator's half of settlement by netting root: the book, the claims, the spendable escrow.

Each interval posts one root (``Market.settleIntervalRoot``) over every account's cumulative
root-path net; nothing moves in escrow until a claim applies ``cumulative - applied``. The
operator claims every account whose net changed once per claim period (``claimMany``, daily by
default), so gas grows with accounts per day, not per interval.

Everything needed survives a kill -9 in the store: the roots and the cumulative positions they
commit (the ledger's :class:`~gridledger.ledger.NettingBook` is rebuilt from them on start), and
the claims the chain applied, read from its ``Claimed`` events with a block cursor kept in the
same transaction. A claim batch mined before a crash is therefore seen on restart and never
sent again (the contract's rising claim cursor refuses it anyway).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence

from gridledger.errors import ConflictError, ContractRevert
from gridledger.ledger import Ledger, NettingBook, NettingRoot, TxResult
from gridledger.ledger.client import DEFAULT_CLAIM_BATCH
from gridledger.store import Store

log = logging.getLogger(__name__)

CLAIMS_CURSOR_KEY = "netting_claims_next_block"
CLAIMED_THROUGH_KEY = "netting_claimed_through_root"


def book_from_store(store: Store) -> NettingBook:
    """The netting book as of the newest root the store recorded (empty before the first)."""
    latest = store.latest_netting_root()
    if latest is None:
        return NettingBook()
    cumulative = store.netting_cumulative(latest.root_seq)
    credits = latest.credits_micro
    text = {
        "keep_roots": 4,
        "roots": [
            {
                "root_seq": latest.root_seq,
                "interval_start_s": latest.interval_start_s,
                "moved_micro": credits,
                "cumulative_micro": cumulative,
            }
        ],
    }
    book = NettingBook.from_json(json.dumps(text))
    if "0x" + book.root().root.hex() != latest.root:
        raise ConflictError(
            f"netting root {latest.root_seq}: the stored positions rebuild another root than the "
            "one recorded; the store is damaged"
        )
    return book


class NettingState:
    """The root-path state one operator keeps next to its ledger and store."""

    def __init__(self, store: Store, ledger: Ledger, claim_period_intervals: int) -> None:
        self.store, self.ledger = store, ledger
        self.claim_period_intervals = claim_period_intervals
        ledger.netting = book_from_store(store)
        chain_roots = ledger.root_count()
        if chain_roots < ledger.netting.latest_root_seq:
            raise ConflictError(
                f"the store records netting root {ledger.netting.latest_root_seq}, the chain holds "
                f"only {chain_roots}: the database belongs to another deployment"
            )
        self.applied_micro: dict[str, int] = {}
        self.refresh_claims(force=True)

    @property
    def book(self) -> NettingBook:
        return self.ledger.netting

    # -- claims the chain applied ---------------------------------------------------------
    def refresh_claims(self, force: bool = False) -> None:
        """Record the claims mined since the last look (one log query over the new blocks)."""
        cursor = int(self.store.meta(CLAIMS_CURSOR_KEY) or 0)
        head = self.ledger.block_number
        found: list[tuple[str, int, int]] = []
        if head >= cursor:
            found = [
                (str(e.args["account"]), int(e.args["rootSeq"]), int(e.args["deltaMicro"]))
                for e in self.ledger.events(cursor, head)
                if e.name == "Claimed"
            ]
            self.store.record_claims(found, CLAIMS_CURSOR_KEY, head + 1)
        if found or force:
            self.applied_micro = {a: v for a, (v, _) in self.store.netting_claims().items()}

    def unclaimed_micro(self, account: str) -> int:
        """Root-path net posted for ``account`` and not yet in its escrow (may be negative)."""
        return self.book.cumulative_micro(account) - self.applied_micro.get(account, 0)

    # -- roots ----------------------------------------------------------------------------
    def prepare(self, interval_start_s: int, deltas_micro: Mapping[str, int]) -> NettingRoot:
        """The next root with ``deltas_micro`` added (the book changes only when it is posted).

        A tree needs a leaf: before anyone has a root-path net, the grid operator's zero is it
        (the Market refuses a zero root)."""
        if not deltas_micro and self.book.latest_root_seq == 0:
            deltas_micro = {self.ledger.deployment.grid_operator: 0}
        return self.book.prepare(self.book.latest_root_seq + 1, interval_start_s, deltas_micro)

    def changed_positions(self, posted: NettingRoot) -> dict[str, int]:
        """The cumulative nets ``posted`` adds or changes against the book (stored per root)."""
        before = set(self.book.accounts)
        return {
            account: cumulative
            for account, cumulative in posted.cumulative_micro.items()
            if account not in before or self.book.cumulative_micro(account) != cumulative
        }

    # -- claiming -------------------------------------------------------------------------
    def claimed_through(self) -> int:
        return int(self.store.meta(CLAIMED_THROUGH_KEY) or 0)

    def claim_if_due(self) -> list[TxResult]:
        """Claim when a whole claim period of roots has been posted since the last claims."""
        if self.book.latest_root_seq - self.claimed_through() < self.claim_period_intervals:
            return []
        return self.claim_all()

    def claim_all(
        self,
        batch_size: int = DEFAULT_CLAIM_BATCH,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> list[TxResult]:
        """claimMany the newest root for every account whose applied net is behind it."""
        latest_seq = self.book.latest_root_seq
        if latest_seq == 0:
            return []
        self.refresh_claims()
        latest = self.book.root()
        behind = [
            account
            for account, cumulative in sorted(latest.cumulative_micro.items())
            if cumulative != self.applied_micro.get(account, 0)
        ]
        results: list[TxResult] = []
        for first in range(0, len(behind), batch_size):
            results += self._claim_batch(latest, behind[first : first + batch_size])
            if on_batch is not None:
                on_batch(min(first + batch_size, len(behind)), len(behind))
        self.refresh_claims()
        self.store.set_meta(CLAIMED_THROUGH_KEY, str(latest_seq))
        return results

    def _claim_batch(self, root: NettingRoot, accounts: Sequence[str]) -> list[TxResult]:
        try:
            return [self.ledger.send_claims([root.claim(a) for a in accounts])]
        except ContractRevert as exc:
            # An account claimed this root itself (or a first deposit moved its cursor): the
            # whole batch reverted, nothing moved; send it again without those accounts.
            still = [
                a for a in accounts if self.ledger.account_state(a).claimed_root_seq < root.root_seq
            ]
            log.warning(
                "claim batch reverted (%s); %d of %d still behind", exc, len(still), len(accounts)
            )
            if len(still) == len(accounts):
                raise
            return [self.ledger.send_claims([root.claim(a) for a in still])] if still else []
