"""The market engine: signed orders, the interval book, clearing mechanisms and commitments.

Pure and synchronous: nothing here touches the store, the chain or the network.
"""

from gridledger.market.book import Book
from gridledger.market.cda import clear_cda
from gridledger.market.clearing import clear, clear_pay_as_bid, clear_uniform_price
from gridledger.market.commitments import (
    TradeLine,
    order_leaf,
    order_proof,
    order_salt,
    orders_root,
    participant_proofs,
    result_lines,
    result_root,
    trade_leaf,
    trade_salt,
)
from gridledger.market.fees import GridFees
from gridledger.market.orders import (
    ORDER_TYPE,
    InMemoryOrderContext,
    Order,
    OrderContext,
    ParticipantStatus,
    Side,
    SignedOrder,
    escrow_required_micro,
    sign_order,
    signed_order_from_json,
    signed_order_to_json,
    verify_order,
)
from gridledger.market.result import ClearingResult, Trades

__all__ = [
    "ORDER_TYPE",
    "Book",
    "ClearingResult",
    "GridFees",
    "InMemoryOrderContext",
    "Order",
    "OrderContext",
    "ParticipantStatus",
    "Side",
    "SignedOrder",
    "TradeLine",
    "Trades",
    "clear",
    "clear_cda",
    "clear_pay_as_bid",
    "clear_uniform_price",
    "escrow_required_micro",
    "order_leaf",
    "order_proof",
    "order_salt",
    "orders_root",
    "participant_proofs",
    "result_lines",
    "result_root",
    "sign_order",
    "signed_order_from_json",
    "signed_order_to_json",
    "trade_leaf",
    "trade_salt",
    "verify_order",
]
