"""The airbnb loaders on the real files in ../shared/data: Seattle 2016 (detailed schema) and
New York City 2019 (summary schema), and the whole case on each."""

import json

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


# a seeded sample of each file, the case whole in under a minute on two cores
SAMPLE = ["case.data.sample_rows=1500", "case.train.tuned.n_estimators=120"]
FIGURES = ("encodings", "linear_qq", "linear_residuals", "interaction")


def check_run(m: dict, a: dict, rep) -> None:
    """The run finished, wrote its figures and measured the plain reference on its own split."""
    assert m["source"] == "real" and m["rows"] == 1500
    for plot in FIGURES:
        assert (rep / f"analysis/{plot}.png").exists(), plot
    test = m["tasks"]["price"]["listing"]["test"]
    plain = a["plain_reference"]
    assert plain["test"]["plain"] == test["lgbm-plain"]["rmse"]
    assert "Against the plain reference `lgbm-plain`" in (rep / "talking_points.md").read_text()
    assert a["table"] and a["linear_checks"]["vif"]


@pytest.mark.slow
def test_the_case_runs_on_seattle_2016(shared_data, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real",
                         f"case.data.path={shared_data / 'listings.csv.gz'}", *SAMPLE)
    check_run(m, a, rep)
    assert "detailed schema" in (rep / "rollout.md").read_text()
    cols = json.loads((tmp_path / "data/airbnb/features.json").read_text())
    assert "listing_text" in cols["views"]["listing"]  # the words are chosen inside each fit


@pytest.mark.slow
def test_the_case_runs_on_new_york_2019(shared_data, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real",
                         f"case.data.path={shared_data / 'AB_NYC_2019.csv.gz'}", *SAMPLE)
    check_run(m, a, rep)
    assert a["extrapolation"] == {}  # no capacity column in 2019
