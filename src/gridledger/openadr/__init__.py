"""OpenADR 2.0b at the edge (openleadr): the DSO's VTN and the households' VENs.

See docs/openadr.md. :mod:`convert` is pure; :mod:`vtn` and :mod:`ven` are the only async code.
"""

from gridledger.openadr.convert import awards_for, event_dict, request_from_event
from gridledger.openadr.ven import Household, Planner, Ven, headroom_planner
from gridledger.openadr.vtn import LoopThread, Vtn, VtnThread

__all__ = [
    "Household",
    "LoopThread",
    "Planner",
    "Ven",
    "Vtn",
    "VtnThread",
    "awards_for",
    "event_dict",
    "headroom_planner",
    "request_from_event",
]
