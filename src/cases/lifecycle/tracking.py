"""Everything MLflow: the only module that imports mlflow. A stage owns one MLflow run through
`stage_run`: the tracking URI is bound once, the run is marked FAILED on any error (Ctrl-C
included) and finished exactly once. `train` opens the case's pipeline run (a child run per
candidate, the selected models logged as MLflow 3 logged models); `evaluate`, `analyze` and
`report` each open a child run of it, so a rerun with another config adds a result beside the
earlier one instead of overwriting it, and test metrics land on the logged models themselves."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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


_LAUNCHER: str | None = None  # the MLFLOW_RUN_ID this process was started with (`mlflow run`)


def _client(uri: str):
    import mlflow
    from mlflow.tracking import MlflowClient

    # a stale run id from the environment (left by `mlflow run` or a shell) must not hijack
    # ours; it is kept to link our runs to it (`launched_by_run`)
    global _LAUNCHER
    stale = os.environ.pop("MLFLOW_RUN_ID", None)
    if stale:
        _LAUNCHER = stale
        log.info("ignoring MLFLOW_RUN_ID=%s from the environment", stale)
    mlflow.set_tracking_uri(uri)
    with _creating_store(uri) as new:
        client = MlflowClient(tracking_uri=uri)  # opens the tracking tables (makes them if new)
        if new:
            client.search_registered_models(max_results=1)  # and the registry's
    return client


_OPENED: set[str] = set()  # the SQLite stores this process has opened


@contextmanager
def _creating_store(uri: str) -> Iterator[bool]:
    """Two processes that open a new SQLite store at once (two cases of `make repro`) both find
    it empty, both run its schema migrations, and one fails ("duplicate column name"). A
    process's first opening of a SQLite store is made under a file lock beside it, so the second
    waits and then finds the store made. Yields whether this is that first opening."""
    path = uri.removeprefix("sqlite:///")
    if uri in _OPENED or path == uri or path in ("", ":memory:"):
        yield False
        return
    from filelock import FileLock

    with FileLock(f"{path}.lock"):
        yield True
    _OPENED.add(uri)


def check_server(uri: str, timeout: float = 3.0, tries: int = 2) -> None:
    """Fail fast when an http(s) tracking server does not answer: a stage would otherwise compute
    for minutes and then hang in MLflow's retries (minutes more) when it first logs. Also caps
    MLflow's own retries and timeout for the rest of the process."""
    if not uri.startswith(("http://", "https://")):
        return
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    import urllib.error
    import urllib.request

    from cases.errors import CasebookError

    url = f"{uri.rstrip('/')}/health"
    last: Exception | None = None
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http(s) only
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # it answered (auth, no /health route): the server is up
                return
            last = exc
        except (OSError, ValueError) as exc:
            last = exc
        if attempt + 1 < tries:
            time.sleep(0.5)
    raise CasebookError(f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) does not answer "
                        f"at {url}: {last}; start it, or unset MLFLOW_TRACKING_URI to use "
                        f"sqlite:///<repo>/mlflow.db")


def fail_orphans(uri: str, experiment: str, owner_tag: tuple[str, str], note: str) -> list[str]:
    """Mark FAILED the RUNNING runs of `experiment` that carry `owner_tag` (this folder's lock):
    their process died without closing them (SIGKILL, power loss). Only safe while holding the
    lock, which proves no live process of this folder owns a run."""
    from mlflow.entities import RunTag

    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    key, value = owner_tag
    runs = client.search_runs([exp.experiment_id],
                              filter_string=f"attributes.status = 'RUNNING' and "
                                            f"tags.`{key}` = '{value}'", max_results=1000)
    for run in runs:
        client.log_batch(run.info.run_id, tags=[RunTag("casebook.note", note)])
        client.set_terminated(run.info.run_id, "FAILED")
        log.warning("MLflow run %s was left RUNNING by a process that died; marked FAILED",
                    run.info.run_id)
    return [r.info.run_id for r in runs]


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


def _shown(value: float) -> float:
    """A metric as MLflow stores and shows it: six significant digits (the files keep every
    digit), so the UI's tables do not print 17."""
    return float(f"{float(value):.6g}")


def _now() -> int:
    return int(time.time() * 1000)


