"""The REST API (FastAPI, ``/v1``) and the dashboard it serves.

Public surface: :func:`create_app`, :class:`NodeState`.
"""

from gridledger.api._app import NodeState, create_app

__all__ = ["NodeState", "create_app"]
