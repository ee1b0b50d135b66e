"""What flights scores beyond the shared metrics: the tail as a segment, and the outlier
strategies plotted against each other (MAE on all flights against MAE on the tail)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle.eda import figure
from cases.lifecycle.plots import labelled_points


def segments(y_true: np.ndarray, rows: pd.DataFrame, cfg: Mapping) -> dict[str, np.ndarray]:
    """The tail: flights that arrived `tail_min` minutes late or more."""
    return {"tail": np.asarray(y_true, dtype=float) >= float(cfg["metrics"]["tail_min"])}


def strategy_table(results: Mapping, view: str) -> pd.DataFrame:
    test = results["regression"][view]["test"]
    rows = []
    for name, m in test.items():
        rows.append({"candidate": name, "mae": m["mae"], "medae": m["medae"], "rmse": m["rmse"],
                     "tail_mae": m.get("tail_mae", np.nan), "tail_rmse": m.get("tail_rmse", np.nan),
                     "tail_bias": m.get("tail_bias", np.nan)})
    return pd.DataFrame(rows)


def evaluation_plots(results: Mapping, cfg: Mapping) -> dict:
    if "regression" not in results:
        return {}
    out: dict = {}
    frames = []
    for view in results["regression"]:
        table = strategy_table(results, view)
        frames.append(table.assign(view=view))
        fig, ax = figure(f"Outlier strategies on test flights ({view})",
                         "MAE on all test flights (min)",
                         f"MAE on flights {cfg['metrics']['tail_min']}+ min late (min)",
                         size=(8, 5))
        labelled_points(ax, table["mae"], table["tail_mae"], table["candidate"],
                        {results["regression"][view]["selected"]: "selected",
                         "baseline": "baseline"})
        out[f"strategies_{view}"] = fig
    out["strategies"] = pd.concat(frames, ignore_index=True).round(4)
    return out
