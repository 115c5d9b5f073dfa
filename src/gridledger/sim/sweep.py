"""Parameter sweeps: every combination of a few scenario keys, run on a Dask cluster.

A sweep file names a base scenario, the keys every cell changes (``[set]``) and the lists to
combine (``[vary]``), all in the scenario's own TOML layout (``community.pv_share``)::

    name = "pv-batteries"
    base = "congested-feeder.toml"      # relative to the sweep file
    [set]
    run.days = 1
    [vary]
    community.pv_share = [0.3, 0.6, 0.9]
    market.mechanism = ["uniform", "pay-as-bid"]

Every cell is checked when the file is read (a bad value names its key before any cluster
starts). Cells run on Dask distributed: a :class:`distributed.LocalCluster` of worker processes
by default, or an existing cluster by its scheduler address. The client (this process) writes
one JSON file per finished cell into ``<out>/cells/``, so a rerun skips finished cells and
retries failed ones; a cell that fails is recorded with its error and the others go on.
At the end every cell is combined into ``results.parquet`` (one row per cell: the varied
parameters, status, error, wall time and every KPI of :data:`KPI_DEFINITIONS`) and a
``report.html`` comparing them.

A cell is named by a hash of its whole scenario (not its position in the grid), so adding a
value to a list keeps every finished cell; changing the base scenario reruns them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import socket
import time
import tomllib
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridledger.errors import DataSourceError, ServiceUnavailable, ValidationError
from gridledger.preflight import atomic_write
from gridledger.sim.kpis import KPI_DEFINITIONS
from gridledger.sim.scenario import Scenario, scenario_from_mapping

if TYPE_CHECKING:
    from distributed import Client

MAX_CELLS = 10_000
CELLS_DIR = "cells"
RESULTS_FILE = "results.parquet"
REPORT_FILE = "report.html"
PROFILE_KEYS = ("profiles.load", "profiles.pv")  # paths, relative to the file that names them
# summary facts kept next to the KPIs in every row
FACT_KEYS = ("households", "intervals", "trades", "intervals_over_limits", "grid_aware_intervals")
SweepProgress = Callable[[int, int, str], None]  # (done, total, what just finished)


@dataclass(frozen=True)
class SweepCell:
    """One combination: its values of the varied keys and the scenario they make."""

    index: int
    cell_id: str
    params: tuple[tuple[str, Any], ...]  # (scenario TOML key, value), in [vary] order
    scenario: Scenario

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.params) or "base"


@dataclass(frozen=True)
class SweepPlan:
    name: str
    base: Path
    parameters: tuple[str, ...]  # the varied TOML keys
    cells: tuple[SweepCell, ...]


@dataclass(frozen=True)
class SweepOutcome:
    plan: SweepPlan
    rows: tuple[dict[str, Any], ...]  # one per cell, in plan order
    ran: int  # cells run now (finished or failed)
    skipped: int  # cells finished by an earlier run
    failed: tuple[tuple[str, str], ...]  # (cell label, error)
    parquet_path: Path
    html_path: Path
    wall_time_s: float
    cluster: str  # "none" when every cell was already finished
    workers: int = 0
    worker_names: tuple[str, ...] = field(default_factory=tuple)


# -- the sweep file --------------------------------------------------------------------------
def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"run": {"days": 1}}`` -> ``{"run.days": 1}`` (the scenario's TOML keys)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        if section:
            document.setdefault(section, {})[name] = value
        else:
            document[name] = value
    return document


def _resolve_profiles(flat: dict[str, Any], folder: Path) -> dict[str, Any]:
    for key in PROFILE_KEYS:
        value = flat.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            flat[key] = str(folder / value)
    return flat


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataSourceError(f"{what} {path}: cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(str(path), f"not valid TOML: {exc}") from exc


def _vary_lists(document: Mapping[str, Any]) -> dict[str, list[Any]]:
    vary = document.get("vary", {})
    if not isinstance(vary, Mapping) or not vary:
        raise ValidationError("vary", "needs at least one scenario key with a list of values")
    lists = _flatten(vary)
    for key, values in lists.items():
        if not isinstance(values, list) or not values:
            raise ValidationError(f"vary.{key}", f"must be a non-empty list, got {values!r}")
        if len({json.dumps(v, default=str) for v in values}) != len(values):
            raise ValidationError(f"vary.{key}", "lists a value twice")
    return lists


def cell_id_of(scenario: Scenario) -> str:
    """A cell's name: a hash of every scenario field but its name."""
    fields = {k: v for k, v in dataclasses.asdict(scenario).items() if k != "name"}
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _field_of(exc: ValidationError, fixed: Mapping[str, Any], cell: Mapping[str, Any]) -> str:
    if exc.field in cell:
        return f"vary.{exc.field}"
    return f"set.{exc.field}" if exc.field in fixed else f"base scenario: {exc.field}"


