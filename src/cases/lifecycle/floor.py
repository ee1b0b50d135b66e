"""The Bayes floor: the best any model could do on the test rows of a simulated world.

A simulator knows, for every row, what fixes the limit: the noise-free target (regression) or the
true probability (binary), with everything no model could know at prediction time counted as
noise (the noise drawn per row; a latent taste of a host or driver no training row shows). The
table carries it in a truth column (`case.evaluate.floor`: task -> column), which is never a
feature (the features stage refuses it in a view). Scored like any model, that prediction's
metrics are the floor: on the same resamples as the candidates (`cases.lifecycle.bootstrap`),
so its interval, the paired interval of "model − floor" and the interval of the share of the
gap the model closes, (baseline − model) / (baseline − floor), all come from the same draws.

Only the selection metric's floor is a true lower bound: the truth column holds the prediction
that is optimal for that metric (e.g. the mean of the log duration for RMSLE), and the other
metrics (MAE, AUC...) are those of the same prediction, quoted beside it.

Real data: the truth is unknown, nothing is estimated, and the entry says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cases.errors import CasebookError
from cases.lifecycle import bootstrap as bs

NO_FLOOR = "no floor (truth unknown)"
NEAR_FLOOR = 0.05  # a model within 5% of the floor on its selection metric needs no more work


def truth_columns(case_cfg: Mapping) -> dict[str, str]:
    """{task: truth column} from `case.evaluate.floor` (empty: no task has a floor)."""
    return {str(k): str(v) for k, v in dict(case_cfg["evaluate"].get("floor") or {}).items()}


def truth_prediction(frame, task: str, case_cfg: Mapping, source: str) -> np.ndarray | None:
    """The Bayes-optimal prediction of `task` on these rows, or None when the truth is unknown
    (real data, or a task with no truth column). A simulated run whose table lacks the declared
    column, or has it missing on some rows, is an error naming the column."""
    column = truth_columns(case_cfg).get(task)
    if column is None:
        return None
    if column not in frame.columns:
        if source == "simulator":
            raise CasebookError(f"case.evaluate.floor.{task}: truth column {column!r} is not in "
                                f"the simulated test rows; the simulator must write it")
        return None
    values = frame[column].to_numpy(dtype=float)
    if np.isnan(values).all() and source != "simulator":
        return None
    if np.isnan(values).any():
        raise CasebookError(f"case.evaluate.floor.{task}: truth column {column!r} is missing in "
                            f"{int(np.isnan(values).sum())} of {len(values)} test rows")
    return values


def above_floor(model: float, floor: float, metric: str) -> float:
    """How far the model is from the floor, relative to the floor: (model − floor) / |floor|
    for a loss, (floor − model) / |floor| for a score (AUC, average precision)."""
    from cases.lifecycle.evaluate import greater_is_better

    gap = floor - model if greater_is_better(metric) else model - floor
    return float(gap / max(abs(floor), 1e-12))


def gap_closed(model, baseline, floor) -> np.ndarray:
    """(baseline − model) / (baseline − floor): 0 = no better than the baseline, 1 = at the
    floor; the same for scores, whose signs cancel. NaN where the baseline is at the floor."""
    model, baseline, floor = (np.asarray(v, dtype=float) for v in bs.common(model, baseline,
                                                                            floor))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(baseline != floor, (baseline - model) / (baseline - floor), np.nan)


def summarise(points: Mapping[str, Mapping[str, float]], floor: Mapping[str, float],
              boot: Mapping, selected: str, metric: str, column: str,
              level: float = bs.LEVEL) -> dict:
    """The floor entry of one task and view: the floor's metrics and intervals, the selected
    model minus the floor (paired), the share of the gap from the baseline to the floor the
    model closes (with its interval), and how far above the floor it is on `metric`.
    `boot` holds the candidates', the baseline's and the floor's ("floor") values on the same
    resamples."""
    model, base = points[selected], points["baseline"]
    share = gap_closed(boot[selected][metric], boot["baseline"][metric], boot["floor"][metric])
    point_share = gap_closed([model[metric]], [base[metric]], [floor[metric]])[0]
    return {
        "available": True, "truth": column, "metric": metric,
        "test": dict(floor),
        "interval": {m: bs.interval(boot["floor"][m], level) for m in floor},
        "model_minus_floor": bs.paired(model, floor, boot[selected], boot["floor"], level),
        "baseline_minus_floor": bs.paired(base, floor, boot["baseline"], boot["floor"], level),
        "gap_closed": None if np.isnan(point_share) else float(point_share),
        "gap_closed_interval": bs.interval(share, level),
        "above_floor": above_floor(model[metric], floor[metric], metric),
        "near_floor": bool(above_floor(model[metric], floor[metric], metric) <= NEAR_FLOOR),
        "near_floor_threshold": NEAR_FLOOR,
    }


def unavailable() -> dict:
    return {"available": False, "note": NO_FLOOR}


def line(entry: Mapping | None, digits: int = 4) -> str:
    """One line for a card or a rollout: the floor, its interval and the share of the gap the
    model closes, or the note that there is none."""
    if not entry or not entry.get("available"):
        return (entry or {}).get("note", NO_FLOOR)
    m = entry["metric"]
    lo, hi = entry["interval"][m]
    share = entry.get("gap_closed")
    slo, shi = entry.get("gap_closed_interval") or [None, None]
    closed = ("n/a" if share is None else f"{share:.1%}" + (
        f" [{slo:.1%}, {shi:.1%}]" if slo is not None else ""))
    from cases.lifecycle.evaluate import greater_is_better

    side = "below" if greater_is_better(m) else "above"  # a score's floor is a ceiling
    return (f"Bayes floor {m} {entry['test'][m]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]; "
            f"the model is {entry['above_floor']:.1%} {side} it and closes {closed} of the gap "
            f"from the baseline")


def rollout_section(metrics: dict) -> list[str]:
    """The Bayes floor of every task and view (lifecycle/floor.py): how far the selected model
    is from the best any model could do, or that the truth is unknown."""
    import pandas as pd

    from cases.lifecycle.eda import markdown_table

    rows = []
    for t, views in metrics["tasks"].items():
        for v, r in views.items():
            f = r.get("floor") or unavailable()
            if not f["available"]:
                rows.append({"task": t, "view": v, "floor": f["note"]})
                continue
            m = f["metric"]
            rows.append({"task": t, "view": v, "metric": m,
                         "model": f"{r['test'][r['selected']][m]:.4f}",
                         "floor": f"{f['test'][m]:.4f} {_interval(f['interval'][m])}",
                         "baseline": f"{r['test']['baseline'][m]:.4f}",
                         "above floor": f"{f['above_floor']:.1%}",
                         "gap closed": "n/a" if f["gap_closed"] is None else
                         f"{f['gap_closed']:.1%} {_pct_interval(f['gap_closed_interval'])}"})
    if not any(r.get("model") for r in rows):
        return ["## The Bayes floor", "", f"Every task: {NO_FLOOR}.", ""]
    return ["## The Bayes floor", "",
            "The best any model could do on the test rows: the simulator's truth scored like a "
            "model (noise no feature carries counted as noise), on the same bootstrap draws; "
            "'gap closed' is (baseline − model) / (baseline − floor). Within "
            f"{NEAR_FLOOR:.0%} of the floor, more work on the model cannot pay much.", "",
            markdown_table(pd.DataFrame(rows)), ""]


def _interval(bounds) -> str:
    lo, hi = bounds or (None, None)
    return "" if lo is None else f"[{lo:.4f}, {hi:.4f}]"


def _pct_interval(bounds) -> str:
    lo, hi = bounds or (None, None)
    return "" if lo is None else f"[{lo:.1%}, {hi:.1%}]"
