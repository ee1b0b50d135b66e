"""One binary task per population: approval on HMDA, approval in the scenario. The baseline is a
naive scorecard, a logistic regression on the applicant's debt against income alone
(`case.train.scorecard`); the candidates are logistic regression on every input and LightGBM."""

from __future__ import annotations

from typing import Mapping

from cases.errors import CasebookError
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
        scorecard = list(t["scorecard"][name])
        unknown = [c for c in scorecard if c not in cols]
        if unknown:
            raise CasebookError(f"case.train.scorecard.{name}: {', '.join(unknown)} not in the "
                                f"{name} view ({', '.join(cols)})")
        tasks.append(Task(name, "binary", f"approve_{name}", t["selection_metric"][name],
                          candidates, logistic(scorecard), views=[name]))
    return tasks
