"""The eta case whole through the stage scripts on a small simulated city."""

import json

import pytest

from tests.conftest import run_case as run_case_stages

pytestmark = pytest.mark.slow
SMALL = ["case.train.lgbm.n_estimators=40", "case.evaluate.latency_samples=20",
         "case.analysis.learning_curve=[2000,8000]", "case.features.clusters=12"]


def run_case(tmp_path, *overrides):
    return run_case_stages(tmp_path, "eta", *SMALL, *overrides)


def test_eta_pipeline_on_the_simulator(tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.world.trips=30000")
    test = m["tasks"]["duration"]["trip"]["test"]
    assert set(test) == {"baseline", "linear", "lgbm-plain", "lgbm"}
    for name in test:
        assert {"mae", "rmsle", "ape_p50", "ape_p90"} <= set(test[name])
    assert test[m["selected_model"]]["rmsle"] < test["baseline"]["rmsle"]
    assert "last 4 weeks" in m["split"]["kind"]
    sizes = sorted({r["trips"] for r in a["learning_curve"] if r["model"] == "lgbm"})
    assert sizes[:2] == [2000, 8000] and sizes[-1] == a["curve"]["pool_trips"]
    serving = json.loads((rep / "analysis_timing.json").read_text())["serving"]
    assert serving["p99_ms"] > 0 and serving["model_mb"] > 0 and "serving" not in a
    eda = json.loads((rep / "eda.json").read_text())
    assert eda["removed"]["zero_distance"] > 0 and eda["removed"]["too_long"] > 0
    assert (rep / "analysis/learning_curve.png").exists()
    assert "Is one million enough?" in (rep / "talking_points.md").read_text()
    assert "Shadow mode" in (rep / "rollout.md").read_text()
    # the Bayes floor: scored on the test trips, never a feature, drawn on the learning curve
    meta = json.loads((tmp_path / "data/eta/features.json").read_text())
    assert all("truth_trip_duration" not in cols for cols in meta["views"].values())
    floor = m["tasks"]["duration"]["trip"]["floor"]
    assert floor["available"] and m["floor"]["rmsle"] == floor["test"]["rmsle"]
    lo, hi = floor["interval"]["rmsle"]
    assert 0 < lo <= floor["test"]["rmsle"] <= hi
    assert floor["test"]["rmsle"] < test[m["selected_model"]]["rmsle"]
    assert floor["model_minus_floor"]["rmsle"]["lo"] > 0  # the model is above it, beyond noise
    assert m["gap_closed"] == floor["gap_closed"] and 0 < m["gap_closed"] < 1
    assert 0 < a["curve"]["floor_val_rmsle"] < min(r["val_rmsle"] for r in a["learning_curve"])
    seeds = {r["seed"] for r in a["learning_curve"] if r["trips"] == 2000}
    assert len(seeds) == 3 and {g["source"] for g in a["importance"]["by_source"]} >= {
        "distance and direction", "places", "time"}
    assert "Bayes floor" in (rep / "rollout.md").read_text()
