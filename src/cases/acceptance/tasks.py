"""One task: accept or not. Baseline: the driver's recent acceptance rate, as is. Candidates:
logistic regression, random forest, LightGBM."""

from __future__ import annotations

from typing import Mapping

from cases.acceptance.models import ColumnRateBaseline, forest_pipeline
from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.models import lgbm_pipeline, linear_pipeline
from cases.lifecycle.selection import serial_forest


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        return [
            Candidate("logistic", lambda: linear_pipeline(
                "binary", cols, [], alpha=float(t["linear_alpha"]), max_iter=1000, seed=seed),
                {"model": "logistic"}),
            Candidate("forest", lambda: serial_forest(forest_pipeline("binary", dict(t["forest"]),
                                                                      seed)),
                      {"model": "random_forest", **dict(t["forest"])}),
            Candidate("lgbm", lambda: lgbm_pipeline("binary", [], params=dict(t["lgbm"]),
                                                    seed=seed), {"model": "lgbm"}),
        ]

    return [Task("accept", "binary", "accepted", t["selection_metric"]["accept"], candidates,
                 lambda: ColumnRateBaseline("recent_acceptance_rate"))]
