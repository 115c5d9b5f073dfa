"""``python -m gridledger.node [--config F] [--chain URL] [--db URL] [--speed N] [--port P]``.

The same as ``gridledger node``; kept so the node runs without the CLI (tests start it so).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gridledger.config import load_settings
from gridledger.node.runner import run_node


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gridledger node", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--chain", help="'memory' or an EVM JSON-RPC URL")
    parser.add_argument("--db", help="database URL")
    parser.add_argument("--speed", type=int, help="market seconds per wall second")
    parser.add_argument("--host", help="HTTP host")
    parser.add_argument("--port", type=int, help="HTTP port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides = {
        "chain": args.chain,
        "db_url": args.db,
        "speed": args.speed,
        "http_host": args.host,
        "http_port": args.port,
    }
    run_node(load_settings(overrides, config_path=args.config))


if __name__ == "__main__":
    main()
