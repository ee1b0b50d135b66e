"""The eta case on the real New York files in ../shared/data: the Kaggle trip-duration sample
(coordinates) and TLC green-taxi parquet files (taxi zones)."""

import json

import pytest

from cases.config import compose
from cases.eta import data as ed
from tests.integration.test_eta_pipeline import run_case

pytestmark = pytest.mark.realdata


@pytest.fixture
def kaggle(shared_data):
    return shared_data / "nyc_taxi_trip_duration_train_sample0.05.csv.gz"


def test_kaggle_sample_loads_and_the_cleaning_counts_its_quirks(kaggle, tmp_path):
    cfg = compose(["case=eta"]).case
    ds = ed.load({**cfg.data, "source": "real", "path": str(kaggle)}, tmp_path)
    rules = dict(zip(ds.tables["cleaning"]["rule"], ds.tables["cleaning"]["removed"]))
    assert sum(rules.values()) == 73_177
    assert rules["clock_error"] == 0  # trip_duration equals dropoff minus pickup in every row
    assert rules["too_short"] >= 400  # 434 trips under 60 s (some broke an earlier rule)
    assert rules["outside_city"] > 0 and rules["too_long"] > 0


def test_tlc_green_files_load_with_zones(shared_data, tmp_path):
    cfg = compose(["case=eta"]).case
    path = shared_data / "nyc_tlc_green" / "green_tripdata_2021-0*.parquet"
    ds = ed.load({**cfg.data, "source": "real", "path": str(path)}, tmp_path)
    rules = dict(zip(ds.tables["cleaning"]["rule"], ds.tables["cleaning"]["removed"]))
    assert sum(rules.values()) == 76_518 + 64_572 + 83_827
    trips = ds.tables["trips"]
    assert trips["schema"].iloc[0] == "zones" and trips["borough"].notna().all()
    assert "and 2 more file(s)" in ds.description


FIGURES = ("eda/duration_hist.png", "eda/duration_by_distance.png", "eda/speed_by_hour.png",
           "evaluation/duration_candidates.png", "analysis/learning_curve.png")


def check_whole_run(m: dict, rep, plain_columns: set[str]) -> None:
    """Every stage finished and wrote its figures; the plain reference ran on the raw columns
    the file has, and the story says how the selected model stands against it."""
    for f in FIGURES:
        assert (rep / f).stat().st_size > 0, f
    r = m["tasks"]["duration"]["trip"]
    assert {"baseline", "linear", "lgbm-plain", "lgbm"} == set(r["test"])
    assert r["test"][r["selected"]]["rmsle"] < r["test"]["baseline"]["rmsle"]
    points = (rep / "talking_points.md").read_text()
    assert "the plain reference `lgbm-plain`" in points
    if r["selected"] != "lgbm-plain":
        assert "lgbm-plain" in r["paired"] and "vs_selected" in r["paired"]["lgbm-plain"]
        assert f"lgbm-plain \u2212 {r['selected']}:" in points
    said = points.split("on the raw ", 1)[1].split(";", 1)[0]
    assert set(said.split(", ")) == plain_columns


@pytest.mark.slow
def test_the_case_runs_on_the_kaggle_sample(kaggle, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path={kaggle}",
                         "case.data.sample_rows=20000")
    assert m["source"] == "real" and m["split"]["schema"] == "coords"
    assert "precip_mm" in a["features"]["unavailable"]
    check_whole_run(m, rep, {"pickup_latitude", "pickup_longitude", "dropoff_latitude",
                             "dropoff_longitude", "hour", "weekday", "minute_of_day"})


@pytest.mark.slow
def test_the_case_runs_on_the_tlc_folder(shared_data, tmp_path):
    """All ten monthly files (2021-2024): the CV folds hold out whole years, the test is the
    last weeks of March 2024."""
    path = shared_data / "nyc_tlc_green"
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path={path}",
                         "case.data.sample_rows=20000")
    assert m["split"]["schema"] == "zones" and m["split"]["test"]["from"].startswith("2024-03")
    assert "4 separate stretches" in m["split"]["cv"]  # 2021, 2022, 2023, March 2024
    meta = json.loads((tmp_path / "data/eta/features.json").read_text())
    assert {"pu_zone", "do_zone", "hour_of_week"} <= set(meta["views"]["trip"])
    assert "trip_distance_km" not in meta["views"]["trip"]  # the meter's distance: after the trip
    assert a["routes"]["pairs_in_training"] > 100
    check_whole_run(m, rep, {"pu_zone", "do_zone", "hour", "weekday", "minute_of_day"})
