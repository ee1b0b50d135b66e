"""What the tracked stages (train, evaluate, analyze, report) share: the tracking URI, the case's
experiment and the tags every run carries."""

from __future__ import annotations

from omegaconf import DictConfig

from cases.config import repo_root
from cases.lifecycle import tracking


def uri(cfg: DictConfig) -> str:
    return tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)


def experiment(cfg: DictConfig) -> str:
    return f"{cfg.tracking.experiment_prefix}{cfg.case.name}"


def owner_tag(cfg: DictConfig) -> tuple[str, str]:
    """The tag naming the folder (host and `paths.data`) whose lock a run was opened under, so
    orphaned runs are closed only by the next holder of that same lock."""
    import hashlib
    import socket
    from pathlib import Path

    where = f"{socket.gethostname()}:{Path(cfg.paths.data).resolve()}"
    return "casebook.folder", hashlib.sha256(where.encode()).hexdigest()[:16]


def run_tags(cfg: DictConfig, info: dict) -> dict[str, str]:
    """Case, data source and hash, row count, seed, git commit and dirty flag, folder."""
    key, value = owner_tag(cfg)
    return {"case": cfg.case.name, "source": info["source"], "data_hash": info["data_hash"],
            "rows": str(info["rows"]), "seed": str(cfg.seed), key: value,
            **tracking.git_info(repo_root())}


def open_run(cfg: DictConfig, info: dict, stage: str, parent: str | None = None,
             params: dict | None = None, run_name: str | None = None):
    """The stage's own MLflow run (`tracking.stage_run`), tagged for this case and data."""
    return tracking.stage_run(uri(cfg), experiment(cfg), run_name or stage, stage,
                              run_tags(cfg, info), parent_run_id=parent, params=params,
                              description=f"{cfg.case.title}: {cfg.case.question}")


def evaluated_run(p) -> tuple[dict, dict]:
    """serving.json and run.json, checked to belong to one training run: models retrained after
    their evaluation must not be analysed or reported with the old test results."""
    from cases.errors import CasebookError

    serving, train_run = p.json("serving"), p.json("run")
    if serving.get("train_run_id") != train_run["run_id"]:
        raise CasebookError(
            f"{p.serving} evaluates training run {serving.get('train_run_id')}, but {p.run} is "
            f"training run {train_run['run_id']} (the models were retrained since); rerun "
            f"evaluate")
    return serving, train_run


def start_tracking(stage: str, cfg: DictConfig) -> None:
    """Before a tracked stage's work, under the case's lock (`guard`): the tracking server must
    answer (fail fast), this folder's runs left RUNNING by a killed process are marked FAILED,
    and a champion move a killed `evaluate` published but did not make is finished."""
    import os

    tracking.check_server(uri(cfg))
    tracking.fail_orphans(uri(cfg), experiment(cfg), owner_tag(cfg),
                          f"left RUNNING by a process that died; marked FAILED by the {stage} "
                          f"stage (pid {os.getpid()}) holding the case's lock")
    from cases.stages.paths import Paths

    p = Paths(cfg)
    if p.serving.exists():
        serving = p.json("serving")
        if serving.get("alias_state") == "pending":
            move_aliases(cfg, serving)


def move_aliases(cfg: DictConfig, serving: dict) -> None:
    """Step 3 of `stages.evaluate`'s order: `@champion` to each registered version serving.json
    names, then serving.json marked done. Idempotent, so a killed move is simply redone."""
    from cases.lifecycle.io import outputs
    from cases.stages.guard import kill_point
    from cases.stages.paths import Paths

    for i, m in enumerate(m for m in serving["models"].values() if m["registered_model"]):
        if i:
            kill_point("evaluate:alias_partial")
        tracking.set_alias(uri(cfg), m["registered_model"], m["alias"], m["version"])
    kill_point("evaluate:alias_set")
    if serving.get("alias_state") == "pending":
        with outputs() as out:
            out.write_json(Paths(cfg).serving, {**serving, "alias_state": "done"})
