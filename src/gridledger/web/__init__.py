"""The dashboard: static files served by the API (no front-end build at run time)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["STATIC_DIR"]
