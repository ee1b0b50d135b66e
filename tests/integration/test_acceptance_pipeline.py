"""The acceptance case whole through the stage scripts on a small world, and its latency
benchmark."""

import json
import re

import pytest

from tests.conftest import run_case, run_cli

pytestmark = pytest.mark.slow


def test_acceptance_pipeline(tmp_path):
    small = ["case.data.world.offers=20000", "case.analysis.requests=20",
             "case.analysis.tradeoff_requests=10",
             "case.evaluate.latency_samples=20", "case.train.lgbm.n_estimators=40"]
    m, a, rep = run_case(tmp_path, "acceptance", *small)
    assert set(m["tasks"]["accept"]["offer"]["test"]) == {"baseline", "logistic", "forest", "lgbm"}
    assert {"auc", "log_loss", "brier", "ece"} <= set(m["test"])
    assert "holding out a different set of groups" in m["split"]["cv"]
    assert {c["input"] for c in a["coefficients"]} >= {"pickup_km", "surge", "fare"}
    serving = json.loads((rep / "analysis_timing.json").read_text())["serving"]
    assert serving["drivers"] == 20 and serving["p99_ms"] > 0 and "serving" not in a
    assert (rep / "evaluation/accept_calibration.png").exists()
    assert [t["model"] for t in a["tradeoffs"]] == ["logistic", "forest", "lgbm"]
    assert all(0 < t["log_loss"] < 1 and 0.5 < t["auc"] <= 1 for t in a["tradeoffs"])
    assert "coefficients" in a["tradeoffs"][0]["readable"]
    trade = json.loads((rep / "analysis_timing.json").read_text())["tradeoffs"]["models"]
    assert set(trade) == {"logistic", "forest", "lgbm"}
    assert all(t["fit_s"] > 0 and t["p99_ms"] > 0 and t["size_kb"] > 0 for t in trade.values())
    assert "fit_s" not in json.dumps(a) and "p99_ms" not in json.dumps(a["tradeoffs"])
    sb = a["switchback"]
    assert sb["mde_switchback_pp"] > 0 and sb["windows"] > 0
    assert "switchback" in (rep / "rollout.md").read_text()
    assert "no public data" in (rep / "talking_points.md").read_text().lower()


def test_dispatch_latency_benchmark_prints_figures():
    res = run_cli("benchmarks/bench_dispatch.py", "--offers", "5000", "--requests", "10")
    assert res.returncode == 0, res.stderr[-2000:]
    for model in ("logistic", "forest", "lgbm"):
        assert re.search(rf"acceptance dispatch_{model}_p99_ms \d+\.\d+", res.stdout)
