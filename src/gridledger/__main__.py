"""``python -m gridledger``: the same as the ``gridledger`` command."""

from gridledger.cli import app

app(prog_name="gridledger")
