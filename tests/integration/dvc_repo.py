"""What the two `dvc repro` test modules share: a git copy of the repository that holds some of
the cases' DVC pipelines (each on a tiny sample), and `dvc` run in it. Two modules, each with
part of the cases, so that the two test workers share the work."""

import os
import re
import subprocess
import sys
from pathlib import Path

from cases.generate import case_pipeline
from tests.conftest import TINY_KNOBS, copy_repo, set_knob


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


# small-sample knobs (patterns match the case configs' own lines): the tests are about what DVC
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


def repo_with(tmp_path: Path, cases: list[str]) -> tuple[Path, dict]:
    """A git copy of the repository whose only case pipelines are `cases` (the others' dvc.yaml
    removed: `dvc repro` runs what the repository holds), on tiny samples; and the environment
    to run `dvc` in it with a tracking store of its own."""
    repo = copy_repo(tmp_path / "repo")
    for case, knobs in SMALL_KNOBS.items():
        if case in cases:
            for pattern, value in [*TINY_KNOBS, *knobs]:
                set_knob(repo / f"conf/case/{case}.yaml", pattern, value)
        else:
            (repo / case_pipeline(case)).unlink()
            (repo / case_pipeline(case)).with_suffix(".lock").unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "PYTHONPATH": str(repo / "src")}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True,
                       env={**env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    return repo, env
