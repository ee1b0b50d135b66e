"""The airbnb case whole through the stage scripts on a small simulated city."""

import json

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
                         "lgbm-target", "lgbm-onehot", "lgbm-tree"}
    assert {"rmse", "r2", "mae_dollars"} <= set(test["lgbm-native"])
    assert "shuffled folds of whole groups" in m["split"]["cv"]
    assert len(a["table"]) == 10 and a["interaction"]["pair"]
    assert {r["model"] for r in a["robustness"]} == {"linear-onehot", "forest-onehot",
                                                     "lgbm-native"}
    assert a["linear_checks"]["vif"] and 0 < a["linear_checks"]["interval_coverage_pct"] <= 100
    for plot in ("encodings", "linear_qq", "linear_residuals", "interaction"):
        assert (rep / f"analysis/{plot}.png").exists()
    eda = json.loads((rep / "eda.json").read_text())
    assert eda["schema"] == "detailed" and "price_zero" in eda["removed"]
    assert "Seasonality" in (rep / "rollout.md").read_text()
