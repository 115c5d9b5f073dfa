"""Scenario mistakes name the valid keys and grid codes, with the closest match."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.errors import ValidationError
from gridledger.sim.scenario import LV_GRID_CODES, Scenario, scenario_from_mapping


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"community": {"housholds": 10}},
            "community.housholds: unknown key in [community]; did you mean 'households'? "
            "known: households, pv_share,",
        ),
        ({"comunity": {}}, "comunity: unknown section; did you mean 'community'? known: battery,"),
        ({"nmae": "x"}, "nmae: unknown top-level key; did you mean 'name'?"),
        (
            {"grid": {"code": "1-LV-rurl2--0-sw"}},
            "grid.code: '1-LV-rurl2--0-sw' is not a SimBench grid code; "
            "did you mean '1-LV-rural2--0-sw'? the low-voltage ones are 1-LV-{rural1,",
        ),
        ({"grid": {"code": "nosuch"}}, "grid.code: 'nosuch' is not a SimBench grid code; the"),
    ],
)
def test_errors_list_what_is_valid_and_suggest_the_closest(
    document: dict[str, object], expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        scenario_from_mapping(document)
    assert str(caught.value).startswith(expected)


def test_the_lv_codes_are_simbenchs_own() -> None:
    import simbench

    assert set(LV_GRID_CODES) == {
        c for c in simbench.collect_all_simbench_codes() if c.startswith("1-LV-")
    }
    assert Scenario(grid_code="1-MVLV-rural-all-0-sw").grid_code  # other SimBench codes pass


def test_the_cli_shows_it_on_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "typo.toml"
    scenario.write_text("[community]\nhousholds = 10\n")
    result = CliRunner().invoke(app, ["sim", str(scenario)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "did you mean 'households'?" in result.stderr
