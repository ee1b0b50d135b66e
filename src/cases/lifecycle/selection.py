"""Model selection by cross-validation: expanding time folds when the data is a time series
(never a random split for a forecast), shuffled K-fold otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import KFold, StratifiedKFold
from tqdm.auto import tqdm

from cases.errors import CasebookError
from cases.lifecycle.evaluate import greater_is_better

log = logging.getLogger(__name__)


def expanding_time_folds(period: pd.Series, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each fold validates on one later period and trains on every period before it."""
    values = np.asarray(period)
    periods = np.unique(values)
    if len(periods) < n_folds + 1:
        raise CasebookError(
            f"time-ordered CV needs at least {n_folds + 1} training periods for {n_folds} folds; "
            f"the training rows span {len(periods)} ({', '.join(map(str, periods))})"
        )
    folds = []
    for val_period in periods[-n_folds:]:
        train_idx = np.flatnonzero(values < val_period)
        val_idx = np.flatnonzero(values == val_period)
        folds.append((train_idx, val_idx))
    return folds


def time_group_folds(period: pd.Series, groups: pd.Series,
                     n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding time folds that also hold out a set of groups (drivers): fold k validates on
    the k-th later period for the groups in bucket k, and trains on earlier periods of the
    other groups only, so neither a group's future nor the group itself is seen in training."""
    time_folds = expanding_time_folds(period, n_folds)
    bucket = np.asarray(groups).astype(np.int64) % n_folds
    folds = []
    for k, (train_idx, val_idx) in enumerate(time_folds):
        folds.append((train_idx[bucket[train_idx] != k], val_idx[bucket[val_idx] == k]))
    return folds


def group_folds(groups: pd.Series, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold on shuffled groups (e.g. hosts): every group's rows land in one fold only."""
    from sklearn.model_selection import GroupKFold

    g = np.asarray(groups)
    if len(np.unique(g)) < n_folds:
        raise CasebookError(f"grouped CV needs at least {n_folds} groups, got {len(np.unique(g))}")
    return list(GroupKFold(n_folds, shuffle=True, random_state=seed).split(
        np.zeros(len(g)), groups=g))


def shuffled_folds(n_rows: int, n_folds: int, seed: int,
                   y=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold on shuffled rows; stratified by `y` (class labels) when given."""
    if y is not None:
        return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(
            np.zeros(n_rows), np.asarray(y)))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(np.arange(n_rows)))


def predict_for(kind: str, model, X: pd.DataFrame, n_classes: int | None = None) -> np.ndarray:
    """Point predictions for regression, probabilities for classification (positive class for
    binary; for multiclass one column per class position 0..K-1, even for classes a training
    fold never saw), which is what every metric function takes."""
    if kind == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if kind == "binary":
        return proba[:, 1]
    full = np.zeros((len(X), n_classes or proba.shape[1]))
    full[:, np.asarray(model.classes_).astype(int)] = proba
    return full


class SerialForestRegressor(RandomForestRegressor):
    """A random forest that fits its trees on `n_jobs` threads but predicts on one.

    scikit-learn's threaded predict adds each tree's output to a shared array in whichever order
    the threads finish, so one fitted forest gives predictions that differ in the last bits from
    call to call, and with them every CV score, test metric and plot made from them. Trees are
    seeded one by one, so the parallel fit is reproducible; only the sum needs one order.
    """

    def predict(self, X):
        n_jobs, self.n_jobs = self.n_jobs, 1
        try:
            return super().predict(X)
        finally:
            self.n_jobs = n_jobs


class SerialForestClassifier(RandomForestClassifier):
    """The classifier twin of `SerialForestRegressor`: probabilities summed in tree order."""

    def predict_proba(self, X):
        n_jobs, self.n_jobs = self.n_jobs, 1
        try:
            return super().predict_proba(X)
        finally:
            self.n_jobs = n_jobs


def serial_forest(pipeline):
    """`pipeline` with its final random forest swapped for the serial-predict twin (same
    parameters, unfitted), so a forest built by a shared helper predicts in one order too."""
    twin = {RandomForestRegressor: SerialForestRegressor,
            RandomForestClassifier: SerialForestClassifier}.get(type(pipeline.steps[-1][1]))
    if twin is not None:
        name, forest = pipeline.steps[-1]
        pipeline.steps[-1] = (name, twin(**forest.get_params()))
    return pipeline


@dataclass
class CVResult:
    name: str
    params: dict
    fold_metrics: list[dict] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        frame = pd.DataFrame(self.fold_metrics)
        return {m: {"mean": float(frame[m].mean()), "std": float(frame[m].std(ddof=0))}
                for m in frame.columns}


def cross_validate(candidates: Sequence, X: pd.DataFrame, y: pd.Series,
                   folds: list[tuple[np.ndarray, np.ndarray]], kind: str,
                   score: Callable[[np.ndarray, np.ndarray, pd.DataFrame], dict],
                   desc: str = "cv", n_classes: int | None = None) -> list[CVResult]:
    """Fit every candidate on every fold; `score(y_true, prediction, rows)` returns metrics."""
    return cross_validate_and_fit(candidates, X, y, folds, kind, score, desc, n_classes,
                                  refit=False)[0]


def cross_validate_and_fit(candidates: Sequence, X: pd.DataFrame, y: pd.Series,
                           folds: list[tuple[np.ndarray, np.ndarray]], kind: str,
                           score: Callable[[np.ndarray, np.ndarray, pd.DataFrame], dict],
                           desc: str = "cv", n_classes: int | None = None, refit: bool = True,
                           n_workers: int | None = None,
                           ) -> tuple[list[CVResult], list[tuple[bytes, float]]]:
    """`cross_validate`, and with `refit` every candidate also fitted on all rows: its joblib
    file (bytes) and fit seconds per candidate. One-thread fits run side by side
    (`parallel.run_fits`); scores and files are the same bits as one fit after another (a
    model is dumped where it was fitted: one sent back from a worker would dump to other
    bytes)."""
    from cases.lifecycle.parallel import Job, run_fits

    predict = partial(_predict_rows, kind, n_classes)
    jobs = [Job(c.build(), train_idx, val_idx, predict)
            for c in candidates for train_idx, val_idx in folds]
    if refit:
        jobs += [Job(c.build(), then=_dumped, here=True) for c in candidates]
    with tqdm(total=len(jobs), desc=desc, unit="fit", leave=False, mininterval=1.0) as bar:
        done = run_fits(jobs, X, y, n_workers, progress=bar.update)
    results = [CVResult(c.name, dict(c.params)) for c in candidates]
    for k, (pred, _) in enumerate(done[:len(candidates) * len(folds)]):
        val_idx = folds[k % len(folds)][1]
        results[k // len(folds)].fold_metrics.append(
            score(y.iloc[val_idx].to_numpy(), pred, X.iloc[val_idx]))
    return results, done[len(candidates) * len(folds):]


def _predict_rows(kind: str, n_classes: int | None, model, X: pd.DataFrame) -> np.ndarray:
    return predict_for(kind, model, X, n_classes)


def _dumped(model, X: pd.DataFrame) -> bytes:  # noqa: ARG001 - a `Job.then`
    import io

    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def select(results: Sequence[CVResult], metric: str) -> str:
    """The candidate with the best mean CV metric; ties go to the earlier (simpler) candidate."""
    best_name, best_value = None, None
    sign = -1.0 if greater_is_better(metric) else 1.0
    for r in results:
        summary = r.summary()
        if metric not in summary:
            raise CasebookError(f"selection metric {metric!r} not computed; available: "
                                f"{', '.join(sorted(summary))}")
        value = sign * summary[metric]["mean"]
        if best_value is None or value < best_value - 1e-12:
            best_name, best_value = r.name, value
    return best_name  # type: ignore[return-value]


def choose_folds(time_ordered: bool, period, groups, n_folds: int, seed: int,
                 labels=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Time-ordered data: expanding time folds (also holding out groups such as drivers when the
    case has them); otherwise shuffled folds of whole groups (hosts) when the case has groups,
    else shuffled folds, stratified by class `labels` when given."""
    if time_ordered and groups is not None:
        return time_group_folds(period, groups, n_folds)
    if time_ordered:
        return expanding_time_folds(period, n_folds)
    if groups is not None:
        return group_folds(groups, n_folds, seed)
    return shuffled_folds(len(labels) if labels is not None else len(period), n_folds, seed,
                          labels)


def describe_folds(time_ordered: bool, grouped: bool, n_folds: int) -> str:
    if not time_ordered:
        return (f"{n_folds} shuffled folds of whole groups (e.g. hosts)" if grouped
                else f"{n_folds} shuffled folds")
    return (f"{n_folds} expanding time folds: each validates on one later training period and "
            f"trains on every period before it"
            + (", holding out a different set of groups (e.g. drivers) in each" if grouped else ""))
