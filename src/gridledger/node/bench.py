"""``gridledger bench node``: the live node under N households and N meters, measured.

Processes: the node (``python -m gridledger.node.bench node CONFIG``: the real ``Node`` and its
API, as ``gridledger node`` runs them, after enrolling the N households with the batched
registry and escrow calls), a few load generators (:mod:`gridledger.node.loadgen`, each with a
slice of the households and their meters), and, when the bench starts them itself, anvil and
mosquitto. The node's market clock is held still while it enrols and while the generators sign
in and pre-sign every order and reading (the warm-up, reported as ``presigned``); then the clock
runs at ``speed`` and M intervals are traded, metered and settled through the netting root.

What is measured: orders and readings accepted per second of their bursts, rejections by code,
the latency from each gate closure to the interval being cleared, committed on-chain and
settled (and from the moment settlement was due: interval end + grace), gas per interval, the
node's peak RSS and CPU seconds per interval (its verifier worker processes included), and the
exactness of every interval: stored readings equal the readings sent, the settlement amounts
sum to zero, and the chain holds exactly one settlement per interval.

With ``profile`` the node process runs cProfile on every thread and writes a ``.pstats`` file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from gridledger.errors import ConfigError, GridledgerError, ValidationError

Progress = Callable[[str, int, int], None]
BENCH_SEED = 0
DEPOSIT_MICRO = 200_000_000  # 200 gEUR per household: many intervals of imports
DEFAULT_GRACE_S = 300  # market seconds the meters have after an interval ends (5 s at speed 60)
STATUS_POLL_S = 0.25
MARKET_START_UTC_S = 10 * 3600  # accelerated runs trade from 10:00 UTC, when the PV sells
_REPO = Path(__file__).resolve().parents[3]
ANVIL_CANDIDATES = (
    _REPO / "contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    _REPO / "contracts/node_modules/.bin/anvil",
)
MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass(frozen=True)
class BenchConfig:
    households: int
    intervals: int
    speed: int = 60
    via: str = "http"
    chain: str | None = None  # None: anvil started here when installed, else the embedded EVM
    db_url: str | None = None  # None: a SQLite file in the work dir
    settle_grace_s: int = DEFAULT_GRACE_S
    generators: int = 2
    profile: Path | None = None
    order_spread: float = 0.0  # share of each order window the households' orders spread over
    workdir: Path | None = None

    def check(self) -> None:
        if self.households < 1:
            raise ValidationError("households", f"must be at least 1, got {self.households}")
        if self.intervals < 1:
            raise ValidationError("intervals", f"must be at least 1, got {self.intervals}")
        if self.speed < 1:
            raise ValidationError("speed", f"must be at least 1, got {self.speed}")
        if self.via not in ("http", "mqtt"):
            raise ValidationError("via", f"must be 'http' or 'mqtt', got {self.via!r}")
        if not 0.0 <= self.order_spread <= 0.9:
            raise ValidationError(
                "order_spread", f"must be between 0 and 0.9 of the window, got {self.order_spread}"
            )
        if self.generators < 1:
            raise ValidationError("generators", f"must be at least 1, got {self.generators}")


# -- helper servers -------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GridledgerError(f"{what} exited with code {proc.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise GridledgerError(f"{what}: nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def anvil_binary() -> Path | None:
    return next((p for p in ANVIL_CANDIDATES if p.exists()), None)


class Processes:
    """Every process the bench started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        proc = subprocess.Popen(args, stdout=kwargs.pop("stdout", out), stderr=out, **kwargs)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def start_anvil(procs: Processes, workdir: Path) -> str:
    binary = anvil_binary()
    assert binary is not None
    port = _free_port()
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    args += ["--chain-id", "31337", "--gas-limit", "60000000"]
    proc = procs.start(args, workdir / "anvil.log")
    _wait_for_port(port, proc, 30, "anvil")
    return f"http://127.0.0.1:{port}"


