"""One context manager owns a stage's MLflow run: FAILED on any error, FINISHED once."""

import pytest

from cases.lifecycle import tracking


def _runs(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("casebook-test")
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def test_stage_run_is_failed_on_error_and_finished_on_success(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with tracking.stage_run(uri, "casebook-test", "parent", "train", {"case": "t"}) as parent:
        parent.log_metrics({"cv_mae": 1.5})
    with pytest.raises(KeyboardInterrupt):
        with tracking.stage_run(uri, "casebook-test", "evaluate", "evaluate", {"case": "t"},
                                parent_run_id=parent.run_id, params={"gate": 0.01}):
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM through the CLI's handler
    runs = _runs(uri)
    assert runs["parent"].info.status == "FINISHED"
    assert runs["evaluate"].info.status == "FAILED"
    assert runs["evaluate"].data.tags["mlflow.parentRunId"] == parent.run_id
    assert runs["evaluate"].data.tags["stage"] == "evaluate"
    assert runs["evaluate"].data.params["gate"] == "0.01"


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    """`make repro` starts two cases at once on a fresh clone: both create mlflow.db. Without the
    lock in `tracking._create_store` both run the schema migrations and one fails."""
    import subprocess
    import sys

    # every process imports MLflow, then waits for the others (a file each), then opens it
    code = ("import pathlib, sys, time\nfrom cases.lifecycle import tracking\n"
            "import mlflow.store.tracking.sqlalchemy_store\nd = pathlib.Path(sys.argv[1])\n"
            "(d / sys.argv[3]).touch()\nwhile len(list(d.glob('ready*'))) < 2: time.sleep(0.005)\n"
            "tracking._client(sys.argv[2]).search_experiments()")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), uri, f"ready{i}"],
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(errors)[-3000:]
