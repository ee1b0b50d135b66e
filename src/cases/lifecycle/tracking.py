"""Everything MLflow. The only module that imports mlflow: stages call these functions with run
ids, so a later stage logs into the parent run that the train stage opened."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PARAM_VALUE_LIMIT = 500


def tracking_uri(configured: str | None, root: str | Path) -> str:
    """`MLFLOW_TRACKING_URI` wins (a remote server), then the config, then SQLite at the root."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    if configured:
        return configured
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def _client(uri: str):
    import mlflow
    from mlflow.tracking import MlflowClient

    # a stale run id from the environment (left by `mlflow run` or a shell) must not hijack ours
    stale = os.environ.pop("MLFLOW_RUN_ID", None)
    if stale:
        log.info("ignoring MLFLOW_RUN_ID=%s from the environment", stale)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def git_info(root: str | Path) -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


def flatten(d: Mapping, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            text = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
            out[key] = text[:PARAM_VALUE_LIMIT]
    return out


def start_pipeline_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, str],
                       config: Mapping) -> str:
    """Open the parent run of one pipeline run: tags, the composed config as an artifact and its
    leaves as dotted params. Returns the run id; the run stays open until `finish_run`."""
    from mlflow.entities import Param, RunTag

    launcher = os.environ.get("MLFLOW_RUN_ID")  # set by `mlflow run`: link it, never reuse it
    client = _client(uri)
    if launcher:
        tags = {**tags, "launched_by_run": launcher}
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id, run_name=run_name, tags=dict(tags))
    params = [Param(k, v) for k, v in flatten(config).items()]
    for i in range(0, len(params), 100):
        client.log_batch(run.info.run_id, params=params[i:i + 100])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config, indent=2, default=str))
        client.log_artifact(run.info.run_id, str(path))
    client.log_batch(run.info.run_id, tags=[RunTag("stage", "train")])
    return run.info.run_id


def log_child_run(uri: str, parent_run_id: str, name: str, params: Mapping[str, Any],
                  metrics: Mapping[str, float], tags: Mapping[str, str]) -> str:
    """A child run per candidate model, so the UI compares candidates side by side."""
    from mlflow.entities import Metric, Param

    client = _client(uri)
    parent = client.get_run(parent_run_id)
    inherited = {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")}
    all_tags = {**inherited, **{k: str(v) for k, v in tags.items()},
                "mlflow.parentRunId": parent_run_id}
    run = client.create_run(parent.info.experiment_id, run_name=name, tags=all_tags)
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    client = _client(uri)
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for i in range(0, len(items), 500):
        client.log_batch(run_id, metrics=items[i:i + 500])


def set_tags(uri: str, run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    _client(uri).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_artifacts(uri: str, run_id: str, paths: Iterable[str | Path],
                  artifact_path: str | None = None) -> None:
    client = _client(uri)
    for p in paths:
        p = Path(p)
        if p.is_dir():
            client.log_artifacts(run_id, str(p), artifact_path=(
                f"{artifact_path}/{p.name}" if artifact_path else p.name))
        elif p.exists():
            client.log_artifact(run_id, str(p), artifact_path=artifact_path)


def log_model(uri: str, run_id: str, model: Any, name: str, input_example,
              code_paths: list[str] | None = None) -> dict[str, str]:
    """Log a fitted scikit-learn pipeline with its signature and input example (MLflow 3:
    `name=`, the model gets its own id, `models:/<model_id>`)."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    _client(uri)
    # skops is MLflow's safe format; the types it cannot vouch for are our own pipeline steps
    # and LightGBM's, which we name explicitly rather than fall back to pickle
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    output = model.predict_proba(input_example) if hasattr(model, "predict_proba") else (
        model.predict(input_example))
    signature = infer_signature(input_example, output)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.sklearn.log_model(
            model, name=name, signature=signature, input_example=input_example,
            code_paths=code_paths, skops_trusted_types=trusted,
            pip_requirements=_requirements(),
            pyfunc_predict_fn="predict_proba" if hasattr(model, "predict_proba") else "predict",
        )
    return {"model_uri": info.model_uri, "model_id": getattr(info, "model_id", "") or ""}


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["scikit-learn", "lightgbm", "pandas", "numpy"]
    return [f"{p}=={version(p)}" for p in pkgs]


def register(uri: str, model_uri: str, name: str, alias: str | None) -> str:
    import mlflow

    client = _client(uri)
    mv = mlflow.register_model(model_uri, name)
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return str(mv.version)


def load_model(uri: str, model_uri: str):
    import mlflow

    _client(uri)
    return mlflow.pyfunc.load_model(model_uri)


def finish_run(uri: str, run_id: str, failed: bool = False) -> None:
    try:
        _client(uri).set_terminated(run_id, "FAILED" if failed else "FINISHED")
    except Exception as exc:  # noqa: BLE001 - never hide the original failure
        log.warning("could not close MLflow run %s: %s", run_id, exc)


def run_url(uri: str, experiment_id: str, run_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"


def experiment_id_of(uri: str, run_id: str) -> str:
    return _client(uri).get_run(run_id).info.experiment_id
