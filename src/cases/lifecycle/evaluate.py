"""Metrics that fit each kind of question, the gate against the baseline, and evaluation plots."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

GREATER_IS_BETTER = {"auc", "auc_ovr", "r2", "accuracy", "average_precision"}


def greater_is_better(metric: str) -> bool:
    return metric.startswith("recall") or any(
        metric == m or metric.endswith("_" + m) for m in GREATER_IS_BETTER)


def regression_metrics(y, pred, segments: Mapping[str, np.ndarray] | None = None) -> dict:
    """MAE, median absolute error and RMSE, overall and for each named segment (e.g. the tail)."""
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    out = _reg(y, pred, "")
    for name, mask in (segments or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            out.update(_reg(y[mask], pred[mask], f"{name}_"))
            out[f"{name}_bias"] = float(np.mean(pred[mask] - y[mask]))
    return out


def _reg(y, pred, prefix: str) -> dict:
    err = pred - y
    return {
        f"{prefix}mae": float(np.mean(np.abs(err))),
        f"{prefix}medae": float(np.median(np.abs(err))),
        f"{prefix}rmse": float(np.sqrt(np.mean(err**2))),
    }


def log_target_metrics(y, pred) -> dict:
    """For a log target (log price): R² on the log scale and the errors back in dollars."""
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    dollars = np.abs(np.exp(pred) - np.exp(y))
    ss = float(np.sum((y - y.mean()) ** 2))
    return {"r2": 1 - float(np.sum((y - pred) ** 2)) / ss if ss > 0 else float("nan"),
            "mae_dollars": float(dollars.mean()), "medae_dollars": float(np.median(dollars))}


def binary_metrics(y, proba, n_bins: int = 10) -> dict:
    from sklearn import metrics as skm  # here: claims (report) imports this module

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    out = {
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, n_bins),
        "positive_rate": float(y.mean()),
    }
    if 0 < y.sum() < len(y):
        out["auc"] = float(skm.roc_auc_score(y, p))
        out["average_precision"] = float(skm.average_precision_score(y, p))
    return out


def multiclass_metrics(y, proba, labels) -> dict:
    """Log loss, one-vs-rest AUC, accuracy and the recall of every class (rare ones included).
    `y` holds class positions 0..K-1; `labels` names them."""
    from sklearn import metrics as skm  # here: claims (report) imports this module

    y = np.asarray(y).astype(int)
    proba = np.clip(np.asarray(proba, dtype=float), 1e-9, None)
    proba = proba / proba.sum(axis=1, keepdims=True)
    k = len(labels)
    pred = proba.argmax(axis=1)
    out = {
        "log_loss": float(skm.log_loss(y, proba, labels=list(range(k)))),
        "accuracy": float(skm.accuracy_score(y, pred)),
    }
    present = [c for c in range(k) if (y == c).any()]
    if len(present) > 1:
        aucs = [skm.roc_auc_score(y == c, proba[:, c]) for c in present]
        out["auc_ovr"] = float(np.mean(aucs))
    for c in present:
        out[f"recall_{labels[c]}"] = float((pred[y == c] == c).mean())
    return out


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    table = calibration_table(y, p, n_bins)
    return float((table["count"] * (table["mean_predicted"] - table["observed_rate"]).abs()).sum()
                 / max(table["count"].sum(), 1))


def calibration_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of predicted probability: mean prediction against observed rate."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y})
    g = frame.groupby("bin")
    return pd.DataFrame({
        "mean_predicted": g["p"].mean(),
        "observed_rate": g["y"].mean(),
        "count": g.size(),
    }).reset_index()


def partial_dependence(predict, X: pd.DataFrame, feature: str, grid,
                       hold: Mapping[str, float] | None = None) -> np.ndarray:
    """Average prediction as `feature` moves over `grid`, every other input at each row's own
    value (and `hold` fixed for every row): what the model learned about one input, read from
    predict calls only."""
    base = X.copy()
    for k, v in (hold or {}).items():
        base[k] = float(v)
    out = []
    for g in grid:
        base[feature] = float(g)
        out.append(float(np.mean(predict(base))))
    return np.asarray(out)


def latency_ms(predict: Callable, batches: Iterable, warmup) -> dict:
    """p50 and p99 wall time (ms) of one `predict` call per batch, after one warm-up call: what a
    service answering one request at a time would see."""
    predict(warmup)
    timings = []
    for batch in batches:
        t0 = time.perf_counter()
        predict(batch)
        timings.append((time.perf_counter() - t0) * 1000)
    return {"p50": float(np.percentile(timings, 50)), "p99": float(np.percentile(timings, 99)),
            "n": len(timings)}


def gate(model_value: float, baseline_value: float, metric: str, min_improvement: float,
         interval: list[float] | None = None, guardrails: list[dict] | None = None) -> dict:
    """Does the model beat the baseline by at least `min_improvement` (relative)? With the
    bootstrap `interval` of the relative improvement, its lower bound must clear it: a gap the
    resamples cannot tell from zero never passes, and neither does a tie (a lower bound of 0).
    A guardrail breached with action "fail" fails the gate too."""
    if greater_is_better(metric):
        improvement = (model_value - baseline_value) / max(abs(baseline_value), 1e-12)
    else:
        improvement = (baseline_value - model_value) / max(abs(baseline_value), 1e-12)
    lower = improvement if interval is None else interval[0]
    guardrails = list(guardrails or [])
    failed_guard = any(g["breached"] and g["action"] == "fail" for g in guardrails)
    out = {
        "metric": metric,
        "model": model_value,
        "baseline": baseline_value,
        "relative_improvement": float(improvement),
        "min_improvement": float(min_improvement),
        "passed": bool(lower is not None and lower >= min_improvement and lower > 0
                       and not failed_guard),
    }
    if interval is not None:
        out["improvement_interval"] = [interval[0], interval[1]]
    out["guardrails"] = guardrails
    return out


def by_kind(kind: str, classes, segments: Callable, extra: Callable, cfg,
            family: Mapping[str, Callable]) -> Callable:
    """`f(y_true, prediction, rows) -> {metric: ...}` for one task: `family[kind]` (regression:
    `(y, pred, segments)`, binary: `(y, proba)`, multiclass: `(y, proba, classes)`) with the
    case's segments (e.g. the tail) and its extra metrics (e.g. dollars from a log target). The
    one dispatch both the test metrics (`scorer`) and their bootstrap statistics
    (`bootstrap.statistics`) go through, so the two cannot disagree on which metrics a task has."""
    if kind not in ("regression", "binary", "multiclass"):
        raise ValueError(f"unknown task kind {kind!r}; expected regression, binary or multiclass")

    def score(y_true, pred, rows) -> dict:
        if kind == "regression":
            out = family["regression"](y_true, pred, segments(y_true, rows, cfg))
        elif kind == "binary":
            out = family["binary"](y_true, pred)
        else:
            out = family["multiclass"](y_true, pred, classes)
        return {**out, **extra(y_true, pred, rows, cfg)}

    return score


METRICS = {"regression": regression_metrics, "binary": binary_metrics,
           "multiclass": multiclass_metrics}


def scorer(kind: str, classes, segments: Callable, extra: Callable, cfg) -> Callable:
    """`score(y_true, prediction, rows) -> metrics` for one task (`by_kind` with the metrics)."""
    return by_kind(kind, classes, segments, extra, cfg, METRICS)
