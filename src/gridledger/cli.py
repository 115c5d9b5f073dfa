"""The ``gridledger`` command line (typer + rich). Thin: each command calls a library function.

Errors from the library (``GridledgerError``) are printed as one red line saying what to do,
with exit code 1; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridledger.config import load_settings
from gridledger.errors import GridledgerError

app = typer.Typer(
    help="gridledger: a blockchain-based peer-to-peer energy market.",
    no_args_is_help=True,
    add_completion=False,
)
market_app = typer.Typer(help="Clear order books offline (for researchers).", no_args_is_help=True)
meter_app = typer.Typer(help="Meter data: Green Button import and export.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks: each compares ours with a baseline in one run.", no_args_is_help=True
)
app.add_typer(market_app, name="market")
app.add_typer(meter_app, name="meter")
app.add_typer(bench_app, name="bench")

console = Console(stderr=True)
out = Console()
T = TypeVar("T")


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except GridledgerError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


def emit_json(data: Any, path: Path | None = None) -> None:
    text = json.dumps(data, indent=2, sort_keys=True)
    if path is None:
        sys.stdout.write(text + "\n")
    else:
        path.write_text(text + "\n")
        console.print(f"wrote {path}")


@app.command()
def demo(
    households: int = typer.Option(10, min=2, help="Households taken from the SimBench LV grid."),
    intervals: int = typer.Option(96, min=1, help="15-minute intervals to run (96 = one day)."),
    chain: str = typer.Option("memory", help="'memory' (in-process EVM) or a JSON-RPC URL."),
    db: str | None = typer.Option(None, help="Database URL (default: a fresh SQLite file)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the summary as JSON here."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the dashboard afterwards."),
    port: int = typer.Option(8000, help="Dashboard port on 127.0.0.1."),
    seed: int = typer.Option(7, help="Seed of the bidding strategies."),
) -> None:
    """Run one simulated trading day of a small energy community on a blockchain."""
    from gridledger.sim.day import DayConfig, run_day

    with friendly_errors():
        settings = load_settings({"chain": chain, "db_url": db, "http_port": port})
        config = DayConfig(
            households=households, intervals=intervals, seed=seed, fresh_db=db is None
        )
        with progress_bar("trading", intervals) as advance:
            result = run_day(config, settings, on_interval=advance)
        out.print(summary_table(result.summary))
        if json_path is not None:
            emit_json(result.summary, json_path)
        if serve:
            serve_dashboard(result.app_state(), settings.http_host, settings.http_port)


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="gridledger: one community, one market, one chain", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    price = summary["mean_local_price_micro_per_kwh"]
    rows = [
        ("households", f"{summary['households']}"),
        ("intervals settled on-chain", f"{summary['settled_intervals']} / {summary['intervals']}"),
        ("trades", f"{summary['trades']:,}"),
        ("energy traded locally", f"{summary['energy_traded_wh'] / 1000:,.1f} kWh"),
        ("share of demand met locally", f"{summary['local_share_of_demand']:.1%}"),
        ("mean local price", "–" if price is None else f"{price / 1e6:.4f} gEUR/kWh"),
        (
            "grid import tariff / feed-in",
            f"{summary['import_price_micro_per_kwh'] / 1e6:.4f} / "
            f"{summary['feed_in_price_micro_per_kwh'] / 1e6:.4f} gEUR/kWh",
        ),
        ("community cost, grid only", f"{summary['baseline_cost_micro'] / 1e6:,.2f} gEUR"),
        ("community cost, with the market", f"{summary['market_cost_micro'] / 1e6:,.2f} gEUR"),
        ("community savings", f"{summary['community_savings_micro'] / 1e6:,.2f} gEUR"),
        ("chain transactions", f"{summary['chain_txs']:,}"),
        ("gas used", f"{summary['gas_used']:,}"),
        ("wall time", f"{summary['wall_time_s']:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def serve_dashboard(state: Any, host: str, port: int) -> None:
    import uvicorn

    from gridledger.api import create_app

    console.print(f"dashboard at [bold]http://{host}:{port}[/]  (Ctrl-C to stop)")
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")


def main() -> None:  # pragma: no cover - console entry point
    app()
