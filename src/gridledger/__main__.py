"""``python -m gridledger``: the same as the ``gridledger`` command."""

from gridledger.cli import app

if __name__ == "__main__":  # not when a worker process imports it as __mp_main__
    app(prog_name="gridledger")
