"""Shared fixtures: every backend-dependent test runs on each backend.

``chain_url`` is "memory" (in-process EVM) and an anvil node; ``db_url`` is a SQLite file and a
PostgreSQL server. The servers are real processes this test session starts on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.servers import start_anvil, start_mosquitto, start_postgres
from tests.support.services import Service

GREENBUTTON_DIR = Path(__file__).resolve().parent / "data" / "greenbutton"


@pytest.fixture(scope="session")
def anvil_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_anvil(tmp_path_factory.mktemp("anvil"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mosquitto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield service
    service.stop()


@pytest.fixture(params=["memory", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain_url(request: pytest.FixtureRequest) -> str:
    """A chain to deploy on: the embedded EVM, then a real anvil node."""
    if request.param == "memory":
        return "memory"
    server: Service = request.getfixturevalue("anvil_server")
    return server.url


_PG_DB_COUNTER = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    import sqlalchemy as sa

    server: Service = request.getfixturevalue("postgres_server")
    name = f"t{next(_PG_DB_COUNTER)}"
    engine = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def greenbutton_dir() -> Path:
    """Green Button sample files kept in the repository (Apache-2.0, see their NOTICE)."""
    return GREENBUTTON_DIR


@pytest.fixture
def processes() -> Iterator[ExitStack]:
    """The test's OS processes (tests.support.processes.spawn_gridledger), stopped at its end."""
    with ExitStack() as stack:
        yield stack
