"""The operator's node: the interval pipeline (orders -> clearing -> settlement -> chain).

Public surface: :class:`MarketOperator`, :class:`IntervalOutcome`, :func:`enrol_supplier`.
"""

from gridledger.node.interval import (
    IntervalOutcome,
    MarketOperator,
    enrol_supplier,
    load_deployment,
    save_deployment,
    supplier_address,
)

__all__ = [
    "IntervalOutcome",
    "MarketOperator",
    "enrol_supplier",
    "load_deployment",
    "save_deployment",
    "supplier_address",
]
