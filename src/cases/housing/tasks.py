"""One task: log price. On the oracle view (nothing missing) the candidates are a regularised
linear model and LightGBM: the ceiling. On each masked view every candidate is one way of
filling square footage in front of the same LightGBM, so the CV table compares fills and nothing
else. The baseline of a masked view is the naive answer to missing data with the same LightGBM:
train on the complete listings only, fill the training median at serving (`drop`), so the gate
asks whether a fill beats not filling; on the oracle view, the mean log price of the zipcode and
bedroom count (backing off to the zipcode)."""

from __future__ import annotations

from typing import Mapping

from cases.errors import CasebookError
from cases.housing.imputers import SQFT_COLUMNS, STRATEGIES, strategy
from cases.lifecycle.bootstrap import log_target_statistics
from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.evaluate import log_target_metrics
from cases.lifecycle.models import GroupBaseline, lgbm_pipeline, linear_pipeline


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    names = list(t["strategies"])
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise CasebookError(f"case.train.strategies: unknown {', '.join(unknown)}; expected some "
                            f"of {', '.join(STRATEGIES)}")
    categorical = list(cfg["features"]["categorical"])

    def price_model():
        return lgbm_pipeline("regression", categorical, params=dict(t["lgbm"]), seed=seed)

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        if view == "oracle":
            numeric = [c for c in cols if c not in categorical]
            return [
                Candidate("linear", lambda: linear_pipeline(
                    "regression", numeric, categorical, alpha=float(t["linear_alpha"]),
                    seed=seed), {"model": "ridge"}),
                Candidate("lgbm", price_model, {"model": "lgbm", "fill": "none (oracle)"}),
            ]
        return [Candidate(name, lambda name=name: strategy(name, cols, price_model(), t, seed),
                          {"model": "lgbm", "fill": name}) for name in names]

    def baseline(view: str, cols: list[str]):
        if view == "oracle":  # nothing missing: the zipcode and bedroom count's mean price
            return lambda: GroupBaseline([["zipcode", "bedrooms"], ["zipcode"]], min_count=10)
        return lambda: strategy("drop", cols, price_model(), t, seed)

    if "drop" in names:
        raise CasebookError("case.train.strategies: 'drop' is the baseline of every masked view "
                            "(the naive answer); remove it from the strategies")
    return [Task("price", "regression", "log_price", t["selection_metric"]["price"], candidates,
                 baseline("oracle", []), view_baseline=baseline)]


def price_metrics(y, pred, rows, cfg) -> dict:
    """R² on log price and the errors in dollars (what a seller hears)."""
    return log_target_metrics(y, pred)


def price_statistics(y, pred, rows, cfg) -> dict:
    """The bootstrap twins of `price_metrics`."""
    return log_target_statistics(y, pred)


def masked_segment(y, rows, cfg) -> dict:
    """The homes whose size the view hides, and the rest (no segments on the oracle view)."""
    living = [c for c in rows.columns if c in SQFT_COLUMNS["sqft_living"]]
    if not living:
        return {}
    masked = rows[living[0]].isna().to_numpy()
    return {"masked": masked, "kept": ~masked}
