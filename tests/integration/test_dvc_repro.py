"""`dvc repro` on a temporary copy of the repository holding the flights and loans pipelines
(test_dvc_repro_cases.py runs the other five): runs every stage, a second run runs none, a
rerun from scratch reproduces every data-derived output bit for bit, a changed knob reruns
exactly the stages that read it, an edit to a case's code reruns exactly the stages that run
that code, and a gate-knob rerun keeps both evaluations side by side in MLflow."""

import json
import re

import pytest
import yaml

from cases.generate import case_pipeline
from cases.stages.paths import RUN_FILES, repo_path
from tests.conftest import STAGE_SCRIPTS, set_knob
from tests.integration.dvc_repo import dvc, ran, repo_with

pytestmark = pytest.mark.slow
CASES = ["flights", "loans"]


def test_dvc_repro_runs_once_and_reruns_only_what_changed(tmp_path):
    repo, env = repo_with(tmp_path, CASES)
    conf = repo / "conf/case/flights.yaml"
    first = dvc(repo, "repro", env=env)
    stages = {f"{s}-{c}" for s in STAGE_SCRIPTS for c in CASES}
    stages.add("portfolio")
    assert ran(first.stdout) == stages
    assert (repo / "reports/flights/metrics.json").exists()
    assert (repo / "reports/flights/rollout.md").exists()
    index = (repo / "reports/index.html").read_text()
    assert set(re.findall(r'href="(\w+)/rollout\.html"', index)) == set(CASES)

    second = dvc(repo, "repro", env=env)
    assert ran(second.stdout) == set()

    # a forced rerun of every stage of a case reproduces its lock, but for the run files
    loans = repo / case_pipeline("loans")
    lock = yaml.safe_load(loans.with_suffix(".lock").read_text())["stages"]
    assert ran(dvc(repo, "repro", "--force", str(loans), env=env).stdout) == {
        f"{s}-loans" for s in STAGE_SCRIPTS}
    relock = yaml.safe_load(loans.with_suffix(".lock").read_text())["stages"]
    run_files = {repo_path(k, "loans") for k in RUN_FILES}
    changed = {o["path"] for s in STAGE_SCRIPTS for o, n in
               zip(lock[s]["outs"], relock[s]["outs"]) if o["md5"] != n["md5"]}
    assert changed <= run_files, changed

    # code edits rerun exactly the stages that run the code
    story = repo / "src/cases/flights/story.py"
    story.write_text(story.read_text() + "\n# an edit to the story\n")
    assert ran(dvc(repo, "repro", env=env).stdout) <= {"report-flights", "portfolio"}
    feats = repo / "src/cases/flights/features.py"
    feats.write_text(feats.read_text() + "\n# an edit to the features\n")
    assert "features-flights" in (rerun := ran(dvc(repo, "repro", env=env).stdout))
    assert not rerun & {"prepare-flights", "eda-flights"}

    set_knob(conf, r"^  gate_min_improvement: [\d.]+", "  gate_min_improvement: 0.5")
    third = dvc(repo, "repro", env=env)
    assert ran(third.stdout) == {"evaluate-flights", "analyze-flights", "report-flights",
                                 "portfolio"}
    # both gate settings stay side by side: two evaluation runs, the model carries both
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    train_run = json.loads((repo / "data/flights/run.json").read_text())
    evaluations = client.search_runs(
        [train_run["experiment_id"]],
        f"tags.stage = 'evaluate' and tags.mlflow.parentRunId = '{train_run['run_id']}'")
    gates = sorted(r.data.params["evaluate.gate_min_improvement"] for r in evaluations)
    assert gates == ["0.01", "0.5"]
    model = client.get_logged_model(train_run["models"]["regression"]["model_id"])
    assert {m.run_id for m in model.metrics if m.key == "test_mae"} == {
        r.info.run_id for r in evaluations}

    set_knob(conf, r"^  huber_delta: \d+", "  huber_delta: 20")
    fourth = dvc(repo, "repro", env=env)
    assert {"train-flights", "evaluate-flights", "report-flights"} <= ran(fourth.stdout)
    assert not ran(fourth.stdout) & {"prepare-flights", "eda-flights", "features-flights"}

    metrics = dvc(repo, "metrics", "show", "--json", env=env)
    assert "reports/flights/metrics.json" in metrics.stdout
    params = dvc(repo, "params", "diff", env=env)
    assert "huber_delta" in params.stdout and "gate_min_improvement" in params.stdout
