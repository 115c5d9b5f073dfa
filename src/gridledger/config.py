"""One frozen configuration object; environment variables are read here and nowhere else.

Precedence: explicit overrides (CLI flags) > ``GRIDLEDGER_*`` environment variables > defaults.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridledger.errors import ConfigError

ENV_PREFIX = "GRIDLEDGER_"


@dataclass(frozen=True)
class Settings:
    """Everything a gridledger process needs to know. Money in micro-units, energy in Wh."""

    chain: str = "memory"  # "memory" (in-process EVM) or an EVM JSON-RPC URL
    db_url: str = "sqlite:///.gridledger/gridledger.sqlite"
    mqtt_url: str = ""  # e.g. mqtt://127.0.0.1:1883; empty disables MQTT ingestion
    operator_key: str = ""  # hex secp256k1 key of the operator; tests and the demo only
    operator_keystore: str = ""  # keystore v3 file of the operator key (gridledger keys new)
    operator_passphrase_file: str = ""  # file holding the keystore's passphrase; empty: prompt
    chain_confirmations: int = 0
    interval_length_s: int = 900
    import_price_micro_per_kwh: int = 300_000  # grid supplier sells at this tariff
    feed_in_price_micro_per_kwh: int = 80_000  # grid supplier buys at this tariff
    grid_fee_micro_per_kwh: int = 20_000  # paid by buyers of local energy to the grid operator
    grid_code: str = "1-LV-rural2--0-sw"  # the SimBench LV grid the community lives on
    # The public grid map pools metered nets over groups of at least this many households, so
    # it never shows one household's energy (gridledger.privacy.pooling).
    grid_map_min_households: int = 5
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # How people see money and time (the dashboard, report.html, CLI tables).
    currency: str = "EUR"  # ISO 4217 code of the settlement currency (1 unit = 1,000,000 micro)
    timezone: str = "Europe/Berlin"  # IANA zone of the clock times people read
    # The node (gridledger node): clock, settlement and its saved state.
    speed: int = 1  # market seconds per wall second: 60 runs one 15-min interval per 15 s
    settle_grace_s: int = 60  # market seconds after an interval ends before it is settled
    # Settlement on-chain: "root" posts one netting root per interval and claims every account
    # once per claim period (O(1) gas per interval); "direct" applies every account's delta in
    # the settling transaction (about 9k gas each: small pilots only).
    settlement_path: str = "root"
    claim_period_intervals: int = 96  # claimMany after this many roots (96: daily)
    state_dir: str = ".gridledger/node"  # deployment.json lives here
    # Verifiers co-signing every settlement (docs/trust-model.md): "dev" signs in-process with
    # the deterministic dev keys after re-execution; "remote" waits for `gridledger verifier`
    # processes. verifier_addresses (comma-separated) replaces the dev set at deploy.
    verifier_mode: str = "dev"
    verifier_count: int = 3
    verifier_quorum: int = 2
    verifier_addresses: str = ""
    attestation_timeout_s: int = 60  # a quorum missing this long is logged (the node waits on)
    # Collaborative detection (docs/security.md): evidence_detectors (comma-separated addresses
    # of `gridledger detector` processes) replaces the in-process dev detectors at deploy; a
    # finding is confirmed at evidence_quorum distinct detectors.
    evidence_detectors: str = ""
    evidence_quorum: int = 3
    # TESTS ONLY (the verifier end-to-end test): N > 0 makes the node's operator inflate one
    # trade of the N-th interval that has trades, for its verifiers to dispute.
    test_operator_tamper_traded_interval: int = 0
    # Authentication (Sign-In with Ethereum) and rate limits of the API.
    auth_secret: str = ""  # HMAC key of API tokens; empty: a random one kept in the database
    auth_token_lifetime_s: int = 900
    auth_domain: str = ""  # EIP-4361 domain; empty: the Host the client used
    rate_limit_participant_per_min: int = 600  # API calls per participant (token bucket)
    rate_limit_meter_per_min: int = 120  # readings per meter (token bucket)
    # OpenADR 2.0b demand response (docs/openadr.md): the node's VTN and a household's VEN.
    openadr_port: int = 0  # HTTP port of the node's VTN; 0: the node runs no VTN
    openadr_vtn_id: str = "GRIDLEDGER-VTN"
    openadr_poll_s: int = 10  # how often VENs poll the VTN (the event round trip's latency)
    openadr_report_interval_s: int = 60  # telemetry sampling the VTN asks the VENs for
    ven_id: str = ""  # this household VEN's OpenADR id; empty: its key's address

    def __post_init__(self) -> None:
        for name in (
            "interval_length_s",
            "http_port",
            "speed",
            "claim_period_intervals",
            "verifier_count",
            "verifier_quorum",
            "evidence_quorum",
            "grid_map_min_households",
            "attestation_timeout_s",
            "auth_token_lifetime_s",
            "rate_limit_participant_per_min",
            "rate_limit_meter_per_min",
            "openadr_poll_s",
            "openadr_report_interval_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")
        for name in (
            "import_price_micro_per_kwh",
            "feed_in_price_micro_per_kwh",
            "grid_fee_micro_per_kwh",
            "chain_confirmations",
            "settle_grace_s",
            "openadr_port",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative, got {getattr(self, name)}")
        if self.settlement_path not in ("root", "direct"):
            raise ConfigError(
                f"settlement_path: must be 'root' or 'direct', got {self.settlement_path!r}"
            )
        if self.feed_in_price_micro_per_kwh > self.import_price_micro_per_kwh:
            raise ConfigError(
                "feed_in_price_micro_per_kwh: must not exceed import_price_micro_per_kwh"
            )
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ConfigError(f"currency: an ISO 4217 code such as EUR, got {self.currency!r}")
        _check_timezone(self.timezone)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _check_timezone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone: not an IANA time zone such as Europe/Berlin or UTC: {name!r}"
        ) from None


def _coerce(field: dataclasses.Field[Any], raw: str) -> Any:
    if field.type in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(
                f"{ENV_PREFIX}{field.name.upper()}: not an integer: {raw!r}"
            ) from None
    return raw


def settings_file_values(path: Path) -> dict[str, Any]:
    """The settings in a TOML file: top-level keys named like the fields (``speed = 60``)."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the settings file: {exc}") from None
    known = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(known)}")
        values[key] = _coerce(known[key], value) if isinstance(value, str) else value
    return values


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Build the settings from defaults, a TOML file, the environment, then explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {} if config_path is None else settings_file_values(config_path)
    for field in dataclasses.fields(Settings):
        raw = env.get(ENV_PREFIX + field.name.upper())
        if raw is not None and raw != "":
            values[field.name] = _coerce(field, raw)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    return Settings(**values)


def ensure_sqlite_dir(db_url: str) -> None:
    """Create the folder of a relative SQLite file so a first run just works."""
    prefix = "sqlite:///"
    if db_url.startswith(prefix) and db_url != prefix + ":memory:":
        Path(db_url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
