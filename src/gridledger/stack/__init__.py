"""Operating gridledger: consistency checks of a node against the chain, the local stack.

Public surface: :func:`check_store_against_chain`, :class:`CheckReport`.
"""

from gridledger.stack.check import CheckReport, check_store_against_chain

__all__ = ["CheckReport", "check_store_against_chain"]
