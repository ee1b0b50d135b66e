"""`dvc repro` on a temporary copy of the repository: runs every stage, a second run runs none,
and a changed knob reruns exactly the stages that read it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_repo

pytestmark = pytest.mark.slow


def dvc(cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"dvc {' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def set_knob(path: Path, pattern: str, value: str) -> None:
    text = path.read_text()
    new, n = re.subn(pattern, value, text, count=1, flags=re.MULTILINE)
    assert n == 1, pattern
    path.write_text(new)


def test_dvc_repro_runs_once_and_reruns_only_what_changed(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    conf = repo / "conf/case/flights.yaml"
    set_knob(conf, r"^  sample_rows: null", "  sample_rows: 4000")
    set_knob(conf, r"^    n_estimators: \d+", "    n_estimators: 30")
    set_knob(conf, r"^  latency_samples: \d+", "  latency_samples: 20")
    loans = repo / "conf/case/loans.yaml"
    set_knob(loans, r"^    rows: \d+", "    rows: 3000")
    set_knob(loans, r"^  explain_rows: null", "  explain_rows: 30")
    set_knob(loans, r"^    n_estimators: \d+", "    n_estimators: 40")
    accept = repo / "conf/case/acceptance.yaml"
    set_knob(accept, r"^    offers: \d+", "    offers: 15000")
    set_knob(accept, r"^  requests: \d+", "  requests: 20")
    housing = repo / "conf/case/housing.yaml"
    set_knob(housing, r"^    listings: \d+", "    listings: 3000")
    set_knob(housing, r"^    n_estimators: \d+", "    n_estimators: 40")
    eta = repo / "conf/case/eta.yaml"
    set_knob(eta, r"^    trips: \d+", "    trips: 15000")
    set_knob(eta, r"^    n_estimators: \d+", "    n_estimators: 40")
    airbnb = repo / "conf/case/airbnb.yaml"
    set_knob(airbnb, r"^    listings: \d+", "    listings: 2000")
    set_knob(airbnb, r"^    n_estimators: \d+", "    n_estimators: 40")
    set_knob(airbnb, r"^  shap_rows: \d+", "  shap_rows: 100")
    fraud = repo / "conf/case/fraud.yaml"
    set_knob(fraud, r"^    customers: \d+", "    customers: 2000")
    set_knob(fraud, r"^    n_estimators: \d+", "    n_estimators: 40")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "PYTHONPATH": str(repo / "src")}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True,
                       env={**env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    first = dvc(repo, "repro", env=env)
    stages = {f"{s}@{c}" for s in ("prepare", "eda", "features", "train", "evaluate",
                                   "analyze", "report")
              for c in ("flights", "loans", "acceptance", "housing", "eta", "airbnb", "fraud")}
    stages.add("portfolio")
    assert ran(first.stdout) == stages
    assert (repo / "reports/flights/metrics.json").exists()
    assert (repo / "reports/flights/rollout.md").exists()
    assert (repo / "reports/index.html").exists()

    second = dvc(repo, "repro", env=env)
    assert ran(second.stdout) == set()

    set_knob(conf, r"^  gate_min_improvement: [\d.]+", "  gate_min_improvement: 0.02")
    third = dvc(repo, "repro", env=env)
    assert ran(third.stdout) == {"evaluate@flights", "analyze@flights", "report@flights",
                                 "portfolio"}

    set_knob(conf, r"^  huber_delta: \d+", "  huber_delta: 20")
    fourth = dvc(repo, "repro", env=env)
    assert ran(fourth.stdout) == {"train@flights", "evaluate@flights", "analyze@flights",
                                  "report@flights", "portfolio"}

    metrics = dvc(repo, "metrics", "show", "--json", env=env)
    assert "reports/flights/metrics.json" in metrics.stdout
    params = dvc(repo, "params", "diff", env=env)
    assert "huber_delta" in params.stdout and "gate_min_improvement" in params.stdout
