"""Flexibility: the DSO's requests, households' offers, baselines and what is paid for delivery."""

from gridledger.flex._types import Direction, FlexAward, FlexOffer, FlexRequest

__all__ = ["Direction", "FlexAward", "FlexOffer", "FlexRequest"]
