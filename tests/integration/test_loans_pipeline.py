"""The loans case whole (`python -m cases all`) on a small scenario world."""

import json

import pandas as pd
import pytest

from tests.conftest import run_case, run_cli

pytestmark = pytest.mark.slow
SMALL = ["case.data.scenario.rows=3000", "case.analysis.explain_rows=40",
         "case.train.lgbm.n_estimators=60", "case.evaluate.latency_samples=20"]


@pytest.fixture(scope="module")
def loans(tmp_path_factory):
    root = tmp_path_factory.mktemp("loans")
    run_case(root, "loans", *SMALL)
    return root, {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}


def test_metrics_and_reasons(loans):
    root, _ = loans
    rep = root / "reports/loans"
    m = json.loads((rep / "metrics.json").read_text())
    assert m["case"] == "loans" and m["source"] == "hmda" and m["rows"] == 1989
    assert {"auc", "log_loss", "brier", "ece"} <= set(m["test"])
    assert set(m["tasks"]) == {"hmda", "scenario"}
    a = json.loads((rep / "analysis.json").read_text())
    decisions = {p["name"]: p["decision"] for p in a["applicants"]}
    assert decisions == {"Alice": "rejected", "Bob": "rejected", "Candace": "approved"}
    # against the approved applicant most like them (Candace), debt is their only reason
    for p in a["applicants"][:2]:
        assert (p["reference"], p["reason_features"]) == ("Candace", ["debt_k"]), p
    # the underwriter's verdict: the model with and without it, on the same split
    wv = a["hmda"]["without_verdict"]
    assert wv["inputs"] == ["gdlin"] and "gdlin" not in wv["top_reason_frequency"]
    assert wv["paired"]["auc"]["lo"] <= wv["paired"]["auc"]["diff"] <= wv["paired"]["auc"]["hi"]
    # the four-fifths rule in the gate: the race adverse impact ratio is a test metric, and a
    # model below 0.8 is not registered
    (g,) = m["tasks"]["hmda"]["hmda"]["gate"]["guardrails"]
    assert g["metric"] == "air_race" and g["min_value"] == 0.8 and g["action"] == "fail"
    assert g["breached"] == (g["model"] < 0.8)
    assert g["model"] == pytest.approx(a["hmda"]["audit"]["race"]["air_model"])
    serving = json.loads((rep / "serving.json").read_text())
    if g["breached"]:
        assert serving["models"]["hmda"]["registered_model"] is None
        assert "do not ship" in (rep / "rollout.md").read_text()
    assert a["acceptance_curve"]["falls"]
    for task in ("hmda", "scenario"):
        reasons = pd.read_csv(rep / f"analysis/reasons_{task}.csv").fillna("")
        used = set(reasons.filter(like="feature_").to_numpy().ravel()) - {""}
        assert used and used <= set(json.loads((root / "data/loans/features.json").read_text())
                                     ["views"][task])
        assert a[task]["max_reasons_given"] <= 4
        assert a[task]["counterfactuals"]["found"] == a[task]["counterfactuals"]["verified"]
    assert (rep / "analysis/acceptance_curve.png").exists()
    talking = (rep / "talking_points.md").read_text()
    assert "Alice" in talking and "TreeSHAP" in talking


def test_bad_applicants_file_fails_cleanly_and_writes_nothing(loans, tmp_path):
    root, env = loans
    bad = tmp_path / "applicants.csv"
    bad.write_text("n_cards,credit_age_years,debt_k,income_k,utilization,delinquencies,"
                   "inquiries_6m\n3,4,9,50,1.7,0,1\n")
    before = (root / "reports/loans/analysis.json").read_text()
    res = run_cli("pipelines/analyze.py", "case=loans", *SMALL, f"paths.root={root}",
                  f"case.analysis.applicants_path={bad}", env=env)
    assert res.returncode == 2
    assert "utilization" in res.stderr and "expected values in [0, 1]" in res.stderr
    assert (root / "reports/loans/analysis.json").read_text() == before
    assert not list((root / "reports/loans").glob(".*.tmp"))