def plan_sweep(document: Mapping[str, Any], folder: Path) -> SweepPlan:
    """Every cell of a parsed sweep file (paths relative to ``folder``); checks every cell."""
    unknown = sorted(set(document) - {"name", "base", "set", "vary"})
    if unknown:
        raise ValidationError(unknown[0], "unknown sweep key; known: name, base, set, vary")
    base_name = document.get("base")
    if not isinstance(base_name, str):
        raise ValidationError("base", "must name the base scenario file (a string)")
    base = folder / base_name
    base_flat = _resolve_profiles(_flatten(_read_toml(base, "base scenario")), base.parent)
    fixed = document.get("set", {})
    if not isinstance(fixed, Mapping):
        raise ValidationError("set", "must be a table of scenario keys")
    fixed_flat = _resolve_profiles(_flatten(fixed), folder)
    lists = _vary_lists(document)
    name = str(document.get("name", base.stem))
    keys = tuple(lists)
    combos = list(itertools.product(*lists.values()))
    if len(combos) > MAX_CELLS:
        raise ValidationError("vary", f"{len(combos):,} cells; at most {MAX_CELLS:,} per sweep")
    cells = []
    for index, values in enumerate(combos):
        cell = _resolve_profiles(dict(zip(keys, values, strict=True)), folder)
        flat = base_flat | fixed_flat | cell | {"name": f"{name}-{index:04d}"}
        try:
            scenario = scenario_from_mapping(_nest(flat))
        except ValidationError as exc:
            raise ValidationError(_field_of(exc, fixed_flat, cell), exc.reason) from None
        params = tuple(zip(keys, values, strict=True))
        cells.append(SweepCell(index, cell_id_of(scenario), params, scenario))
    return SweepPlan(name, base, keys, tuple(cells))


def load_sweep(path: str | Path) -> SweepPlan:
    """Read and check a sweep file (missing file: DataSourceError; bad content: ValidationError)."""
    source = Path(path)
    document = _read_toml(source, "sweep")
    return plan_sweep({"name": source.stem, **document}, source.parent)


# -- one cell, on a worker ---------------------------------------------------------------------
def run_cell(scenario: Scenario) -> dict[str, Any]:
    """Run one scenario; never raises (an exception would have to unpickle on the client)."""
    began = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        from gridledger.sim.runner import run_scenario

        result = run_scenario(scenario, write_files=False)
    except Exception as exc:  # a failed cell is data, not a crash of the sweep
        return {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
            "wall_time_s": time.perf_counter() - began,
            "worker": worker,
        }
    return {
        "status": "ok",
        "error": "",
        "kpis": result.kpis.to_dict(),
        "facts": {k: result.summary.get(k) for k in FACT_KEYS},
        "wall_time_s": time.perf_counter() - began,
        "worker": worker,
    }


