"""The chain edge of gridledger: the contracts (token, registry, market) and their client.

Pure domain code never imports this package; the service layer hands it plain ints and bytes.
"""

from gridledger.ledger.client import (
    ChainEvent,
    Deployment,
    Ledger,
    OnChainInterval,
    OnChainParticipant,
    ParticipantClient,
    Role,
    WithdrawalRequest,
)
from gridledger.ledger.entries import pack_entries, unpack_entry
from gridledger.ledger.sender import TxResult, TxStats

__all__ = [
    "ChainEvent",
    "Deployment",
    "Ledger",
    "OnChainInterval",
    "OnChainParticipant",
    "ParticipantClient",
    "Role",
    "TxResult",
    "TxStats",
    "WithdrawalRequest",
    "pack_entries",
    "unpack_entry",
]
