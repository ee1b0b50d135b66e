"""The airbnb case whole through the stage scripts on a small simulated city."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_case as run_case_stages

pytestmark = pytest.mark.slow
SMALL = ["case.train.lgbm.n_estimators=60", "case.train.forest.n_estimators=20",
         "case.evaluate.latency_samples=20", "case.analysis.shap_rows=100",
         "case.train.cv_folds=3"]


def run_case(tmp_path, *overrides):
    return run_case_stages(tmp_path, "airbnb", *SMALL, *overrides)


def test_airbnb_pipeline_on_the_simulator(tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.world.listings=2500")
    test = m["tasks"]["price"]["listing"]["test"]
    assert set(test) == {"baseline", "linear-onehot", "linear-target", "linear-tree",
                         "forest-onehot", "forest-target", "forest-tree", "lgbm-native",
                         "lgbm-target", "lgbm-onehot", "lgbm-tree", "lgbm-plain", "lgbm-tuned"}
    assert {"rmse", "r2", "mae_dollars"} <= set(test["lgbm-native"])
    assert "shuffled folds of whole groups" in m["split"]["cv"]
    assert len(a["table"]) == 12 and a["interaction"]["pair"]
    assert {r["model"] for r in a["robustness"]} == {"linear-onehot", "forest-onehot",
                                                     "lgbm-native"}
    assert a["linear_checks"]["vif"] and 0 < a["linear_checks"]["interval_coverage_pct"] <= 100
    lv = a["many_levels"]
    assert lv["column"] == "street" and lv["levels"] > 500 and lv["unseen_share"] > 0
    assert {"lgbm-native", "lgbm-target", "lgbm-tree", "lgbm-onehot", "linear-target",
            "lgbm without"} <= set(lv["results"])
    assert len(a["against_linear"]) == 12
    plain = a["plain_reference"]
    table = {t["candidate"]: t for t in a["table"]}
    assert plain["cv"]["plain"] == table["lgbm-plain"]["cv_rmse"]
    assert plain["test"]["plain"] == test["lgbm-plain"]["rmse"]
    if plain["selected"] != "lgbm-plain":
        assert plain["test"]["lo"] <= plain["test"]["selected_minus_plain"] <= plain["test"]["hi"]
    icc = a["independence"]["icc"]["linear-onehot"]
    assert icc["interval"][0] <= icc["icc"] <= icc["interval"][1]
    for plot in ("encodings", "linear_qq", "linear_residuals", "interaction", "many_levels"):
        assert (rep / f"analysis/{plot}.png").exists()
    eda = json.loads((rep / "eda.json").read_text())
    assert eda["schema"] == "detailed" and "price_zero" in eda["removed"]
    assert "Seasonality" in (rep / "rollout.md").read_text()


def todays_schema(raw: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The simulator's listings as a file scraped since 2023 writes them: bathrooms as text,
    amenities as a JSON list (here empty in every row), review scores out of 5, bedrooms blank
    but in the listing name, beds blank everywhere, one column constant, some prices missing,
    prices marked in euros."""
    rng = np.random.default_rng(seed)
    out = raw.copy()
    bedrooms = out.pop("bedrooms")
    out["name"] = ["Rental unit in Town · ★4.8 · " + ("Studio" if b == 0 else f"{b:.0f} bedroom"
                   + ("s" if b > 1 else "")) for b in bedrooms]
    out["bedrooms"] = np.nan
    out["beds"] = np.nan
    out["bathrooms_text"] = [f"{b:g} baths" for b in out.pop("bathrooms")]
    out["bathrooms"] = np.nan
    out["amenities"] = "[]"
    out["review_scores_rating"] = out["review_scores_rating"] / 20
    out["instant_bookable"] = "f"
    price = out["price"].str.replace("$", "€", regex=False)
    out["price"] = price.where(rng.uniform(size=len(out)) > 0.05)
    return out


def test_a_current_schema_file_with_empty_and_constant_columns_runs_whole(tmp_path):
    from cases.airbnb.data import simulate
    from cases.config import compose

    world = compose(["case=airbnb", "case.data.world.listings=2500"]).case.data.world
    path = tmp_path / "listings.csv.gz"
    todays_schema(simulate(world)).to_csv(path, index=False)
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path={path}")
    eda = json.loads((rep / "eda.json").read_text())
    assert {"amenities (empty in every row)", "beds (empty in every row)",
            "instant_bookable (the same value in every row (0.0))"} <= set(eda["unusable"])
    assert eda["from_name"] == ["bedrooms"] and eda["currency"] == "€"
    assert eda["removed"]["price_unparsed"] > 0
    features = m["tasks"]["price"]["listing"]
    assert features["test"]["lgbm-native"]["rmse"] < features["test"]["baseline"]["rmse"]
    assert a["linear_checks"]["vif"] and "bedrooms" in a["linear_checks"]["vif"]
    assert "empty in every row" in (rep / "eda.md").read_text()