class StageRun:
    """One stage's MLflow run, with the client bound to one tracking URI."""

    def __init__(self, client, run_id: str, experiment_id: str):
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float], model_id: str | None = None,
                    dataset: tuple[str, str] | None = None) -> None:
        """Metrics of this run; with `model_id`, metrics of that logged model, measured by this
        run on `dataset` (name, digest), so each evaluation of the model stays on its page."""
        from mlflow.entities import Metric

        _no_active_model()
        name, digest = dataset or (None, None)
        now = _now()
        items = [Metric(k, _shown(v), now, 0, model_id=model_id, dataset_name=name,
                        dataset_digest=digest) for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i:i + 500])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def child(self, name: str, params: Mapping[str, Any], metrics: Mapping[str, float],
              tags: Mapping[str, str]) -> str:
        """A finished child run (one per candidate model), so the UI compares them."""
        from mlflow.entities import Metric, Param

        parent = self.client.get_run(self.run_id)
        inherited = {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")}
        all_tags = {**inherited, **{k: str(v) for k, v in tags.items()},
                    "mlflow.parentRunId": self.run_id}
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        _no_active_model()
        now = _now()
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, _shown(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in params.items()])
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    def log_artifacts(self, paths: Iterable[str | Path], artifact_path: str | None = None) -> None:
        for p in map(Path, paths):
            if p.is_dir():
                self.client.log_artifacts(self.run_id, str(p), artifact_path=(
                    f"{artifact_path}/{p.name}" if artifact_path else p.name))
            elif p.exists():
                self.client.log_artifact(self.run_id, str(p), artifact_path=artifact_path)

    def log_model(self, model: Any, name: str, input_example, code_paths: list[str] | None = None,
                  params: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Log a fitted scikit-learn pipeline with its signature and input example as an MLflow 3
        logged model of this run (its own id, `models:/<model_id>`)."""
        import mlflow
        import skops.io
        from mlflow.models import infer_signature

        _trust_sklearn_experimental()
        # skops is MLflow's safe format; the types it cannot vouch for are our own pipeline steps
        # and LightGBM's, which we name explicitly rather than fall back to pickle
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        proba = hasattr(model, "predict_proba")
        output = model.predict_proba(input_example) if proba else model.predict(input_example)
        signature = infer_signature(input_example, output)
        info = mlflow.sklearn.log_model(  # into the active run: this stage's (`stage_run`)
            model, name=name, signature=signature, input_example=input_example,
            code_paths=code_paths, skops_trusted_types=trusted,
            pip_requirements=_requirements(), params=dict(params or {}) or None,
            pyfunc_predict_fn="predict_proba" if proba else "predict")
        _no_active_model()
        return {"model_uri": info.model_uri, "model_id": getattr(info, "model_id", "") or ""}

    def register(self, model_uri: str, name: str, alias: str | None,
                 tags: Mapping[str, str] | None = None, description: str = "",
                 model_description: str = "") -> str:
        """A new version of registered model `name`, with its tags and description (the model
        card of that version); the registered model itself gets `model_description` and the
        tags every version shares (case, task)."""
        import mlflow

        tags = {k: str(v) for k, v in (tags or {}).items()}
        mv = mlflow.register_model(model_uri, name, tags=tags or None)
        if description:
            self.client.update_model_version(name, mv.version, description=description)
        if model_description:
            self.client.update_registered_model(name, description=model_description)
        for key in ("case", "task", "source"):
            if key in tags:
                self.client.set_registered_model_tag(name, key, tags[key])
        if alias:
            self.client.set_registered_model_alias(name, alias, mv.version)
        return str(mv.version)

    def other(self, run_id: str) -> "StageRun":
        """A handle on another run of the same experiment (the training run, from a later
        stage), to add the results that belong on it."""
        return StageRun(self.client, run_id, self.experiment_id)

    def describe(self, text: str) -> None:
        """The run's description (the markdown the run page shows on top)."""
        self.set_tags({"mlflow.note.content": text})

    def log_dataset(self, name: str, digest: str, source: str, rows: int, context: str) -> None:
        """A dataset input of this run (the Dataset column): its name, the data hash as digest,
        where it came from and its row count, without uploading or re-hashing the data."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=str(digest)[:36], source_type="local",
                          source=json.dumps({"uri": str(source)}),
                          profile=json.dumps({"num_rows": int(rows)}))
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(
            dataset, tags=[InputTag("mlflow.data.context", context)])])

    def log_files(self, files: Mapping[str, Any], artifact_path: str) -> None:
        """Artifacts made in memory: text (str), PNG bytes, a matplotlib figure or a DataFrame
        (CSV), each under `artifact_path/<name>`."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / artifact_path
            folder.mkdir(parents=True)
            for fname, obj in files.items():
                path = folder / fname
                if isinstance(obj, str):
                    path.write_text(obj, encoding="utf-8")
                elif isinstance(obj, bytes):
                    path.write_bytes(obj)
                elif hasattr(obj, "to_csv"):
                    obj.to_csv(path, index=False)
                else:
                    from cases.lifecycle.eda import save

                    save(obj, path)
            self.client.log_artifacts(self.run_id, str(folder), artifact_path=artifact_path)


@contextmanager
def stage_run(uri: str, experiment: str, run_name: str, stage: str, tags: Mapping[str, str],
              parent_run_id: str | None = None, params: Mapping[str, Any] | None = None,
              description: str | None = None) -> Iterator[StageRun]:
    """Open the stage's run (a child of `parent_run_id` when given) as the active run, yield it,
    and finish it once: FINISHED on success, FAILED on any exception, Ctrl-C and SIGTERM
    included."""
    import mlflow

    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    exp_tags = exp.tags if exp else {}
    if exp_tags.get("mlflow.experimentKind") != "custom_model_development":
        # MLflow 3's UI opens an experiment on what its kind says: training runs, not traces
        client.set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
    if description and exp_tags.get("mlflow.note.content") != description:
        client.set_experiment_tag(exp_id, "mlflow.note.content", description)
    all_tags = {**tags, "stage": stage, **_source_tags(stage, tags)}
    if _LAUNCHER:  # set by `mlflow run`: link it, never reuse it
        all_tags["launched_by_run"] = _LAUNCHER
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
        _add_stage(client, parent_run_id, stage)
    else:
        all_tags[STAGES_TAG] = stage
    run = client.create_run(exp_id, run_name=run_name, tags={k: str(v) for k, v in
                                                             all_tags.items()})
    handle = StageRun(client, run.info.run_id, exp_id)
    mlflow.start_run(run_id=handle.run_id)
    try:
        if params:
            handle.log_params(flatten(params))
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "config.json"
                path.write_text(json.dumps(params, indent=2, default=str))
                client.log_artifact(handle.run_id, str(path))
        yield handle
    except BaseException:
        _end(handle.run_id, "FAILED")
        raise
    _end(handle.run_id, "FINISHED")


STAGES_TAG = "stages_ran"  # on the training run: the stages that have run on it, in order


def _add_stage(client, run_id: str, stage: str) -> None:
    """Append `stage` to the training run's `stages_ran` tag (once, in the order they ran)."""
    from mlflow.entities import RunTag

    ran = [s for s in client.get_run(run_id).data.tags.get(STAGES_TAG, "").split(",") if s]
    if stage not in ran:
        client.log_batch(run_id, tags=[RunTag(STAGES_TAG, ",".join([*ran, stage]))])


def _source_tags(stage: str, tags: Mapping[str, str]) -> dict[str, str]:
    """What MLflow's own Source, User and Version columns read."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    out = {"mlflow.source.name": f"cases.stages.{stage}", "mlflow.source.type": "LOCAL",
           "mlflow.user": user}
    if tags.get("git_commit") and tags["git_commit"] != "unknown":
        out["mlflow.source.git.commit"] = str(tags["git_commit"])
    return out


def _no_active_model() -> None:
    """MLflow 3 links every metric logged without a model id to the process's active model,
    which logging or loading a model sets: clear it, so a run's own metrics (CV, latency) stay
    off the models and each model carries only the metrics logged for it."""
    import mlflow

    if mlflow.get_active_model_id() is not None:
        mlflow.clear_active_model()


def _end(run_id: str, status: str) -> None:
    import mlflow

    try:
        mlflow.end_run(status)
    except Exception as exc:  # noqa: BLE001 - never hide the original failure
        log.warning("could not close MLflow run %s: %s", run_id, exc)


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["scikit-learn", "lightgbm", "pandas", "numpy"]
    return [f"{p}=={version(p)}" for p in pkgs]


def _trust_sklearn_experimental() -> None:
    """skops trusts scikit-learn's public estimators, a list that includes the experimental
    ones (IterativeImputer) only once they are enabled: enable them before saving and loading,
    so a model trusted when logged is trusted when loaded in another process."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401


def load_model(uri: str, model_uri: str):
    """A logged model loaded back as MLflow serves it. The stages load only models this
    install logged (its versions pinned in the model: `_requirements`), so MLflow's check of
    them against every installed distribution (a second of CPU per load) is skipped."""
    import mlflow

    _client(uri)
    _trust_sklearn_experimental()
    model = mlflow.pyfunc.load_model(model_uri, suppress_warnings=True)
    _no_active_model()
    return model


def set_alias(uri: str, name: str, alias: str, version: str) -> None:
    _client(uri).set_registered_model_alias(name, alias, str(version))


def alias_version(uri: str, name: str, alias: str) -> str | None:
    """The version `name@alias` points to, or None when the alias (or the model) is absent."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(uri).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


# MLflow 3's UI shows an experiment as GenAI (traces) or model training (runs) by a switch whose
# default is GenAI; the link's `workflowType` sets it, so a link opens on the training runs
_TRAINING_VIEW = "?workflowType=machine_learning"


def experiment_url(ui: str, experiment_id: str) -> str:
    """The experiment's training runs in the MLflow UI at `ui`."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs{_TRAINING_VIEW}"


def run_url(ui: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI at `ui`, in the training view."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{_TRAINING_VIEW}"