# -- the cluster -----------------------------------------------------------------------------
@contextmanager
def dask_client(
    scheduler: str | None, workers: int | None, connect_timeout_s: float = 10.0
) -> Iterator[Client]:
    """A client of ``scheduler`` (waiting for ``workers`` if given), else of a LocalCluster."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout_s)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ServiceUnavailable(
                f"--scheduler: no Dask scheduler answers at {scheduler} ({exc}); start one "
                "with `dask scheduler` or leave --scheduler out for a local cluster"
            ) from None
        try:
            if workers:
                client.wait_for_workers(workers, timeout=60)
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    n = workers or max(1, os.cpu_count() or 1)
    # non-daemonic workers: a long cell's settler starts a process of its own
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def _cell_file(folder: Path, cell: SweepCell, failed: bool = False) -> Path:
    return folder / CELLS_DIR / f"{cell.cell_id}{'.failed' if failed else ''}.json"


def _finished(folder: Path, cell: SweepCell) -> dict[str, Any] | None:
    path = _cell_file(folder, cell)
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or cut short: run the cell again
    return record if record.get("status") == "ok" else None


def _store(folder: Path, cell: SweepCell, record: dict[str, Any]) -> None:
    ok = record["status"] == "ok"
    stored = {"cell_id": cell.cell_id, "label": cell.label, **record}
    atomic_write(_cell_file(folder, cell, not ok), json.dumps(stored, indent=2, default=str))
    if ok:
        _cell_file(folder, cell, True).unlink(missing_ok=True)


def _run_on_cluster(
    client: Client,
    cells: Sequence[SweepCell],
    folder: Path,
    on_done: Callable[[SweepCell, dict[str, Any]], None],
) -> None:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]  # keys unique on a long-lived scheduler
    futures = {
        client.submit(run_cell, c.scenario, key=f"cell-{c.cell_id}-{run}", pure=False): c
        for c in cells
    }
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        cell = futures[future]
        if future.status == "finished":
            record = future.result()
        else:  # the worker died or the task could not run: still only this cell fails
            exc = future.exception()
            record = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "wall_time_s": math.nan,
                "worker": "",
            }
        _store(folder, cell, record)
        on_done(cell, record)


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: SweepProgress | None = None,
    client: Client | None = None,
    connect_timeout_s: float = 10.0,
) -> SweepOutcome:
    """Run every unfinished cell, then write ``results.parquet`` and ``report.html``."""
    began = time.perf_counter()
    folder = Path(out_dir)
    (folder / CELLS_DIR).mkdir(parents=True, exist_ok=True)
    records: dict[int, dict[str, Any]] = {}
    for cell in plan.cells:
        if (done := _finished(folder, cell)) is not None:
            records[cell.index] = {**done, "skipped": True}
    todo = [c for c in plan.cells if c.index not in records]
    total = len(plan.cells)
    if progress is not None:
        progress(len(records), total, "finished earlier")

    def on_done(cell: SweepCell, record: dict[str, Any]) -> None:
        records[cell.index] = {**record, "skipped": False}
        if progress is not None:
            progress(len(records), total, cell.label)

    cluster, n_workers, names = "none", 0, ()
    if todo:
        with _client_for(client, scheduler, workers, connect_timeout_s) as active:
            info = active.scheduler_info()
            cluster, n_workers = str(info.get("address", "")), len(info.get("workers", {}))
            names = tuple(sorted(info.get("workers", {})))
            _run_on_cluster(active, todo, folder, on_done)
    rows = tuple(_row(cell, records[cell.index]) for cell in plan.cells)
    wall = time.perf_counter() - began
    failed = tuple((r["label"], str(r["error"])) for r in rows if r["status"] != "ok")
    outcome = SweepOutcome(
        plan=plan,
        rows=rows,
        ran=len(todo),
        skipped=total - len(todo),
        failed=failed,
        parquet_path=folder / RESULTS_FILE,
        html_path=folder / REPORT_FILE,
        wall_time_s=wall,
        cluster=cluster,
        workers=n_workers,
        worker_names=names,
    )
    write_results(outcome)
    return outcome


@contextmanager
def _client_for(
    client: Client | None, scheduler: str | None, workers: int | None, timeout_s: float
) -> Iterator[Client]:
    if client is not None:
        yield client
        return
    with dask_client(scheduler, workers, timeout_s) as made:
        yield made


# -- results ---------------------------------------------------------------------------------
def _row(cell: SweepCell, record: Mapping[str, Any]) -> dict[str, Any]:
    kpis = record.get("kpis") or {}
    facts = record.get("facts") or {}
    row: dict[str, Any] = {"cell": cell.index, "cell_id": cell.cell_id, "label": cell.label}
    row |= dict(cell.params)
    row |= {
        "status": record["status"],
        "error": record.get("error", ""),
        "skipped": bool(record.get("skipped", False)),
        "wall_time_s": float(record.get("wall_time_s", math.nan)),
        "worker": record.get("worker", ""),
    }
    row |= {d.key: kpis.get(d.key, math.nan) for d in KPI_DEFINITIONS}
    row |= {key: facts.get(key, math.nan) for key in FACT_KEYS}
    return row


def results_frame(outcome: SweepOutcome) -> Any:
    """The rows as a pandas DataFrame (one row per cell)."""
    import pandas as pd

    frame = pd.DataFrame(list(outcome.rows))
    for key in (d.key for d in KPI_DEFINITIONS):
        frame[key] = pd.to_numeric(frame[key], errors="coerce")
    return frame


def write_results(outcome: SweepOutcome) -> None:
    """``results.parquet`` and ``report.html`` (each written whole, then renamed into place)."""
    import io

    from gridledger.sim.sweep_report import render_sweep_html

    buffer = io.BytesIO()
    results_frame(outcome).to_parquet(buffer, index=False)
    atomic_write(outcome.parquet_path, buffer.getvalue())
    atomic_write(outcome.html_path, render_sweep_html(outcome))


def outcome_json(outcome: SweepOutcome) -> dict[str, Any]:
    """What ``gridledger sweep --json`` prints."""
    return {
        "sweep": outcome.plan.name,
        "cells": len(outcome.rows),
        "ran": outcome.ran,
        "skipped": outcome.skipped,
        "failed": [{"cell": label, "error": error} for label, error in outcome.failed],
        "results": str(outcome.parquet_path),
        "report": str(outcome.html_path),
        "wall_time_s": round(outcome.wall_time_s, 2),
        "cluster": outcome.cluster,
        "workers": outcome.workers,
    }


def outcome_text(outcome: SweepOutcome) -> str:
    """One line for people: what ran, what was skipped, what failed, how long it took."""
    return (
        f"{len(outcome.rows)} cells: {outcome.ran} run now, {outcome.skipped} finished "
        f"earlier, {len(outcome.failed)} failed; {outcome.wall_time_s:.1f} s on "
        f"{outcome.workers} Dask workers"
    )
