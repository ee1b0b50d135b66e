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
