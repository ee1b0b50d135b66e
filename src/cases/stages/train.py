"""train: cross-validate every candidate of every task and view, select, refit on all training
rows, and log it all in the case's MLflow run (a child run per candidate); each task's selected
model is logged as an MLflow logged model, which evaluate scores and registers."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import joblib
import pandas as pd
from omegaconf import DictConfig

import cases
from cases.config import to_container
from cases.lifecycle.contract import Candidate, Task, check_baseline, get_case
from cases.lifecycle.evaluate import scorer
from cases.lifecycle.io import outputs
from cases.lifecycle.selection import (
    choose_folds,
    cross_validate_and_fit,
    describe_folds,
    selection_record,
)
from cases.stages import common
from cases.stages.paths import Paths

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    data = p.feature_data()
    info = p.json("ingest")
    tasks = case.tasks(cfg.case, int(cfg.seed))
    n_folds = int(cfg.case.train.cv_folds)
    with common.open_run(cfg, info, "train", params=to_container(cfg),
                         run_name=f"{case.name}-{info['source']}") as mlrun:
        mlrun.log_dataset(f"{case.name}-train", info["data_hash"], info["source"],
                          len(data.rows("train")), "training")
        selection: dict = {}
        cv_metrics: dict[str, float] = {}
        logged: dict = {}
        fit_seconds: dict = {}
        with outputs() as out:
            models_dir = out.path(p.models)
            for task in tasks:
                rows = data.rows("train", task.target)
                y = rows.frame[task.target]
                folds = choose_folds(data.time_ordered, rows.period,
                                     rows.group if data.grouped else None, n_folds,
                                     int(cfg.seed), y if task.kind != "regression" else None)
                score = scorer(task.kind, task.classes, case.segments, case.extra_metrics,
                               cfg.case)
                for view, cols in data.views.items():
                    if task.views is not None and view not in task.views:
                        continue
                    entry, models = _train_view(case.name, task, view, rows.frame[cols], y, folds,
                                                score, models_dir, mlrun, cfg.case.train)
                    fit_seconds.setdefault(task.name, {})[view] = entry.pop("fit_seconds")
                    selection.setdefault(task.name, {})[view] = entry
                    best = entry["candidates"][entry["selected"]]["cv"]
                    cv_metrics.update({f"{task.name}.{view}.cv_{m}": s["mean"]
                                       for m, s in best.items()})
                    if view == serving_view(task, data.views, cfg.case.primary.view):
                        logged[task.name] = _log_selected(mlrun, case.name, task, view, entry,
                                                          models[entry["selected"]],
                                                          rows.frame[cols])
            out.write_json(p.selection, {
                "cv": describe_folds(data.time_ordered, data.grouped, n_folds,
                                     data.rows("train").period),
                "tasks": selection})
            out.write_json(p.run, {"run_id": mlrun.run_id, "experiment": common.experiment(cfg),
                                   "experiment_id": mlrun.experiment_id, "models": logged,
                                   "fit_seconds": fit_seconds})
        mlrun.log_metrics(cv_metrics)
    return selection


def serving_view(task: Task, views: dict, primary_view: str) -> str:
    """The view a task's model serves from: the primary view, or the task's own first view when
    it is scored on others (loans: each population has its own inputs)."""
    own = [v for v in views if task.views is None or v in task.views]
    return primary_view if primary_view in own else own[0]


def _train_view(case: str, task: Task, view: str, X: pd.DataFrame, y, folds, score,
                models_dir: Path, mlrun, train_cfg) -> tuple[dict, dict]:
    baseline = task.baseline_for(view, list(X.columns))
    candidates = task.candidates(view, list(X.columns))
    check_baseline(case, task.name, view, baseline(), [(c.name, c.build()) for c in candidates])
    cands = [Candidate("baseline", baseline, {"model": "baseline"}), *candidates]
    results, fitted = cross_validate_and_fit(
        cands, X, y, folds, task.kind, score, desc=f"{task.name}/{view}",
        n_classes=len(task.classes) if task.classes else None)
    record = selection_record([r for r in results if r.name != "baseline"],
                              task.selection_metric, str(train_cfg.selection_rule),
                              list(train_cfg.simplicity_order))
    chosen = record.pop("selected")
    entry: dict = {"selected": chosen, "metric": task.selection_metric, **record,
                   "candidates": {}, "fit_seconds": {}}
    target_dir = models_dir / task.name / view
    target_dir.mkdir(parents=True, exist_ok=True)
    for cand, res, (blob, fit_seconds) in zip(cands, results, fitted):
        (target_dir / f"{cand.name}.joblib").write_bytes(blob)
        summary = res.summary()
        mlrun.child(cand.name, {"task": task.name, "view": view, "candidate": cand.name,
                                **cand.params},
                    {**{f"cv_{m}": s["mean"] for m, s in summary.items()},
                     **{f"cv_{m}_std": s["std"] for m, s in summary.items()},
                     "fit_seconds": fit_seconds},
                    {**{k: str(v) for k, v in cand.params.items()},  # model, encoding, ...
                     "task": task.name, "view": view, "candidate": cand.name,
                     "selected": str(cand.name == chosen).lower(),
                     "mlflow.note.content": f"`{cand.name}` for task `{task.name}`, view "
                                            f"`{view}`" + (" (selected)" if cand.name == chosen
                                                           else "")})
        # with each fold's metrics, in the folds' order: an analysis on the same folds (airbnb's
        # robustness) reads the clean fits' scores here instead of fitting them again
        entry["candidates"][cand.name] = {"params": cand.params, "cv": summary,
                                          "folds": res.fold_metrics}
        entry["fit_seconds"][cand.name] = fit_seconds
    best = entry["candidates"][chosen]["cv"][task.selection_metric]["mean"]
    log.info("%s/%s: selected %s (cv %s %.4f)", task.name, view, chosen, task.selection_metric,
             best)
    blob = fitted[[c.name for c in cands].index(chosen)][0]
    return entry, {chosen: joblib.load(io.BytesIO(blob))}


def _log_selected(mlrun, case: str, task: Task, view: str, entry: dict, model,
                  X: pd.DataFrame) -> dict:
    """The selected model as an MLflow logged model, with the case's code so it loads anywhere."""
    code = [str(Path(cases.__file__).resolve().parent)]
    info = mlrun.log_model(model, f"{case}-{task.name}", X.head(5).copy(), code_paths=code,
                           params={"task": task.name, "view": view,
                                   "candidate": entry["selected"]})
    return {**info, "view": view, "candidate": entry["selected"]}
