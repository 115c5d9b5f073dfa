"""The ``gridledger`` command line (typer + rich). Thin: each command calls a library function.

Errors from the library (``GridledgerError``) are printed as one red line saying what to do,
with exit code 1; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
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
        fail(str(exc))
    except OSError as exc:  # a file or socket the library did not name: still one line
        where = f" {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}")


def fail(message: str) -> NoReturn:
    """One red line on stderr (never wrapped: scripts grep it), exit code 1."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


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


@contextmanager
def steps_bar() -> Iterator[Callable[[str, int, int], None]]:
    """One bar per named step (enrolment of participants, meters, deposits; then trading),
    each with its count, share, elapsed time and time left."""
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, Any] = {}

        def advance(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=max(total, 1))
            progress.update(tasks[step], completed=done)

        yield advance


def emit_json(data: Any, path: Path | None = None) -> None:
    from gridledger.preflight import atomic_write

    text = json.dumps(data, indent=2, sort_keys=True)
    if path is None:
        sys.stdout.write(text + "\n")
    else:
        atomic_write(path, text + "\n")
        console.print(f"wrote {path}")


def version_callback(show: bool) -> None:
    if show:
        from importlib.metadata import version

        out.print(f"gridledger {version('gridledger')}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """gridledger: a blockchain-based peer-to-peer energy market."""


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
    first_interval: int = typer.Option(
        0, min=0, help="Interval of the day to start at (48: noon)."
    ),
    verifiers: int = typer.Option(3, min=1, help="In-process verifiers co-signing each interval."),
    quorum: int = typer.Option(2, min=1, help="Attestations the Market needs to settle."),
    fault: str | None = typer.Option(
        None, help="operator-tamper, verifier-down or verifier-lying (see docs/trust-model.md)."
    ),
) -> None:
    """Run one simulated trading day of a small energy community on a blockchain."""
    with friendly_errors():
        settings = load_settings({"chain": chain, "db_url": db, "http_port": port})
        preflight(settings, json_path=json_path, chain=True, db=db is not None)
        from gridledger.sim.day import DayConfig, run_day  # slow to import: after the checks

        config = DayConfig(
            households=households,
            intervals=intervals,
            seed=seed,
            first_interval=first_interval,
            fresh_db=db is None,
            verifiers=verifiers,
            quorum=quorum,
            fault=fault,
        )
        with steps_bar() as bar:
            result = run_day(
                config,
                settings,
                on_interval=lambda done: bar("trading", done, intervals),
                on_enrol=bar,
            )
        out.print(summary_table(result.summary))
        if json_path is not None:
            emit_json(result.summary, json_path)
        if serve:
            serve_dashboard(result.app_state(), settings.http_host, settings.http_port)


def preflight(
    settings: Any,
    *,
    json_path: Path | None = None,
    chain: bool = False,
    db: bool = False,
    db_must_exist: bool = False,
    mqtt: bool = False,
) -> None:
    """Check outputs and services before the work starts (each failure: one line)."""
    from gridledger.preflight import (
        check_broker_url,
        check_chain_url,
        check_db_url,
        check_output_file,
    )

    if json_path is not None:
        check_output_file(json_path, "--json")
    if db:
        check_db_url(settings.db_url, must_exist=db_must_exist)
    if chain:
        check_chain_url(settings.chain)
    if mqtt and settings.mqtt_url:
        check_broker_url(settings.mqtt_url, "GRIDLEDGER_MQTT_URL")


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
        ("share of metered import bought locally", f"{summary['local_share_of_import']:.1%}"),
        ("mean local price", "–" if price is None else f"{price / 1e6:.4f} EUR/kWh"),
        (
            "grid import tariff / feed-in",
            f"{summary['import_price_micro_per_kwh'] / 1e6:.4f} / "
            f"{summary['feed_in_price_micro_per_kwh'] / 1e6:.4f} EUR/kWh",
        ),
        ("community cost, grid only", f"{summary['baseline_cost_micro'] / 1e6:,.2f} EUR"),
        ("community cost, with the market", f"{summary['market_cost_micro'] / 1e6:,.2f} EUR"),
        ("community savings", f"{summary['community_savings_micro'] / 1e6:,.2f} EUR"),
        (
            "verifiers (quorum): attested / disputed",
            f"{summary['verifiers']} ({summary['quorum']}): {summary['attested_intervals']} / "
            f"{summary['disputed_intervals']}",
        ),
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


# -- market ---------------------------------------------------------------------------------
@market_app.command("clear")
def market_clear(
    orders: Path = typer.Option(
        ...,
        "--orders",
        help="CSV with columns id,side,energy_wh and a price: price_per_kwh (0.25), "
        "price_micro_per_kwh (250000), or price (micro-units unless --price-unit per_kwh); "
        "',' or ';' separated.",
    ),
    mechanism: str = typer.Option("uniform", help="uniform | pay-as-bid | cda"),
    grid_fee: int = typer.Option(0, help="Grid fee in micro-units per kWh, paid by buyers."),
    price_unit: str | None = typer.Option(
        None, help="Unit of a bare 'price' column: micro (default) or per_kwh."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Clear an order book from a CSV file and print the price, the volume and the trades."""
    from gridledger.errors import ValidationError
    from gridledger.iotools.csvbook import read_book_csv
    from gridledger.market import clear
    from gridledger.web.units import energy_text, price_text

    with friendly_errors():
        if price_unit not in (None, "micro", "per_kwh"):
            raise ValidationError("--price-unit", f"must be micro or per_kwh, got {price_unit!r}")
        unit: Literal["micro", "per_kwh"] | None = (
            None if price_unit is None else "micro" if price_unit == "micro" else "per_kwh"
        )
        result = clear(read_book_csv(orders, unit), mechanism, grid_fee).to_dict()
    if as_json:
        emit_json(result)
        return
    currency = load_settings().currency
    out.print(
        f"mechanism {result['mechanism']}: {result['n_orders']} orders, "
        f"{result['n_trades']} trades, {energy_text(result['cleared_energy_wh'])} cleared, "
        f"price {price_text(result['clearing_price_micro_per_kwh'], currency)}"
    )
    table = Table("buyer", "seller", "energy", "price", "grid fee")
    for t in result["trades"][:50]:
        table.add_row(
            str(t["buy_id"]),
            str(t["sell_id"]),
            energy_text(t["energy_wh"]),
            price_text(t["price_micro_per_kwh"], currency),
            price_text(t["fee_micro_per_kwh"], currency),
        )
    out.print(table)


# -- meter data -----------------------------------------------------------------------------
@meter_app.command("import")
def meter_import(
    file: Path = typer.Argument(..., help="A Green Button (NAESB ESPI Atom XML) file."),
    meter: str = typer.Option("0x" + "00" * 20, help="Meter address the readings belong to."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the readings as JSON here."),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Leave out readings of zero or negative duration, or overlapping the one before "
        "(they are reported), instead of refusing the file.",
    ),
) -> None:
    """Read Green Button interval data as gridledger readings (unsigned) and summarise it.

    Readings are put on one regular grid (the file's most common duration); longer ones, such
    as a utility's daylight-saving 2-hour reading, are split in proportion to time and reported.
    """
    import dataclasses

    from gridledger.iotools.greenbutton import import_greenbutton, to_readings
    from gridledger.preflight import check_address, check_output_file

    with friendly_errors():
        meter = check_address(meter, "--meter")
        if out_path is not None:
            check_output_file(out_path)
        timezone = load_settings().timezone
        intervals, summary = import_greenbutton(file, skip_invalid=skip_invalid)
        readings = to_readings(intervals, meter)
    out.print(f"{file.name}:", highlight=False)
    for line in summary.lines(timezone):
        out.print(f"  {line}", highlight=False, soft_wrap=True)
    if out_path is not None:
        with friendly_errors():
            emit_json([dataclasses.asdict(r) for r in readings], out_path)


@meter_app.command("export")
def meter_export(
    meter: str = typer.Option(..., help="Meter address whose stored readings to export."),
    fmt: str = typer.Option("greenbutton", "--format", help="Only 'greenbutton' for now."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
    out_path: Path | None = typer.Option(None, "--out", help="File to write (default: stdout)."),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="An unknown meter gives an empty feed instead of an error."
    ),
) -> None:
    """Write a meter's stored readings as a Green Button file."""
    from gridledger.errors import NotFoundError, ValidationError
    from gridledger.iotools.greenbutton import from_readings, write_greenbutton
    from gridledger.preflight import atomic_write, check_address, check_output_file
    from gridledger.store import Store

    with friendly_errors(), ExitStack() as cleanup:
        if fmt != "greenbutton":
            raise ValidationError("--format", f"only 'greenbutton' is supported, got {fmt!r}")
        meter = check_address(meter, "--meter")
        if out_path is not None:
            check_output_file(out_path)
        settings = load_settings({"db_url": db})
        preflight(settings, db=True, db_must_exist=True)
        store = cleanup.enter_context(closing(Store.open(settings.db_url)))
        if not allow_empty and meter not in store.meters_by_address([meter]):
            raise NotFoundError(
                f"--meter: {meter} is not registered in {store.url}; "
                "pass --allow-empty for an empty feed"
            )
        stored = store.readings_of_meter(meter)
        data = write_greenbutton(from_readings(s.reading for s in stored))
        if out_path is None:
            sys.stdout.buffer.write(data)
        else:
            atomic_write(out_path, data)
            console.print(f"wrote {len(stored):,} readings to {out_path}")


@meter_app.command("simulate")
def meter_simulate(
    meters: int = typer.Option(
        10, "--meters", min=1, help="Simulated meters (SimBench households)."
    ),
    via: str = typer.Option("http", help="http | mqtt"),
    url: str = typer.Option("http://127.0.0.1:8000", help="The node's URL, or mqtt://host:port."),
    api_url: str | None = typer.Option(None, help="The node's HTTP URL when --via mqtt."),
    intervals: int = typer.Option(1, min=1, help="Market intervals to send readings for."),
    operator_key: str | None = typer.Option(
        None, help="Hex key of the node's operator, to register the meters first."
    ),
    seed: int = typer.Option(0),
) -> None:
    """Send signed readings from simulated smart meters to a running node (gridledger node)."""
    from gridledger.errors import ValidationError
    from gridledger.metering.simulate import simulate_meters
    from gridledger.preflight import check_broker_url, check_node_url

    with friendly_errors():
        if via not in ("http", "mqtt"):
            raise ValidationError("--via", f"must be 'http' or 'mqtt', got {via!r}")
        if via == "http":
            check_node_url(url)
        else:
            check_broker_url(url)
            if api_url is None:
                raise ValidationError("--api-url", "--via mqtt needs the node's HTTP URL too")
            check_node_url(api_url, "--api-url")
        key = operator_key_bytes(operator_key)
        transport: Literal["http", "mqtt"] = "http" if via == "http" else "mqtt"
        with console.status(f"{meters} meters sending {intervals} interval(s) via {via}…"):
            report = simulate_meters(
                meters,
                transport,
                url,
                intervals=intervals,
                api_url=api_url,
                operator_key=key,
                seed=seed,
            )
    emit_json(report.to_json())


def operator_key_bytes(hex_key: str | None) -> bytes | None:
    from gridledger.errors import ValidationError

    if not hex_key:
        return None
    try:
        key = bytes.fromhex(hex_key.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValidationError("--operator-key", "must be 32 bytes as 64 hex digits")
    return key


# -- benchmarks -----------------------------------------------------------------------------
@bench_app.command("market")
def bench_market_command(
    orders: int = typer.Option(1_000_000, min=2, help="Orders in the random book."),
    pymarket_orders: int = typer.Option(10_000, help="Orders for the pymarket baseline (0: skip)."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Uniform-price clearing vs numpy's bare sort of the same prices (and vs pymarket)."""
    import importlib.util

    from gridledger.market.bench import bench_market

    if pymarket_orders and importlib.util.find_spec("pymarket") is None:
        fail(
            "pymarket (the baseline) is not installed: pip install 'gridledger[dev]', "
            "or pass --pymarket-orders 0 to skip it"
        )
    with friendly_errors(), console.status(f"clearing {orders:,} orders…"):
        report = bench_market(orders, seed, pymarket_orders=pymarket_orders or None)
    emit_json(report) if as_json else out.print(report)


@bench_app.command("chain")
def bench_chain_command(
    participants: int = typer.Option(1_000, min=2, help="Participants in one interval."),
    chain: str = typer.Option("memory", help="'memory' or a JSON-RPC URL (e.g. an anvil node)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Settlement gas per trade vs a per-trade baseline; a 10,000-participant interval vs 30M."""
    from gridledger.ledger.bench import bench_chain

    with friendly_errors():
        preflight(load_settings({"chain": chain}), chain=True)
        with console.status(f"settling {participants:,} participants on-chain…"):
            report = bench_chain(participants, chain)
    emit_json(report) if as_json else out.print(report)


@bench_app.command("verifier")
def bench_verifier_command(
    participants: int = typer.Option(1_000, min=2, help="Participants in the interval."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """CPU a verifier spends re-executing one interval vs the operator's own work on it."""
    from gridledger.verifier.bench import bench_verifier

    with friendly_errors(), console.status(f"re-executing {participants:,} participants…"):
        report = bench_verifier(participants)
    emit_json(report) if as_json else out.print(report)


@bench_app.command("ingest")
def bench_ingest_command(
    readings: int = typer.Option(20_000, min=1, help="Signed readings to ingest."),
    db: str | None = typer.Option(None, help="Database URL (default: a temporary SQLite file)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Readings accepted per second end to end vs bare signature recoveries per second."""
    import tempfile

    from gridledger.metering.bench import bench_ingest

    with friendly_errors(), tempfile.TemporaryDirectory() as tmp:
        if db is not None:
            preflight(load_settings({"db_url": db}), db=True)
        with console.status(f"ingesting {readings:,} signed readings…"):
            report = bench_ingest(readings, db or f"sqlite:///{tmp}/bench.sqlite")
    emit_json(report) if as_json else out.print(report)


@bench_app.command("node")
def bench_node_command(
    households: int = typer.Option(1_000, min=1, help="Households (one meter each)."),
    intervals: int = typer.Option(8, min=1, help="Market intervals to trade and settle."),
    speed: int = typer.Option(60, min=1, help="Market seconds per wall second (60: 15 s)."),
    via: str = typer.Option("http", help="How meters send readings: http | mqtt."),
    chain: str | None = typer.Option(
        None, help="EVM JSON-RPC URL (default: anvil started here, else the embedded EVM)."
    ),
    db: str | None = typer.Option(None, help="A fresh database URL (default: temp SQLite)."),
    settle_grace_s: int = typer.Option(300, min=0, help="Market s meters have after an interval."),
    generators: int = typer.Option(2, min=1, help="Load generator processes."),
    profile: Path | None = typer.Option(None, help="Write the node's cProfile (.pstats) here."),
    order_spread: float = typer.Option(
        0.0, help="Share of each order window the orders spread over (0: all at its opening)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The live node under N households and meters: throughput, latency, gas, RSS, exactness."""
    from gridledger.node.bench import BenchConfig, bench_node, top_of_profile

    config = BenchConfig(
        households,
        intervals,
        speed,
        via,
        chain,
        db,
        settle_grace_s,
        generators,
        profile,
        order_spread=order_spread,
    )
    with friendly_errors():
        if db is not None:
            preflight(load_settings({"db_url": db}), db=True)
        if chain is not None:
            preflight(load_settings({"chain": chain}), chain=True)
        with steps_bar() as advance:
            report = bench_node(config, advance)
    if profile is not None and profile.exists():
        console.print(top_of_profile(profile, 20), highlight=False, markup=False)
    emit_json(report) if as_json else out.print(report)


@bench_app.command("sim")
def bench_sim_command(
    scenario: Path = typer.Option(..., help="A scenario TOML file (see scenarios/)."),
    compare_days: int = typer.Option(
        2, min=0, help="Days run on both power flow engines to compare KPIs (0: skip)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A scenario run: wall, CPU, peak RSS, breakdown; KPIs vs the pandapower engine."""
    from gridledger.sim.bench import bench_sim

    with friendly_errors(), console.status(f"running {scenario}…"):
        report = bench_sim(scenario, compare_days)
    emit_json(report) if as_json else out.print(report)


# -- statements -----------------------------------------------------------------------------
@app.command()
def statement(
    participant: str = typer.Option(..., help="The participant's address."),
    month: str | None = typer.Option(None, help="YYYY-MM (UTC); default: everything."),
    verify: bool = typer.Option(False, "--verify", help="Check every line against the chain."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the statement as JSON."),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="An unknown participant gives an empty statement."
    ),
) -> None:
    """A participant's statement: orders, trades, readings and payments, each provable on-chain."""
    from gridledger.errors import NotFoundError, ValidationError
    from gridledger.ledger import Ledger
    from gridledger.node import load_deployment, supplier_address
    from gridledger.node.statements import build_statement, month_range_s, verify_on_chain
    from gridledger.preflight import check_address
    from gridledger.settlement import Tariffs
    from gridledger.store import Store

    with friendly_errors(), ExitStack() as cleanup:
        participant = check_address(participant, "--participant")
        settings = load_settings({"db_url": db})
        preflight(settings, db=True, db_must_exist=True)
        store = cleanup.enter_context(closing(Store.open(settings.db_url)))
        if not allow_empty and participant not in {p.address for p in store.participants()}:
            raise NotFoundError(
                f"--participant: {participant} is not registered in {store.url}; "
                "pass --allow-empty for an empty statement"
            )
        from_s, to_s = month_range_s(month) if month else (0, 2**62)
        built = build_statement(store, participant, from_s, to_s, settings.claim_period_intervals)
        log_operator_read(store, participant, "statement")
        if as_json:
            emit_json(statement_json(built))
        else:
            out.print(statement_table(built, settings.currency, settings.timezone))
        if not verify:
            return
        chain, deployment = load_deployment(store)
        if chain == "memory":
            raise ValidationError(
                "chain",
                "the embedded chain ended with the process that ran "
                "it: run the demo or node with --chain URL to verify later",
            )
        ledger = Ledger.attach(chain, deployment)
        tariffs = Tariffs(settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh)
        problems = verify_on_chain(ledger, store, built, tariffs, supplier_address())
    for problem in problems:
        console.print(f"[bold red]FAILS[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(
        f"[bold green]verified[/] {len(built.intervals)} intervals against chain "
        f"{deployment.chain_id} (market {deployment.market})"
    )


def statement_table(built: Any, currency: str = "EUR", timezone: str = "Europe/Berlin") -> Table:
    from gridledger.web.units import energy_text, local_time_text, net_text, price_text

    table = Table(
        "interval start",
        "kind",
        "energy",
        "price",
        "money",
        "counterparty",
        title=f"statement of {built.participant}",
    )
    for interval in built.intervals:
        when = local_time_text(interval.interval_start_s, timezone)
        for line in interval.lines:
            table.add_row(
                when,
                line.kind,
                energy_text(line.energy_wh),
                price_text(line.price_micro_per_kwh, currency),
                net_text(line.amount_micro, currency),
                line.counterparty[:10] + "…",
            )
    table.caption = (
        f"in total {net_text(built.total_micro, currency)} over {len(built.intervals)} intervals"
    )
    return table


def statement_json(built: Any) -> dict[str, Any]:
    import dataclasses

    def item(proven: Any) -> dict[str, Any]:
        proof = ["0x" + p.hex() for p in proven.proof]
        return {**dataclasses.asdict(proven.item), "proof": proof, "salt": "0x" + proven.salt.hex()}

    return {
        "participant": built.participant,
        "from_s": built.from_s,
        "to_s": built.to_s,
        "total_micro": built.total_micro,
        "intervals": [
            {
                "interval_start_s": i.interval_start_s,
                "delta_micro": i.delta_micro,
                "orders": [item(o) for o in i.orders],
                "trades": [item(t) for t in i.trades],
                "readings": [item(r) for r in i.readings],
                "lines": [dataclasses.asdict(line) for line in i.lines],
            }
            for i in built.intervals
        ],
    }


# -- privacy --------------------------------------------------------------------------------
def log_operator_read(store: Any, subject: str, what: str) -> None:
    """The operator's own reads at the command line go to the access log too."""
    import getpass

    from gridledger.privacy.access_log import record_access

    reader = f"cli:{getpass.getuser()}"[:64]
    record_access(store, reader=reader, reader_role="operator", subject=subject, what=what)


@app.command("access-log")
def access_log_command(
    participant: str = typer.Option(..., help="Whose data: the participant's address."),
    verify: bool = typer.Option(False, "--verify", help="Check each day's entries on-chain."),
    commit: bool = typer.Option(False, "--commit", help="Operator: commit finished days."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the log as JSON."),
) -> None:
    """Who read a participant's data, when and under which consent; --verify checks the list
    against the daily roots on-chain."""
    from gridledger.privacy import commands
    from gridledger.store import Store

    with friendly_errors():
        store = Store.open(load_settings({"db_url": db}).db_url)
        if commit:
            out.print(commands.commit_access_log(store))
        report = commands.access_log_report(store, participant, verify)
        if as_json:
            emit_json(commands.report_json(report))
        else:
            for row in commands.report_json(report)["committed"]:
                out.print(
                    f"{row['at']}  {row['reader']} ({row['reader_role']}) read "
                    f"{row['what']}, consent {row['consent_id'] or '-'}"
                )
            pending = len(report.uncommitted)
            out.print(f"{len(report.entries)} committed entries, {pending} from today")
        if report.problems:
            fail("; ".join(report.problems))
        if verify:
            out.print("verified: every committed entry proves into its day's on-chain root")


consent_app = typer.Typer(help="Share your data with a grantee, revocably.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
KEY_OPTION = typer.Option(..., "--key", help="Your key: a keystore v3 file or a hex key file.")


@consent_app.command("grant")
def consent_grant_command(
    key: Path = KEY_OPTION,
    grantee: str = typer.Option(..., help="Who may read: the grantee's address."),
    scope: list[str] = typer.Option(..., help="readings, statements or aggregates (repeat)."),
    data_from: str = typer.Option(..., "--from", help="First moment of data (date or unix s)."),
    data_to: str = typer.Option(..., "--to", help="End of the data (date or unix s)."),
    expires: str = typer.Option(..., help="When the grant ends (date or unix s)."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
) -> None:
    """Let a grantee read your data of some scopes over a period, until an expiry."""
    from gridledger.privacy import commands
    from gridledger.store import Store
    from gridledger.verifier.keyfile import load_key_file

    with friendly_errors():
        store = Store.open(load_settings({"db_url": db}).db_url)
        emit_json(
            commands.consent_grant(
                store,
                load_key_file(key),
                grantee,
                scope,
                commands.parse_time_s(data_from, "--from"),
                commands.parse_time_s(data_to, "--to"),
                commands.parse_time_s(expires, "--expires"),
            )
        )


@consent_app.command("revoke")
def consent_revoke_command(
    key: Path = KEY_OPTION,
    grant_id: int = typer.Option(..., "--id", min=1, help="The grant to revoke."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
) -> None:
    """Revoke one of your grants; the grantee loses access at once."""
    from gridledger.privacy import commands
    from gridledger.store import Store
    from gridledger.verifier.keyfile import load_key_file

    with friendly_errors():
        store = Store.open(load_settings({"db_url": db}).db_url)
        emit_json(commands.consent_revoke(store, load_key_file(key), grant_id))


@consent_app.command("list")
def consent_list_command(
    address: str = typer.Option(..., "--participant", help="Grants this address gave or got."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
) -> None:
    """Every grant a participant gave or received, as the Consent contract holds it."""
    from gridledger.privacy import commands
    from gridledger.store import Store

    with friendly_errors():
        store = Store.open(load_settings({"db_url": db}).db_url)
        emit_json(commands.consent_list(store, address))


# -- the node -------------------------------------------------------------------------------
@app.command()
def node(
    config: Path | None = typer.Option(None, "--config", help="TOML settings file."),
    chain: str | None = typer.Option(None, help="'memory' or an EVM JSON-RPC URL."),
    db: str | None = typer.Option(None, help="Database URL."),
    speed: int | None = typer.Option(
        None, help="Market seconds per wall second (60: 15 s/interval)."
    ),
    host: str | None = typer.Option(None, help="HTTP host (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="HTTP port (default 8000)."),
    check: bool = typer.Option(
        False, "--check", help="Rebuild the market state from the chain, compare with the store."
    ),
    openadr_port: int | None = typer.Option(
        None, "--openadr-port", help="Run the DSO's OpenADR 2.0b VTN on this port (0: none)."
    ),
) -> None:
    """Run the market live: gateway, scheduler, settlement, REST API and dashboard."""
    from gridledger.node.runner import node_settings, run_node
    from gridledger.telemetry import configure_json_logging

    with friendly_errors():
        if config is not None and not config.is_file():
            fail(f"--config: no settings file at {config}")
        settings = node_settings(config, chain, db, speed, host, port)
        settings = settings.replace(openadr_port=openadr_port)
        if check:
            node_check(settings)
            return
        preflight(settings, chain=True, db=True, mqtt=True)
        configure_json_logging()
        run_node(settings)


@app.command()
def ven(
    vtn_url: str = typer.Option(
        ..., "--vtn-url", help="The DSO's VTN, e.g. http://127.0.0.1:8081/OpenADR2/Simple/2.0b"
    ),
    key_file: Path = typer.Option(
        ..., "--key-file", help="The household's key (hex or keystore): its address is the VEN."
    ),
    household: Path | None = typer.Option(
        None, "--household", help="TOML of the flexible assets in kWh and kW (docs/openadr.md)."
    ),
    passphrase_file: Path | None = typer.Option(None, help="Passphrase of a keystore key file."),
    config: Path | None = typer.Option(None, "--config", help="TOML settings file."),
) -> None:
    """Run one household's OpenADR VEN: answer the DSO's flexibility events, report power."""
    from gridledger.openadr.process import run_ven

    with friendly_errors():
        settings = load_settings(config_path=config)
        run_ven(settings, vtn_url, key_file, household, passphrase_file, say=_say_flushed)


def _say_flushed(line: str) -> None:
    print(line, flush=True)  # a supervisor reading the pipe sees each answer as it happens


def node_check(settings: Any) -> None:
    from gridledger.stack.maintenance import check_node

    preflight(settings, chain=True, db=True, db_must_exist=True)
    with console.status("rebuilding the market state from the chain…"):
        report = check_node(settings)
    out.print(
        f"checked {report.intervals_checked} intervals, {report.participants_checked} "
        f"participants, {report.meters_checked} meters against the chain"
    )
    for difference in report.differences:
        console.print(f"[red]differs:[/] {difference}", soft_wrap=True, highlight=False)
    if not report.ok:
        fail(f"{len(report.differences)} difference(s) between the store and the chain")
    out.print("the store agrees with the chain")


# Pairs with a node run with verifier_mode = "remote" (docs/trust-model.md).
@app.command()
def verifier(
    chain: str = typer.Option(..., help="EVM JSON-RPC URL of the market's chain."),
    operator_url: str = typer.Option(..., help="Base URL of the operator node's API."),
    key_file: Path = typer.Option(..., help="This verifier's key: hex, or a keystore file."),
    db: str | None = typer.Option(None, help="Database URL for this verifier's own state."),
    evidence: str | None = typer.Option(None, help="Evidence contract that records disputes."),
    passphrase_file: Path | None = typer.Option(None, help="Passphrase of a keystore key file."),
    feeder_meter: str | None = typer.Option(
        None, help="Also detect: judge each verified interval against this feeder meter."
    ),
) -> None:
    """Re-execute every interval the operator commits; attest it, or record a dispute.
    With --feeder-meter it is also a detector node (docs/security.md)."""
    import logging

    from gridledger.verifier.process import run_verifier, verifier_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with friendly_errors():
        settings = load_settings({"chain": chain})
        preflight(settings, chain=True)
        config = verifier_config(
            chain, operator_url, key_file, db, evidence, passphrase_file, settings, feeder_meter
        )
        run_verifier(config)


# Pairs with a node run with evidence_detectors = "<addresses>" (docs/security.md).
@app.command()
def detector(
    node_url: str = typer.Option(..., help="Base URL of the node's API."),
    key_file: Path = typer.Option(..., help="This detector's key: hex, or a keystore file."),
    chain: str | None = typer.Option(None, help="EVM JSON-RPC URL; without it, files only."),
    feeder_meter: str | None = typer.Option(None, help="Address of the feeder (substation) meter."),
    learn_traffic_s: int = typer.Option(0, min=0, help="Seconds of clean traffic to learn from."),
    evidence_dir: Path | None = typer.Option(None, help="Where evidence files are kept."),
    passphrase_file: Path | None = typer.Option(None, help="Passphrase of a keystore key file."),
) -> None:
    """Detect live: judge every interval's signed readings and the node's traffic; sign and
    submit findings to the Evidence contract (confirmed at k distinct detectors)."""
    import logging

    from gridledger.security.live import detector_config, run_detector

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with friendly_errors():
        if chain is not None:
            preflight(load_settings({"chain": chain}), chain=True)
        config = detector_config(
            node_url, key_file, chain, feeder_meter, learn_traffic_s, evidence_dir, passphrase_file
        )
        run_detector(config)


# -- community simulation -------------------------------------------------------------------
@app.command()
def sim(
    scenario: Path = typer.Argument(..., help="A scenario TOML file (see scenarios/)."),
    chain: str | None = typer.Option(None, help="'off' (no chain) or 'memory' (embedded EVM)."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Folder for summary.json, report.html."
    ),
    powerflow: str | None = typer.Option(
        None, help="'power-grid-model' (default) or 'pandapower': the power flow engine."
    ),
) -> None:
    """Run a community scenario: market, power flow and settlement each interval; KPIs, plots."""
    import datetime as dt

    from gridledger.preflight import check_output_dir

    with friendly_errors():
        if out_dir is not None:
            check_output_dir(out_dir)
        from gridledger.sim import load_scenario, run_scenario  # slow to import: after the check

        loaded = load_scenario(scenario)
        if chain is not None:
            loaded = loaded.replace(chain=chain)
        if powerflow is not None:
            loaded = loaded.replace(powerflow=powerflow)
        recorder = None
        if loaded.chain == "memory":
            from gridledger.ledger import Ledger
            from gridledger.sim.chain import LedgerRecorder
            from gridledger.verifier.panel import DEV_QUORUM, dev_verifier_addresses

            start = dt.datetime.combine(loaded.start_date, dt.time(), dt.UTC)
            ledger = Ledger.deploy("memory", verifiers=dev_verifier_addresses(), quorum=DEV_QUORUM)
            recorder = LedgerRecorder(ledger, int(start.timestamp()))
        with progress_bar(loaded.name, loaded.n_intervals) as advance:
            result = run_scenario(
                loaded, lambda done, _total: advance(done), out_dir=out_dir, recorder=recorder
            )
    table = Table("KPI", "value", "what it says", title=f"scenario {loaded.name}")
    for definition, shown in result.kpis.rows():
        table.add_row(definition.title, shown, definition.explanation)
    out.print(table)
    console.print(f"wrote {result.json_path} and {result.html_path}")


@app.command()
def sweep(
    sweep_file: Path = typer.Argument(..., help="A sweep TOML file (see scenarios/sweep-*.toml)."),
    scheduler: str | None = typer.Option(
        None, help="A running Dask scheduler, e.g. tcp://HOST:8786 (default: a local cluster)."
    ),
    workers: int | None = typer.Option(
        None,
        min=1,
        help="Local worker processes (default: one per core); with --scheduler: wait for N.",
    ),
    out_dir: Path = typer.Option(
        ..., "--out", help="Folder for cells/, results.parquet, report.html."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run every combination of a sweep's scenario parameters on Dask; Parquet + HTML comparison."""
    from gridledger.preflight import check_output_dir

    with friendly_errors():
        check_output_dir(out_dir)
        from gridledger.sim.sweep import load_sweep, outcome_json, outcome_text, run_sweep

        plan = load_sweep(sweep_file)
        with progress_bar(f"sweep {plan.name}", len(plan.cells)) as advance:
            outcome = run_sweep(
                plan,
                out_dir,
                scheduler=scheduler,
                workers=workers,
                progress=lambda done, _total, _what: advance(done),
            )
    if as_json:
        emit_json(outcome_json(outcome))
    else:
        out.print(outcome_text(outcome))
        for label, error in outcome.failed:
            console.print(f"[red]failed[/] {label}: {error}", soft_wrap=True, highlight=False)
        console.print(f"wrote {outcome.parquet_path} and {outcome.html_path}")
    if outcome.failed:
        raise typer.Exit(1)


# -- security -------------------------------------------------------------------------------
security_app = typer.Typer(help="Anomaly and intrusion detection.", no_args_is_help=True)
app.add_typer(security_app, name="security")


@security_app.command("eval")
def security_eval(
    seed: int = typer.Option(0, help="Seed of the injected attacks."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Train, choose operating points on validation, attack test weeks: P/R/F1, delay, FP."""
    from gridledger.security.attacks import EVAL_ATTACKS
    from gridledger.security.evaluation import Split, evaluate, format_report

    steps = Split().steps(len(EVAL_ATTACKS))
    with friendly_errors(), progress_bar("security eval", steps) as advance:
        report = evaluate(seed=seed, progress=lambda done, _total, _what: advance(done))
    if as_json:
        emit_json(report)
    else:
        out.print(format_report(report))


# -- the database ---------------------------------------------------------------------------
store_app = typer.Typer(help="The node's database: backup and restore.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("backup")
def store_backup(
    path: Path = typer.Argument(..., help="Backup file to write (gzip JSON lines)."),
    db: str | None = typer.Option(None, help="Database URL (default: the configured one)."),
) -> None:
    """Write the whole database (SQLite or PostgreSQL) to one file, from one snapshot."""
    from gridledger.stack.maintenance import backup_database

    with friendly_errors():
        settings = load_settings({"db_url": db})
        preflight(settings, db=True, db_must_exist=True)
        summary = backup_database(settings, path)
    out.print(
        f"wrote {summary.path}: {summary.rows:,} rows in {len(summary.tables)} tables",
        soft_wrap=True,
        highlight=False,
    )


@store_app.command("restore")
def store_restore(
    path: Path = typer.Argument(..., help="A file written by gridledger store backup."),
    db: str | None = typer.Option(None, help="Database URL of an empty database."),
) -> None:
    """Load a backup into an empty database, all or nothing."""
    from gridledger.stack.maintenance import restore_database

    with friendly_errors():
        settings = load_settings({"db_url": db})
        preflight(settings, db=True)
        summary = restore_database(settings, path)
    out.print(
        f"restored {summary.rows:,} rows in {len(summary.tables)} tables from {path}",
        soft_wrap=True,
        highlight=False,
    )


# -- keys -----------------------------------------------------------------------------------
keys_app = typer.Typer(help="Encrypted signing keys (keystore v3 files).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
KEYSTORE_DIR = Path(".gridledger/keystore")


@keys_app.command("new")
def keys_new(
    keystore: Path = typer.Option(KEYSTORE_DIR, help="Folder of the keystore files."),
    passphrase_file: Path | None = typer.Option(None, help="File holding the passphrase."),
) -> None:
    """Create a random key and store it encrypted; prints its address and file."""
    from gridledger.keys import new_key, read_passphrase

    with friendly_errors():
        passphrase = read_passphrase(passphrase_file, "new passphrase: ", confirm=True)
        entry = new_key(keystore, passphrase)
    out.print(f"{entry.address}  {entry.path}", soft_wrap=True, highlight=False)


@keys_app.command("import")
def keys_import(
    key_file: Path = typer.Argument(..., help="File holding the hex private key to import."),
    keystore: Path = typer.Option(KEYSTORE_DIR, help="Folder of the keystore files."),
    passphrase_file: Path | None = typer.Option(None, help="File holding the passphrase."),
) -> None:
    """Encrypt an existing hex key into the keystore (then delete the plain file)."""
    from gridledger.keys import import_key, parse_hex_key, read_passphrase

    with friendly_errors():
        try:
            text = key_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"{key_file}: {exc.strerror}")
        key = parse_hex_key(text, str(key_file))
        passphrase = read_passphrase(passphrase_file, "new passphrase: ", confirm=True)
        entry = import_key(keystore, key, passphrase)
    out.print(f"{entry.address}  {entry.path}", soft_wrap=True, highlight=False)


@keys_app.command("list")
def keys_list(
    keystore: Path = typer.Option(KEYSTORE_DIR, help="Folder of the keystore files."),
) -> None:
    """The keys in the keystore: address and file (nothing is decrypted)."""
    from gridledger.keys import list_keys

    with friendly_errors():
        entries = list_keys(keystore)
    if not entries:
        console.print(f"no keys in {keystore}: create one with gridledger keys new")
    for entry in entries:
        out.print(f"{entry.address}  {entry.path}", soft_wrap=True, highlight=False)


# -- the local stack ------------------------------------------------------------------------
stack_app = typer.Typer(
    help="The whole local stack: PostgreSQL, mosquitto, anvil, the node.", no_args_is_help=True
)
app.add_typer(stack_app, name="stack")
STACK_DIR = Path(".gridledger/stack")


@stack_app.command("up")
def stack_up_command(
    folder: Path = typer.Option(STACK_DIR, "--dir", help="Folder for data, logs and pids."),
    ports_from: int | None = typer.Option(
        None, help="Use ports N..N+3 instead of 5432, 1883, 8545, 8000."
    ),
) -> None:
    """Start every service, wait until each is healthy, print the URLs."""
    from gridledger.stack.local import stack_up

    with friendly_errors(), console.status("starting PostgreSQL, mosquitto, anvil, the node…"):
        record = stack_up(folder, ports_from)
    for name, url in record["urls"].items():
        out.print(f"{name:10} {url}", soft_wrap=True, highlight=False)
    out.print(f"logs in {folder / 'logs'}; stop with gridledger stack down --dir {folder}")


@stack_app.command("status")
def stack_status_command(
    folder: Path = typer.Option(STACK_DIR, "--dir", help="Folder of the stack."),
) -> None:
    """Each service: running, healthy (exit code 1 if any is not)."""
    from gridledger.stack.local import stack_status

    with friendly_errors():
        status = stack_status(folder)
    for name, state in status.items():
        word = "healthy" if state["healthy"] else "running" if state["running"] else "stopped"
        out.print(f"{name:10} {word:22} pid {state['pid']}")
    if not all(s["healthy"] for s in status.values()):
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down_command(
    folder: Path = typer.Option(STACK_DIR, "--dir", help="Folder of the stack."),
) -> None:
    """Stop the node first, then anvil, mosquitto and PostgreSQL; the data stays in --dir."""
    from gridledger.stack.local import stack_down

    with friendly_errors():
        stopped = stack_down(folder)
    out.print("stopped " + (", ".join(stopped) if stopped else "nothing (no service ran)"))