def start_mosquitto(procs: Processes, workdir: Path) -> str:
    if not MOSQUITTO.exists():
        raise ConfigError("--via mqtt: mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    from gridledger.metering.mqtt import BROKER_LIMITS

    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{BROKER_LIMITS}")
    proc = procs.start([str(MOSQUITTO), "-c", str(conf)], workdir / "mosquitto.log")
    _wait_for_port(port, proc, 20, "mosquitto")
    return f"mqtt://127.0.0.1:{port}"


# -- the node process -----------------------------------------------------------------------
class PausedClock:
    """Holds a node's market clock still (warm-up), then lets it run from an interval's start."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.frozen_at = time.time()
        clock.wall_s = lambda: self.frozen_at  # market time stands still

    def set_market_time(self, market_s: float) -> None:
        self.clock.origin_market_s, self.clock.origin_wall_s = market_s, self.frozen_at

    def resume(self) -> tuple[float, float]:
        """Run again from where it stood; returns (wall, market) at the restart."""
        now = time.time()
        market_s = self.clock.now()
        self.clock.origin_market_s, self.clock.origin_wall_s = market_s, now
        self.clock.wall_s = time.time
        return now, market_s


class EventLog:
    """Timestamps of the node's steps, one JSON line each (read by the bench afterwards)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a")
        self._lock = threading.Lock()

    def write(self, kind: str, **data: Any) -> None:
        with self._lock:
            self._file.write(json.dumps({"kind": kind, "wall_s": time.time(), **data}) + "\n")
            self._file.flush()


def _instrument(node: Any, events: EventLog) -> None:
    """Record when each gate closed, each commit was mined and each interval settled.

    The node's own objects are wrapped (not replaced): every call still does what it did.
    """
    hub, ledger = node.market.hub, node.ledger
    publish, commit = hub.publish, ledger.commit_interval

    def timed_publish(kind: str, data: dict[str, Any]) -> Any:
        if kind in ("gate_closed", "settled"):
            events.write(kind, interval_start_s=data["interval_start_s"])
        return publish(kind, data)

    def timed_commit(interval_start_s: int, *args: Any, **kwargs: Any) -> Any:
        result = commit(interval_start_s, *args, **kwargs)
        events.write("committed", interval_start_s=interval_start_s, gas_used=result.gas_used)
        return result

    hub.publish, ledger.commit_interval = timed_publish, timed_commit


class ThreadProfiles:
    """cProfile on the main thread and every thread started afterwards (API workers,
    scheduler), merged into one ``.pstats`` file at the end."""

    def __init__(self) -> None:
        import cProfile

        self._make = cProfile.Profile
        self.profiles: list[Any] = []
        self._lock = threading.Lock()
        main = self._new()
        threading.setprofile(self._bootstrap)
        main.enable()

    def _new(self) -> Any:
        profile = self._make()
        with self._lock:
            self.profiles.append(profile)
        return profile

    def _bootstrap(self, *_args: Any) -> None:
        # Called once in each new thread: from then on its own profiler replaces this hook.
        self._new().enable()

    def dump(self, path: Path) -> None:
        import pstats

        threading.setprofile(None)  # type: ignore[arg-type]
        for profile in self.profiles:
            profile.disable()
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran a profiled call
                continue
        stats.dump_stats(str(path))


def _enrolments(n_households: int, profiles: list[Any], deposit_micro: int) -> list[Any]:
    from gridledger.eip712 import address_of
    from gridledger.ledger import Role
    from gridledger.node.enrolment import Enrolment
    from gridledger.node.loadgen import METER_RATED_POWER_W, household_key, meter_key

    out = []
    for i in range(n_households):
        profile = profiles[i % len(profiles)]
        role = Role.PROSUMER if any(profile.pv_wh) else Role.CONSUMER
        out.append(
            Enrolment(
                address_of(household_key(i)),
                role,
                profile.bus,
                f"bench household {i}",
                address_of(meter_key(i)),
                METER_RATED_POWER_W,
                deposit_micro,
            )
        )
    return out


def node_main(config_path: Path) -> None:
    """The node process: open, enrol the households, hold the clock, serve until SIGTERM."""
    import faulthandler

    from gridledger.config import load_settings
    from gridledger.node.clock import interval_start_s
    from gridledger.node.enrolment import enrol_many
    from gridledger.node.loadgen import profiles_from_json
    from gridledger.node.runner import Node, run_node
    from gridledger.telemetry import configure_json_logging

    faulthandler.enable()  # a crash in native code still leaves its stack in node.log
    config = json.loads(config_path.read_text())
    workdir = Path(config["workdir"])
    profiler = ThreadProfiles() if config.get("profile") else None
    settings = load_settings(config["settings"])
    configure_json_logging()
    if settings.speed > 1:
        _start_market_at_midday(settings)
    node = Node.open(settings)
    paused = PausedClock(node.market.clock) if settings.speed > 1 else None
    say = _stdout_line
    enrolments = _enrolments(
        int(config["households"]),
        profiles_from_json(json.loads((workdir / "profiles.json").read_text())),
        int(config["deposit_micro"]),
    )
    _warm_grid_map(settings.grid_code)  # parsed now, not while the households sign in
    node.market.gateway.start_workers()  # else the first readings burst waits for the pool
    began = time.perf_counter()
    enrol_many(node.ledger, node.store, enrolments, lambda s, d, t: say("progress", s, d, t))
    enrol_s = time.perf_counter() - began
    events = EventLog(workdir / "node-events.jsonl")
    _instrument(node, events)
    if paused is not None:
        # The open interval gets its whole order window once the clock runs.
        length = settings.interval_length_s
        paused.set_market_time(interval_start_s(node.market.next_gate_s - 1, length) + 1)

    def resume(_sig: int, _frame: Any) -> None:
        # Real time (speed 1) never stood still: the signal only marks the timed part's start.
        # The handler is installed at every speed, since SIGUSR1's default action ends the
        # process (what ended every speed-1 run before).
        now = time.time()
        wall_s, market_s = paused.resume() if paused is not None else (now, node.market.clock.now())
        events.write("resumed", market_s=market_s, resumed_wall_s=wall_s)

    signal.signal(signal.SIGUSR1, resume)
    threading.Timer(0.5, lambda: say("ready", round(enrol_s, 3))).start()
    run_node(settings, node)
    final = {"settle_events": _settle_events(node), "enrol_s": enrol_s}
    (workdir / "node-final.json").write_text(json.dumps(final))
    if profiler is not None:
        profiler.dump(Path(config["profile"]))


def _start_market_at_midday(settings: Any) -> None:
    """An accelerated market starts at 10:00 UTC today: the households' PV then sells and every
    interval has trades to settle (the wall clock's night would have none)."""
    from gridledger.node.meta import NodeMeta
    from gridledger.store import Store

    store = Store.open(settings.db_url)
    try:
        meta = NodeMeta(store)
        if meta.get_int("market_time_s") is None:
            day_s = int(time.time()) // 86_400 * 86_400
            meta.put(market_time_s=day_s + MARKET_START_UTC_S)
    finally:
        store.close()


def _warm_grid_map(grid_code: str) -> None:
    from gridledger.api._grid import grid_geometry

    # Cached: the node's own warm-up thread then returns at once. The map is optional (the
    # node logs why it is unavailable when it tries again).
    with contextlib.suppress(Exception):
        grid_geometry(grid_code)


def _settle_events(node: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in node.ledger.events():
        if event.name in ("IntervalSettled", "IntervalSettledByRoot"):
            key = str(event.args["intervalStartS"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def _stdout_line(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


# -- the orchestrator -----------------------------------------------------------------------
class LineReader:
    """Reads a child's stdout lines in a thread; ``progress`` lines go to the progress bar."""

    def __init__(self, proc: subprocess.Popen[bytes], progress: Progress, prefix: str) -> None:
        self.proc, self.progress, self.prefix = proc, progress, prefix
        self.lines: list[list[str]] = []
        self.counts: dict[str, tuple[int, int]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            words = raw.decode(errors="replace").split()
            if not words:
                continue
            if words[0] == "progress" and len(words) == 4:
                self.counts[words[1]] = (int(words[2]), int(words[3]))
                self.progress(self.prefix + words[1], int(words[2]), int(words[3]))
            else:
                self.lines.append(words)

    def seen(self, word: str) -> list[str] | None:
        return next((w for w in self.lines if w[0] == word), None)


def _wait_line(reader: LineReader, word: str, timeout_s: float, what: str, log: Path) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = reader.seen(word)
        if found is not None:
            return found
        if reader.proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise GridledgerError(f"{what} exited with code {reader.proc.returncode}: {tail}")
        time.sleep(0.05)
    raise GridledgerError(f"{what} did not say {word!r} within {timeout_s:.0f} s (see {log})")


class NodeSampler:
    """CPU seconds and resident memory of the node and its worker processes."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_rss_bytes = 0
        self.peak_tree_rss_bytes = 0

    def tree(self) -> list[Any]:
        import psutil

        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_s(self) -> float:
        import psutil

        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
        return total

    def sample(self) -> None:
        import psutil

        tree_rss = 0
        for p in self.tree():
            try:
                rss = p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            tree_rss += rss
            if p.pid == self.proc.pid:
                self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        self.peak_tree_rss_bytes = max(self.peak_tree_rss_bytes, tree_rss)

    def vm_hwm_bytes(self) -> int:
        """The kernel's peak resident size of the node process itself."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return self.peak_rss_bytes


def bench_node(config: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the bench (see the module docstring); returns the report."""
    config.check()
    report_progress: Progress = progress or (lambda _s, _d, _t: None)
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="gridledger-bench-node-"))
    workdir.mkdir(parents=True, exist_ok=True)
    procs = Processes()
    main = threading.current_thread() is threading.main_thread()
    # A SIGTERM raises SystemExit, so the finally below stops the processes; then the caller's
    # own handler is back.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main else None
    try:
        return _run(config, workdir, procs, report_progress)
    finally:
        procs.stop_all()
        if main:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(_sig: int, _frame: Any) -> None:
    raise SystemExit(143)


def _run(
    config: BenchConfig, workdir: Path, procs: Processes, progress: Progress
) -> dict[str, Any]:
    from gridledger.config import load_settings
    from gridledger.node.loadgen import build_profiles, profiles_to_json

    load_before = os.getloadavg()
    chain = config.chain
    if chain is None:
        chain = start_anvil(procs, workdir) if anvil_binary() is not None else "memory"
    db_url = config.db_url or f"sqlite:///{workdir / 'node.sqlite'}"
    mqtt_url = start_mosquitto(procs, workdir) if config.via == "mqtt" else ""
    port = _free_port()
    base = load_settings({"chain": chain, "db_url": db_url})
    settings = {
        "chain": chain,
        "db_url": db_url,
        "speed": config.speed,
        "settle_grace_s": config.settle_grace_s,
        "http_port": port,
        "state_dir": str(workdir / "state"),
        "mqtt_url": mqtt_url,
        "auth_token_lifetime_s": 7 * 86_400,  # households sign in once, in the warm-up
        "rate_limit_participant_per_min": 100_000_000,  # one client address signs everyone in
        "rate_limit_meter_per_min": 100_000_000,
    }
    length_s = base.interval_length_s
    progress("profiles", 0, 1)
    profiles = build_profiles(config.households, base.grid_code, BENCH_SEED)
    (workdir / "profiles.json").write_text(json.dumps(profiles_to_json(profiles)))
    progress("profiles", 1, 1)
    node_config = {
        "settings": settings,
        "households": config.households,
        "deposit_micro": DEPOSIT_MICRO,
        "workdir": str(workdir),
        "profile": str(config.profile) if config.profile else "",
    }
    (workdir / "node.json").write_text(json.dumps(node_config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    env["PYTHONUNBUFFERED"] = "1"
    node_log = workdir / "node.log"
    node_proc = procs.start(
        [sys.executable, "-m", "gridledger.node.bench", "node", str(workdir / "node.json")],
        node_log,
        stdout=subprocess.PIPE,
        env=env,
    )
    node_reader = LineReader(node_proc, progress, "enrol ")
    ready = _wait_line(node_reader, "ready", 600 + config.households * 0.1, "the node", node_log)
    _wait_for_port(port, node_proc, 60, "the node")
    base_url = f"http://127.0.0.1:{port}"
    status, domain = _market(base_url), _chain(base_url)
    first_s = int(status["open_interval_start_s"])
    if config.speed == 1:
        first_s += length_s  # real time: the next interval's whole window, after the warm-up
    starts = [first_s + k * length_s for k in range(config.intervals)]
    generators = _start_generators(
        config, workdir, procs, env, base_url, domain, first_s, length_s, mqtt_url, progress
    )
    for reader, log in generators:
        _wait_line(reader, "ready", 600 + config.households * 0.2, "a load generator", log)
    sampler = NodeSampler(node_proc.pid)
    cpu_before = sampler.cpu_s()
    node_proc.send_signal(signal.SIGUSR1)  # the market clock runs
    for reader, _ in generators:
        assert reader.proc.stdin is not None
        reader.proc.stdin.write(b"go\n")
        reader.proc.stdin.flush()
    followed = (node_proc, sampler, generators)
    statuses = _follow(config, base_url, starts, length_s, followed, progress)
    _check_alive(node_proc, node_log)
    cpu_after = sampler.cpu_s()
    vm_hwm = sampler.vm_hwm_bytes()
    load_after = os.getloadavg()
    node_proc.send_signal(signal.SIGTERM)
    node_proc.wait(120)
    return _report(
        config,
        workdir,
        chain,
        db_url,
        starts,
        length_s,
        statuses,
        generators,
        {
            "cpu_s": cpu_after - cpu_before,
            "vm_hwm": vm_hwm,
            "peak_rss": sampler.peak_rss_bytes,
            "peak_tree_rss": sampler.peak_tree_rss_bytes,
            "load": (load_before, load_after),
            "enrol_s": float(ready[1]) if len(ready) > 1 else None,
        },
    )


def _market(base_url: str) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(f"{base_url}/v1/market", timeout=60).json())


def _chain(base_url: str) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(f"{base_url}/v1/chain", timeout=60).json())


def _start_generators(
    config: BenchConfig,
    workdir: Path,
    procs: Processes,
    env: dict[str, str],
    base_url: str,
    domain: dict[str, Any],
    first_s: int,
    length_s: int,
    mqtt_url: str,
    progress: Progress,
) -> list[tuple[LineReader, Path]]:
    count = min(config.generators, config.households)
    bounds = [config.households * g // count for g in range(count + 1)]
    profiles = json.loads((workdir / "profiles.json").read_text())
    generators = []
    totals: dict[str, dict[int, tuple[int, int]]] = {}
    expected = {"sign-in": config.households, "pre-sign": config.households * config.intervals}

    def summed(step: str, g: int) -> Progress:
        def report(_s: str, done: int, total: int) -> None:
            totals.setdefault(step, {})[g] = (done, total)
            overall = expected.get(step, total)  # the bar's total is fixed at its first update
            progress(step, sum(d for d, _ in totals[step].values()), overall)

        return report

    for g in range(count):
        path = workdir / f"loadgen-{g}.json"
        path.write_text(
            json.dumps(
                {
                    "base_url": base_url,
                    "generator": g,
                    "interval_length_s": length_s,
                    "first_interval_s": first_s,
                    "intervals": config.intervals,
                    "first_household": bounds[g],
                    "end_household": bounds[g + 1],
                    "profiles": profiles,
                    "domain": {"chain_id": domain["chain_id"], "market": domain["market"]},
                    "via": config.via,
                    "order_spread": config.order_spread,
                    "mqtt_url": mqtt_url,
                    "result_path": str(workdir / f"loadgen-{g}-result.json"),
                }
            )
        )
        log = workdir / f"loadgen-{g}.log"
        proc = procs.start(
            [sys.executable, "-m", "gridledger.node.loadgen", str(path)],
            log,
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            env=env,
        )
        reader = LineReader(proc, lambda s, d, t: None, "")
        reader.progress = _by_step(summed, g)
        generators.append((reader, log))
    return generators


def _by_step(summed: Callable[[str, int], Progress], g: int) -> Progress:
    def report(step: str, done: int, total: int) -> None:
        summed(step, g)(step, done, total)

    return report


def _follow(
    config: BenchConfig,
    base_url: str,
    starts: list[int],
    length_s: int,
    followed: tuple[subprocess.Popen[bytes], NodeSampler, list[tuple[LineReader, Path]]],
    progress: Progress,
) -> dict[int, str]:
    """Until the last interval is settled and the generators are done, the node has ended, or
    it is hopeless (the deadline)."""
    import httpx

    node_proc, sampler, generators = followed

    last_due_wall_s = (
        time.time()
        + (starts[-1] + length_s - starts[0] + length_s + config.settle_grace_s) / config.speed
    )
    deadline = last_due_wall_s + 120 + config.households / 100
    statuses: dict[int, str] = {}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while time.time() < deadline:
            sampler.sample()
            try:
                rows = http.get("/v1/intervals").json().get("items", [])
            except httpx.HTTPError:
                rows = []
            statuses.update(
                {int(r["interval_start_s"]): str(r["status"]) for r in rows if isinstance(r, dict)}
            )
            settled = sum(statuses.get(s) == "settled" for s in starts)
            progress("intervals settled", settled, len(starts))
            generators_done = all(r.proc.poll() is not None for r, _ in generators)
            if settled == len(starts) and generators_done:
                break
            if node_proc.poll() is not None:  # the node ended: nothing more settles
                break
            if any(r.proc.poll() not in (None, 0) for r, _ in generators):
                break  # a generator failed: the report says which and why
            time.sleep(STATUS_POLL_S)
    return statuses


def _check_alive(node_proc: subprocess.Popen[bytes], node_log: Path) -> None:
    """The node must still run after the timed part: one that died is the bench's failure."""
    code = node_proc.poll()
    if code is None:
        return
    tail = node_log.read_text(errors="replace")[-3000:] if node_log.exists() else ""
    how = f"signal {-code}" if code < 0 else f"code {code}"
    raise GridledgerError(
        f"the node process ended during the run ({how}); its log ({node_log}) ends with:\n{tail}"
    )


def _generator_result(workdir: Path, g: int, reader: LineReader, log: Path) -> dict[str, Any]:
    """A load generator's result; one that failed (or wrote none) fails the bench: its
    households' orders and readings were never sent, so nothing about them can be judged."""
    path = workdir / f"loadgen-{g}-result.json"
    code = reader.proc.poll()
    if code == 0 and path.exists():
        return dict(json.loads(path.read_text()))
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise GridledgerError(f"load generator {g} failed (exit code {code}); {log} ends with:\n{tail}")


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p99": None, "max": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": round(median(ordered), 3), "p99": round(p99, 3), "max": round(ordered[-1], 3)}


def _node_events(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "node-events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _report(
    config: BenchConfig,
    workdir: Path,
    chain: str,
    db_url: str,
    starts: list[int],
    length_s: int,
    statuses: dict[int, str],
    generators: list[tuple[LineReader, Path]],
    machine: dict[str, Any],
) -> dict[str, Any]:
    from gridledger.store import Store

    results = [
        _generator_result(workdir, g, reader, log) for g, (reader, log) in enumerate(generators)
    ]
    events = _node_events(workdir)
    resumed = next((e for e in events if e["kind"] == "resumed"), None)
    final_path = workdir / "node-final.json"
    final = json.loads(final_path.read_text()) if final_path.exists() else {"settle_events": {}}

    def wall_of(market_s: float) -> float | None:
        if resumed is None:
            return None if config.speed > 1 else market_s
        return (
            float(resumed["resumed_wall_s"])
            + (market_s - float(resumed["market_s"])) / config.speed
        )

    def first_event(kind: str, start_s: int) -> float | None:
        return next(
            (e["wall_s"] for e in events if e["kind"] == kind and e["interval_start_s"] == start_s),
            None,
        )

    store = Store.open(db_url)
    try:
        per_interval = [
            _interval_report(
                s, length_s, config, store, results, final, wall_of, first_event, statuses
            )
            for s in starts
        ]
    finally:
        store.close()
    orders = _totals(results, "orders")
    readings = _totals(results, "readings")
    lat = {
        name: _percentiles(
            [i["latency_s"][name] for i in per_interval if i["latency_s"][name] is not None]
        )
        for name in ("cleared", "committed", "committed_after_due", "settled", "settled_after_due")
    }
    gas = [i["gas_used"] for i in per_interval if i["gas_used"] is not None]
    exact = all(i["exact"]["ok"] for i in per_interval)
    cpu_s = machine["cpu_s"]
    settled_p99 = lat["settled_after_due"]["p99"]
    held = {
        "all_settled": all(statuses.get(s) == "settled" for s in starts),
        "exact": exact,
        "every_reading_accepted": readings["accepted"] == readings["sent"],
        "settle_p99_after_due_le_10_s": settled_p99 is not None and settled_p99 <= 10.0,
        "node_rss_le_2_gb": machine["vm_hwm"] <= 2 * 2**30,
    }
    return {
        "held": all(held.values()),  # issue 14's target: settled, exact, no reading lost, ...
        "held_criteria": held,
        # Not a criterion of the target but the market's own limit: orders the node could not
        # take before their gate closed (skipped_after_gate, wrong_interval) are counted here.
        "every_order_accepted": orders["accepted"] == orders["sent"],
        "households": config.households,
        "meters": config.households,
        "intervals": config.intervals,
        "speed": config.speed,
        "interval_wall_s": round(length_s / config.speed, 3),
        "settle_grace_s": config.settle_grace_s,
        "via": config.via,
        "order_spread": config.order_spread,
        "chain": "memory" if chain == "memory" else "anvil/json-rpc",
        "db": db_url.split(":", 1)[0].split("+", 1)[0],
        "settlement_path": "root",
        "load_generators": len(generators),
        "presigned": True,  # orders and readings were signed in the warm-up, not timed
        "enrol_s": machine["enrol_s"],
        "orders": orders,
        "readings": readings,
        "latency_s": lat,
        "latency_note": (
            "from the gate closure (interval start) to cleared, committed on-chain and settled; "
            "settled_after_due: from interval end + settle_grace_s to settled"
        ),
        "gas_per_interval": {
            "median": int(median(gas)) if gas else None,
            "max": max(gas) if gas else None,
        },
        "node_peak_rss_mb": round(machine["vm_hwm"] / 2**20, 1),
        "node_and_workers_peak_rss_mb": round(machine["peak_tree_rss"] / 2**20, 1),
        "node_cpu_s_per_interval": round(cpu_s / config.intervals, 3),
        "node_cpu_share_of_wall": round(cpu_s / (config.intervals * length_s / config.speed), 3),
        "all_settled": all(statuses.get(s) == "settled" for s in starts),
        "exact": exact,
        "per_interval": per_interval,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in machine["load"][0]],
            "load_average_after": [round(x, 2) for x in machine["load"][1]],
        },
        "workdir": str(workdir),
        "profile": str(config.profile) if config.profile else None,
    }


def _totals(results: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    sent = accepted = duplicate = unanswered = skipped = 0
    rejected: dict[str, int] = {}
    busy_s = 0.0
    for result in results:
        for tally in result[kind].values():
            sent += tally["sent"]
            accepted += tally["accepted"]
            duplicate += tally["duplicate"]
            unanswered += tally["unanswered"]
            skipped += tally.get("skipped_after_gate", 0)
            for code, n in tally["rejected"].items():
                rejected[code] = rejected.get(code, 0) + n
    # A burst's duration: the first send of any generator to the last answer of any.
    bursts: dict[str, list[float]] = {}
    for result in results:
        for start, tally in result[kind].items():
            span = bursts.setdefault(start, [tally["began_wall_s"], tally["ended_wall_s"]])
            span[0], span[1] = (
                min(span[0], tally["began_wall_s"]),
                max(span[1], tally["ended_wall_s"]),
            )
    busy_s = sum(end - begin for begin, end in bursts.values())
    return {
        "sent": sent,
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
        "unanswered": unanswered,
        "skipped_after_gate": skipped,
        "burst_s": {k: round(e - b, 3) for k, (b, e) in sorted(bursts.items())},
        "accepted_per_s": round(accepted / busy_s, 1) if busy_s > 0 else None,
    }


def _interval_report(
    start_s: int,
    length_s: int,
    config: BenchConfig,
    store: Any,
    results: list[dict[str, Any]],
    final: dict[str, Any],
    wall_of: Callable[[float], float | None],
    first_event: Callable[[str, int], float | None],
    statuses: dict[int, str],
) -> dict[str, Any]:
    from gridledger.errors import NotFoundError

    key = str(start_s)
    sent = sum(r["readings"].get(key, {}).get("sent", 0) for r in results)
    stored = len(store.readings_in_interval(start_s))
    deltas = [s.delta_micro for s in store.settlements_in_interval(start_s)]
    settle_events = int(final["settle_events"].get(key, 0))
    try:
        row = store.interval(start_s)
        gas, status = row.gas_used, row.status
    except NotFoundError:
        gas, status = None, statuses.get(start_s)
    gate = wall_of(start_s)
    due = wall_of(start_s + length_s + config.settle_grace_s)

    def since(t: float | None, origin: float | None) -> float | None:
        return None if t is None or origin is None else round(t - origin, 3)

    settled_at = first_event("settled", start_s)
    exact = {
        "readings_sent": sent,
        "readings_stored": stored,
        "readings_match": stored == sent,
        "settlement_sum_micro": sum(deltas),
        "settlement_accounts": len(deltas),
        "sums_to_zero": sum(deltas) == 0,
        "chain_settlements": settle_events,
        "settled_once": settle_events == 1 and status == "settled",
    }
    exact["ok"] = exact["readings_match"] and exact["sums_to_zero"] and exact["settled_once"]
    return {
        "interval_start_s": start_s,
        "status": status,
        "gas_used": gas,
        "trades": len(store.trades_in_interval(start_s)),
        "latency_s": {
            "cleared": since(first_event("gate_closed", start_s), gate),
            "committed": since(first_event("committed", start_s), gate),
            "committed_after_due": since(first_event("committed", start_s), due),
            "settled": since(settled_at, gate),
            "settled_after_due": since(settled_at, due),
        },
        "exact": exact,
    }


def top_of_profile(path: Path, n: int = 25) -> str:
    """The ``n`` entries with the most cumulative and own time, as pstats prints them."""
    import io
    import pstats

    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.sort_stats("cumulative").print_stats(n)
    stats.sort_stats("tottime").print_stats(n)
    return buffer.getvalue()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "node":
        node_main(Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m gridledger.node.bench node CONFIG.json")
