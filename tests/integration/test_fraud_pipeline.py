"""The fraud case whole through the stage scripts: on a small simulated bank, and on a generated
file in the ULB schema (the real loader end to end)."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_case as run_case_stages

pytestmark = pytest.mark.slow
SMALL = ["case.train.lgbm.n_estimators=60", "case.evaluate.latency_samples=20",
         "case.analysis.shap_alerts=100"]


def run_case(tmp_path, *overrides):
    return run_case_stages(tmp_path, "fraud", *SMALL, *overrides)


def test_fraud_pipeline_on_the_simulator(tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.world.customers=2500")
    test = m["tasks"]["fraud"]["tx"]["test"]
    assert set(test) == {"baseline", "logistic", "lgbm"}
    for t in test.values():
        assert {"average_precision", "recall_at_alert_rate", "precision_at_recall"} <= set(t)
    money = {x["model"]: x for x in a["money"]}
    assert money["approve everything"]["cost_dollars"] > money[a["selected"]]["cost_dollars"]
    assert {x["variant"] for x in a["loop"]} == {"static", "retrained on replies",
                                                 "retrained, exploring"}
    assert len({x["period"] for x in a["loop"]}) == 3
    explored = [x for x in a["loop"] if x["variant"] == "retrained, exploring"]
    assert all(x["explored_texts"] > 0 for x in explored)
    assert a["exploration"]["totals"]["retrained, exploring"]["explored_texts"] > 0
    u = a["unreported_in_training"]
    assert set(u["models"]) == {"reported labels", "true labels"}
    d = u["true_minus_reported"]["average_precision"]
    assert d["lo"] <= d["diff"] <= d["hi"]
    k = a["calibration"]
    assert k["bands"] and {"raw", "calibrated"} == set(k["policy"])
    assert (rep / "analysis/calibration_high.png").exists()
    assert 0 <= a["labels"]["unreported_share"] < 1 and a["reasons"] and a["examples"]
    assert (rep / "analysis/cost_curve.png").exists()
    assert "Shadow period" in (rep / "rollout.md").read_text()
    # the Bayes floor: the true P(label | what the bank sees) scored like a model, and the
    # money of the policy that knows the true P(fraud)
    f = m["tasks"]["fraud"]["tx"]["floor"]
    assert f["available"] and f["truth"] == "true_p_label"
    assert m["floor"]["average_precision"] == f["test"]["average_precision"]
    assert m["gap_closed"] == f["gap_closed"] is not None
    lo, hi = f["interval"]["average_precision"]
    assert lo <= m["floor"]["average_precision"] <= hi
    pf = a["policy_floor"]
    assert pf["available"] and pf["metric"] == "cost_dollars"
    assert pf["model"]["cost_dollars"] == money[a["selected"]]["cost_dollars"]
    assert pf["test"]["cost_dollars"] == money["Bayes policy (knows P(fraud))"]["cost_dollars"]
    # in expectation the floor holds transaction by transaction: no policy undercuts it
    assert pf["test"]["expected_cost_dollars"] <= min(pf["model"]["expected_cost_dollars"],
                                                      pf["baseline"]["expected_cost_dollars"])
    assert "true terms" in a["floor_gap"]
    rollout = (rep / "rollout.md").read_text()
    points = (rep / "talking_points.md").read_text()
    assert "## The Bayes floor" in rollout
    assert points.count("The policy that knows each transaction's true P(fraud)") == 1
    # the SMS policy's money is read against the gate's threshold-free guardrail
    assert "The gate weighs money without thresholds" in points


def test_fraud_pipeline_on_a_file_in_the_ulb_schema(tmp_path):
    rng = np.random.default_rng(1)
    n = 6000
    y = (rng.uniform(size=n) < 0.03).astype(int)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 172792, n)).round(0)})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=n) + (2.5 * y if i in (4, 14) else 0)
    frame["Amount"] = rng.exponential(80, n).round(2)
    frame["Class"] = y
    path = tmp_path / "creditcard.csv"
    pd.concat([frame, frame.iloc[:5]]).to_csv(path, index=False)
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path={path}")
    assert m["source"] == "real" and m["rows"] == n
    assert json.loads((rep / "eda.json").read_text())["duplicates_removed"] == 5
    assert m["test"]["average_precision"] > 0.3
    # real data: the truth is unknown, nothing is estimated
    assert m["floor"] is None and not m["tasks"]["fraud"]["tx"]["floor"]["available"]
    assert not a["policy_floor"]["available"] and a["floor_gap"] == {}
    assert "no floor (truth unknown)" in (rep / "rollout.md").read_text()
