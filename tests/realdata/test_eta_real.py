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


@pytest.mark.slow
def test_the_case_runs_on_the_kaggle_sample(kaggle, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path={kaggle}",
                         "case.data.sample_rows=20000")
    assert m["source"] == "real" and m["split"]["schema"] == "coords"
    test = m["tasks"]["duration"]["trip"]["test"]
    assert test[m["selected_model"]]["rmsle"] < test["baseline"]["rmsle"]
    assert "precip_mm" in a["features"]["unavailable"]


@pytest.mark.slow
def test_the_case_runs_on_two_tlc_months(shared_data, tmp_path):
    path = shared_data / "nyc_tlc_green" / "green_tripdata_2021-0[12].parquet"
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path='{path}'",
                         "case.data.sample_rows=20000")
    assert m["split"]["schema"] == "zones"
    assert {"pu_zone", "do_zone"} <= set(
        json.loads((tmp_path / "data/eta/features.json").read_text())["views"]["trip"])
    assert a["routes"]["pairs_in_training"] > 100
