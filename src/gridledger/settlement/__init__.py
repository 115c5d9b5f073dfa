"""Settlement: turn cleared trades and metered delivery into exact, netted payments.

Pure integer arithmetic (Wh, micro-units); see the module docstrings for the rounding rule.
"""

from gridledger.settlement._delivery import (
    Delivery,
    DeliverySettlement,
    FlexDelivery,
    StatementLine,
    Tariffs,
    contracted_net_wh,
    settle_with_delivery,
)
from gridledger.settlement._netting import (
    IntervalSettlement,
    SettledTrade,
    net_interval,
    trade_amount_micro,
)

__all__ = [
    "Delivery",
    "DeliverySettlement",
    "FlexDelivery",
    "IntervalSettlement",
    "SettledTrade",
    "StatementLine",
    "Tariffs",
    "contracted_net_wh",
    "net_interval",
    "settle_with_delivery",
    "trade_amount_micro",
]
