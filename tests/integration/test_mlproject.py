"""`mlflow run . -P case=flights --env-manager local` on a temporary copy of the repository."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_KNOBS, copy_repo, set_knob

pytestmark = pytest.mark.slow


def test_mlflow_run_main_entry_point(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    for pattern, value in TINY_KNOBS:  # the test is about the entry point, not the figures
        set_knob(repo / "conf/case/flights.yaml", pattern, value)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(repo / "src")}
    res = subprocess.run([str(Path(sys.executable).parent / "mlflow"), "run", ".", "-P",
                          "case=flights", "-P", "sample_rows=3000", "--env-manager", "local"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((repo / "reports/flights/metrics.json").read_text())
    assert metrics["rows"] == 3000
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run_id = json.loads((repo / "data/flights/run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    launcher = run.data.tags["launched_by_run"]  # the project's own run, linked, not reused
    assert launcher != run_id and client.get_run(launcher).info.status == "FINISHED"
