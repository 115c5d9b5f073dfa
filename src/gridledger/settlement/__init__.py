"""Settlement: turn cleared trades into exact, netted payments (pure integer arithmetic).

Public surface: :class:`SettledTrade`, :func:`trade_amount_micro`, :func:`net_interval`,
:class:`IntervalSettlement`.
"""

from gridledger.settlement._netting import (
    IntervalSettlement,
    SettledTrade,
    net_interval,
    trade_amount_micro,
)

__all__ = ["IntervalSettlement", "SettledTrade", "net_interval", "trade_amount_micro"]
