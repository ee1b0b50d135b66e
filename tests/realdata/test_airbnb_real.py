"""The airbnb loaders on the real files in ../shared/data: Seattle 2016 (detailed schema) and
New York City 2019 (summary schema), and the whole case on each."""

import pytest

from cases.airbnb import data as ad
from cases.config import compose
from tests.integration.test_airbnb_pipeline import run_case

pytestmark = pytest.mark.realdata


def test_seattle_2016_parses_in_full(shared_data, tmp_path):
    cfg = compose(["case=airbnb"]).case
    ds = ad.load({**cfg.data, "source": "real", "path": str(shared_data / "listings.csv.gz")},
                 tmp_path)
    t = ds.tables["listings"]
    assert len(t) == 3_818 and t["price"].max() == 1_000 and t["price"].median() == 100
    assert ds.tables["schema"]["unusable"].iloc[0] == "bathrooms_shared (not in the file)"
    assert t["host_response_rate"].max() == 100 and t["review_score"].max() == 100


def test_new_york_2019_summary_schema(shared_data, tmp_path):
    cfg = compose(["case=airbnb"]).case
    ds = ad.load({**cfg.data, "source": "real", "path": str(shared_data / "AB_NYC_2019.csv.gz")},
                 tmp_path)
    rules = dict(zip(ds.tables["cleaning"]["rule"], ds.tables["cleaning"]["removed"]))
    assert rules["price_zero"] == 11  # eleven $0 listings in the published file
    assert "summary schema" in ds.description
    assert "amenities" in ds.tables["schema"]["unusable"].iloc[0]


@pytest.mark.slow
def test_the_case_runs_on_seattle_2016(shared_data, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real",
                         f"case.data.path={shared_data / 'listings.csv.gz'}")
    assert m["rows"] == 3_818 and a["linear_checks"]["vif"]
    assert "detailed schema" in (rep / "rollout.md").read_text()


@pytest.mark.slow
def test_the_case_runs_on_new_york_2019(shared_data, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real",
                         f"case.data.path={shared_data / 'AB_NYC_2019.csv.gz'}",
                         "case.data.sample_rows=3000")
    assert m["source"] == "real" and a["extrapolation"] == {}  # no capacity column in 2019
