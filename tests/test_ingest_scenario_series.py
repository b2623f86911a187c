"""A station's record of another year onto the cube's year; ``kgvsf whatif`` on the scenario's
own window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgvsf_explore.cli import _scenario_window, main
from kgvsf_explore.errors import ScenarioError
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.scenario.series import redate

SCENARIOS = Path(__file__).resolve().parents[1] / "data_samples" / "scenarios"


def test_redate_by_month_and_day() -> None:
    days = pd.date_range("2012-02-27", "2013-03-02")  # 2012 is a leap year
    s = pd.Series(np.arange(len(days), dtype=float), index=days, name="tmax")
    out = redate(s, 2022)
    assert out.index[0] == pd.Timestamp("2022-02-27")
    assert out.index[-1] == pd.Timestamp("2023-03-02")  # the second year stays the second
    assert pd.Timestamp("2022-02-28") in out.index
    assert len(out) == len(s) - 1  # 29 February 2012 has no day in 2022
    assert out[pd.Timestamp("2022-03-01")] == s[pd.Timestamp("2012-03-01")]
    assert out.index.is_unique and out.index.is_monotonic_increasing
    leap = redate(s.loc["2013-01-01":], 2024)
    assert pd.Timestamp("2024-02-29") not in leap.index  # no 29 Feb in the record: uncovered
    with pytest.raises(ScenarioError, match="calendar year"):
        redate(s, "2022")


def test_from_series_year_redates_a_station_record(tmp_path: Path) -> None:
    days = pd.date_range("2012-06-01", "2012-08-31")
    station = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmax": 30.0 + np.arange(92) / 10,
                            "prcp": 0.0})
    path = tmp_path / "station_2012.csv"
    station.to_csv(path, index=False)
    scen = Scenario.from_series(path, year=2022, start="2022-07-01")
    by_var = {c.variable: c for c in scen.changes}
    tmax = by_var["tmax"]
    assert pd.Timestamp(tmax.days[0]) == pd.Timestamp("2022-07-01")
    assert pd.Timestamp(tmax.days[-1]) == pd.Timestamp("2022-08-31")
    assert tmax.values[0] == pytest.approx(30.0 + 30 / 10)  # 1 July 2012's value
    assert _scenario_window(scen) == ("2022-07-01", "2022-08-31")  # window, then days
    assert _scenario_window(Scenario.from_series(path, year=2022)) == ("2022-06-01",
                                                                      "2022-08-31")
    with pytest.raises(ScenarioError, match="has no day in the window"):
        Scenario.from_series(path, start="2022-07-01")  # not re-dated: 2012 is outside


def test_whatif_defaults_to_the_scenario_window(tmp_path: Path, capsys) -> None:
    main(["make-sample", "--seed", "4", "--size", "tiny", "--out", str(tmp_path / "c"),
          "--quiet"])
    capsys.readouterr()
    assert main(["whatif", "--cube", str(tmp_path / "c"), "--scenario",
                 str(SCENARIOS / "drought_july_heat.json"), "--out", str(tmp_path / "w")]) == 0
    printed = capsys.readouterr().out
    assert "true effect from the simulator, 2022-06-15 to 2022-08-15" in printed
    table = pd.read_csv(tmp_path / "w" / "true_effect_by_crop.csv")
    sm = table["sm_scenario"] - table["sm_base"]
    assert (sm.abs() > 1e-4).any()  # a real effect, not the all-zero table of the whole start
    # a station's July 2012 replayed onto 2022 from the command line
    days = pd.date_range("2012-07-01", "2012-07-31")
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmax": 38.0}).to_csv(
        tmp_path / "station_2012.csv", index=False)
    assert main(["whatif", "--cube", str(tmp_path / "c"), "--series",
                 str(tmp_path / "station_2012.csv"), "--year", "2022"]) == 0
    printed = capsys.readouterr().out
    assert "tmax from series 2022-07-01..2022-07-31 (31 days)" in printed
    assert "true effect from the simulator, 2022-07-01 to 2022-07-31" in printed
