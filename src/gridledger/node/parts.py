"""What a node's add-ons (the security monitor, the detector routes) read from a running node.

A :class:`typing.Protocol` instead of :class:`gridledger.node.runner.Node` itself: the runner
imports those add-ons, so they must not import the runner back (no import circle).
"""

from __future__ import annotations

from typing import Protocol

from gridledger.config import Settings
from gridledger.ledger import Ledger
from gridledger.node.market import LiveMarket
from gridledger.store import Store


class NodeParts(Protocol):
    """The parts of a running node: its settings, store, chain client and live market."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def market(self) -> LiveMarket: ...
