"""The public API over real HTTP, backed by a real short trading day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridledger.api import create_app
from gridledger.api._chain import EXPLORER_EVENTS
from gridledger.config import Settings
from gridledger.sim.day import DayConfig, DayResult, run_day
from tests.support.http import serve_app


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> DayResult:
    db = tmp_path_factory.mktemp("api") / "api.sqlite"
    config = DayConfig(households=3, intervals=4, first_interval=48, fresh_db=False)
    return run_day(config, Settings(db_url=f"sqlite:///{db}"))


@pytest.fixture(scope="module")
def base_url(day: DayResult) -> Iterator[str]:
    with serve_app(create_app(day.app_state())) as url:
        yield url


def test_dashboard_page_is_served(base_url: str) -> None:
    page = httpx.get(base_url + "/")
    assert page.status_code == 200
    assert "gridledger" in page.text and "/static/app.js" in page.text
    assert httpx.get(base_url + "/static/app.js").status_code == 200


def test_intervals_are_listed_newest_first_with_their_roots(base_url: str, day: DayResult) -> None:
    page = httpx.get(base_url + "/v1/intervals", params={"limit": 10}).json()
    rows = page["items"]
    assert len(rows) == 4 and page["next_cursor"] is None
    starts = [r["interval_start_s"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    one = httpx.get(f"{base_url}/v1/intervals/{starts[0]}").json()
    on_chain = day.ledger.interval(starts[0])
    assert one["result_root"] == "0x" + on_chain.result_root.hex()
    trades = day.store.trades_in_interval(starts[0])
    assert "trades" not in one and one["trade_count"] == len(trades)  # lines go to their parties
    assert sum(t.energy_wh for t in trades) == one["cleared_energy_wh"]


def test_unknown_interval_is_a_problem_document(base_url: str) -> None:
    response = httpx.get(base_url + "/v1/intervals/12345")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_bad_query_parameter_is_rejected(base_url: str) -> None:
    assert httpx.get(base_url + "/v1/intervals", params={"limit": 0}).status_code == 422


def test_chain_status_reports_the_live_chain(base_url: str, day: DayResult) -> None:
    chain = httpx.get(base_url + "/v1/chain").json()
    assert chain["market"] == day.ledger.deployment.market
    assert chain["block_number"] == day.ledger.block_number
    assert chain["tx_count"] == day.summary["chain_txs"]


def test_summary_matches_the_run(base_url: str, day: DayResult) -> None:
    assert httpx.get(base_url + "/v1/summary").json() == day.summary


def test_static_files_do_not_escape_their_folder(base_url: str) -> None:
    assert httpx.get(base_url + "/static/../__init__.py").status_code == 404
    assert Path(__file__).exists()


def test_chain_events_page_through_every_kept_event_newest_first(
    base_url: str, day: DayResult
) -> None:
    names = set(EXPLORER_EVENTS)
    expected = [(e.block_number, e.log_index) for e in day.ledger.events() if e.name in names][::-1]
    seen: list[tuple[int, int]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(base_url + "/v1/chain/events", params=params).json()
        assert len(page["items"]) <= 3
        seen += [(e["block_number"], e["log_index"]) for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(seen) > 10


def test_the_chain_view_shows_root_settled_intervals_and_claims(
    base_url: str, day: DayResult
) -> None:
    chain = httpx.get(base_url + "/v1/chain").json()
    settled = {e["args"]["intervalStartS"] for e in chain["recent_settlements"]}
    assert {e["name"] for e in chain["recent_settlements"]} == {"IntervalSettledByRoot"}
    assert settled == {r.interval_start_s for r in day.store.intervals(10)}
    claims = httpx.get(base_url + "/v1/chain/events", params={"name": "Claimed"}).json()
    assert claims["items"] and all(e["name"] == "Claimed" for e in claims["items"])
    assert chain["recent_claims"] == claims["items"][:10]
