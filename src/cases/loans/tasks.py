"""One binary task per population: approval on HMDA, approval in the scenario. The baseline is
logistic regression (the scorecard a bank already has); the candidate is LightGBM."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.models import lgbm_pipeline, linear_pipeline


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    alpha = float(t["linear_alpha"])

    def logistic(cols: list[str]):
        return lambda: linear_pipeline("binary", cols, [], alpha=alpha, seed=seed, max_iter=2000)

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        return [Candidate("logistic", logistic(cols), {"model": "logistic"}),
                Candidate("lgbm", lambda: lgbm_pipeline("binary", [], params=dict(t["lgbm"]),
                                                        seed=seed), {"model": "lgbm"})]

    tasks = []
    for name in t["tasks"]:
        cols = list(cfg["features"]["views"][name])
        tasks.append(Task(name, "binary", f"approve_{name}", t["selection_metric"][name],
                          candidates, logistic(cols), views=[name]))
    return tasks
