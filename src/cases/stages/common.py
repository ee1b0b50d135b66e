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


def run_tags(cfg: DictConfig, info: dict) -> dict[str, str]:
    """Case, data source and hash, row count, seed, git commit and dirty flag."""
    return {"case": cfg.case.name, "source": info["source"], "data_hash": info["data_hash"],
            "rows": str(info["rows"]), "seed": str(cfg.seed), **tracking.git_info(repo_root())}


def open_run(cfg: DictConfig, info: dict, stage: str, parent: str | None = None,
             params: dict | None = None, run_name: str | None = None):
    """The stage's own MLflow run (`tracking.stage_run`), tagged for this case and data."""
    return tracking.stage_run(uri(cfg), experiment(cfg), run_name or stage, stage,
                              run_tags(cfg, info), parent_run_id=parent, params=params,
                              description=f"{cfg.case.title}: {cfg.case.question}")
