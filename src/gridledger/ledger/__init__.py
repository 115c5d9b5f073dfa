"""The chain edge of gridledger: the contracts (token, registry, market) and their client.

Pure domain code never imports this package; the service layer hands it plain ints and bytes.
"""

from gridledger.ledger.client import (
    AccessLogCommitment,
    AccountView,
    ChainEvent,
    ConsentGrant,
    Deployment,
    Ledger,
    NettingAccount,
    OnChainInterval,
    OnChainParticipant,
    ParticipantClient,
    Role,
    WithdrawalRequest,
)
from gridledger.ledger.entries import pack_entries, unpack_entry
from gridledger.ledger.netting import NettingBook, NettingClaim, NettingRoot, netting_leaf
from gridledger.ledger.sender import TxResult, TxStats

__all__ = [
    "AccessLogCommitment",
    "AccountView",
    "ChainEvent",
    "ConsentGrant",
    "Deployment",
    "Ledger",
    "NettingAccount",
    "NettingBook",
    "NettingClaim",
    "NettingRoot",
    "OnChainInterval",
    "OnChainParticipant",
    "ParticipantClient",
    "Role",
    "TxResult",
    "TxStats",
    "WithdrawalRequest",
    "netting_leaf",
    "pack_entries",
    "unpack_entry",
]
