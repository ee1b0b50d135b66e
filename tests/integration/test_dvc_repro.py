"""`dvc repro` on a temporary copy of the repository: runs every stage, a second run runs none,
a rerun from scratch reproduces every data-derived output bit for bit, a changed knob reruns
exactly the stages that read it, an edit to a case's code reruns exactly the stages that run
that code, and a gate-knob rerun keeps both evaluations side by side in MLflow."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cases.generate import case_pipeline
from cases.stages.paths import RUN_FILES, repo_path
from tests.conftest import STAGE_SCRIPTS, TINY_KNOBS, copy_repo, set_knob

pytestmark = pytest.mark.slow


def dvc(cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"dvc {' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def ran(output: str) -> set[str]:
    """The stages a `dvc repro` ran, as `<stage>-<case>` (`pipelines/<case>/dvc.yaml:<stage>`)
    or `portfolio` (the root dvc.yaml's)."""
    return {f"{stage}-{case}" if case else stage for case, stage in
            re.findall(r"Running stage '(?:pipelines/(\w+)/dvc\.yaml:)?([^']+)'", output)}


# small-sample knobs (patterns match the case configs' own lines): the test is about what DVC
# runs and reruns, so every case runs on a tiny sample, with `TINY_KNOBS`; the case tests check
# what the stages compute on larger samples
SMALL_KNOBS = {
    "flights": [(r"^  sample_rows: null", "  sample_rows: 4000")],
    "loans": [(r"^    rows: \d+", "    rows: 1500"),
              (r"^  explain_rows: null", "  explain_rows: 10")],
    "acceptance": [(r"^    offers: \d+", "    offers: 10000"),
                   (r"^  requests: \d+", "  requests: 10"),
                   (r"^  tradeoff_requests: \d+", "  tradeoff_requests: 10"),
                   (r"^  forest: {n_estimators: \d+", "  forest: {n_estimators: 10")],
    "housing": [(r"^    listings: \d+", "    listings: 2000"),
                (r"^  imputer_lgbm: {n_estimators: \d+", "  imputer_lgbm: {n_estimators: 20"),
                (r"^  learning_curve: \[[\d, ]+\]", "  learning_curve: [500, 1000]"),
                (r"^  timing_rows: \d+", "  timing_rows: 1000")],
    "eta": [(r"^    trips: \d+", "    trips: 12000"),
            (r"^  clusters: \d+", "  clusters: 12"),
            (r"^  learning_curve: \[[\d, ]+\]", "  learning_curve: [2000]")],
    "airbnb": [(r"^    listings: \d+", "    listings: 1500"),
               (r"^  forest: {n_estimators: \d+", "  forest: {n_estimators: 10"),
               (r"^  robustness_folds: \d+", "  robustness_folds: 2"),
               (r"^  shap_rows: \d+", "  shap_rows: 50")],
    "fraud": [(r"^    customers: \d+", "    customers: 1500"),
              (r"^  shap_alerts: \d+", "  shap_alerts: 50")],
}


def test_dvc_repro_runs_once_and_reruns_only_what_changed(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    for case, knobs in SMALL_KNOBS.items():
        for pattern, value in [*TINY_KNOBS, *knobs]:
            set_knob(repo / f"conf/case/{case}.yaml", pattern, value)
    conf = repo / "conf/case/flights.yaml"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "PYTHONPATH": str(repo / "src")}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True,
                       env={**env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    first = dvc(repo, "repro", env=env)
    stages = {f"{s}-{c}" for s in STAGE_SCRIPTS for c in SMALL_KNOBS}
    stages.add("portfolio")
    assert ran(first.stdout) == stages
    assert (repo / "reports/flights/metrics.json").exists()
    assert (repo / "reports/flights/rollout.md").exists()
    assert (repo / "reports/index.html").exists()

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
