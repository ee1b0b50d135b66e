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


GAP_STEPS = 4  # a jump of more than this many typical steps between periods starts a new block


def period_blocks(periods) -> np.ndarray:
    """The block of each sorted unique period. Training data that comes in separate stretches
    (files of different years, quarters) has gaps between its periods: each stretch is a block.
    Integer periods only (week or month numbers); without a gap, every period is a block."""
    periods = np.unique(np.asarray(periods))
    if len(periods) < 2 or not np.issubdtype(periods.dtype, np.integer):
        return np.arange(len(periods))
    steps = np.diff(periods)
    gap = steps > GAP_STEPS * np.median(steps)
    return np.concatenate([[0], np.cumsum(gap)]) if gap.any() else np.arange(len(periods))


def expanding_time_folds(period: pd.Series, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each fold validates on one later period and trains on every period before it. When the
    training periods come in separate stretches (see `period_blocks`), each fold validates on a
    whole later stretch instead, the most recent last, so selection sees the kind of gap the test
    has (up to `n_folds` folds: one fewer than the stretches)."""
    values = np.asarray(period)
    periods = np.unique(values)
    blocks = period_blocks(periods)
    if blocks[-1] < len(periods) - 1:  # stretches with gaps between them
        block_of = blocks[np.searchsorted(periods, values)]
        return [(np.flatnonzero(block_of < b), np.flatnonzero(block_of == b))
                for b in range(max(1, blocks[-1] + 1 - n_folds), blocks[-1] + 1)]
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


def cross_validate_and_fit(candidates: Sequence, X: pd.DataFrame, y: pd.Series,
                           folds: list[tuple[np.ndarray, np.ndarray]], kind: str,
                           score: Callable[[np.ndarray, np.ndarray, pd.DataFrame], dict],
                           desc: str = "cv", n_classes: int | None = None, refit: bool = True,
                           n_workers: int | None = None,
                           ) -> tuple[list[CVResult], list[tuple[bytes, float]]]:
    """Every candidate fitted on every fold and scored (`score(y_true, prediction, rows)`
    returns metrics), and with `refit` also fitted on all rows: its joblib
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


SELECTION_RULES = ("one_se", "best")


def select(results: Sequence[CVResult], metric: str, rule: str = "one_se",
           order: Sequence[str] | None = None) -> str:
    """The selected candidate's name under `rule` (see `selection_record`)."""
    return selection_record(results, metric, rule, order)["selected"]


def selection_record(results: Sequence[CVResult], metric: str, rule: str = "one_se",
                     order: Sequence[str] | None = None) -> dict:
    """Which candidate to pick, and why. `best`: the best mean CV metric (ties go to the simpler
    candidate). `one_se`: a candidate whose mean is worse than the best by less than one
    standard error cannot be told apart from it, and the simplest of those is taken, by `order`
    (see `simplicity_rank`; the better mean among equally simple ones).

    The standard error is that of the mean fold-by-fold difference to the best candidate
    (sd / sqrt(folds)): every candidate is scored on the same folds, so what the folds share (a
    month with more delays, a harder week) cancels, and only how the two models differ counts,
    as in the paired test intervals of the evaluate stage. The spread of one model's folds
    would mostly measure how different the folds are.
    Returns {selected, rule, best, within_noise, order, reason, vs_best}."""
    if rule not in SELECTION_RULES:
        raise CasebookError(f"case.train.selection_rule={rule!r}; expected one of "
                            f"{', '.join(SELECTION_RULES)}")
    sign = -1.0 if greater_is_better(metric) else 1.0
    folds = {}
    for r in results:
        values = [f.get(metric) for f in r.fold_metrics]
        if not values or any(v is None for v in values):
            raise CasebookError(f"selection metric {metric!r} not computed; available: "
                                f"{', '.join(sorted(r.summary()))}")
        folds[r.name] = np.asarray(values, dtype=float)
    means = {n: float(v.mean()) for n, v in folds.items()}
    names = [r.name for r in results]
    rank = simplicity_rank(names, order)
    simplest_first = sorted(names, key=lambda n: (rank[n], names.index(n)))
    best = min(names, key=lambda n: (sign * means[n], rank[n], names.index(n)))

    def se(n: str) -> float:
        diff = folds[n] - folds[best]
        return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0

    within = [best] if rule == "best" else [
        n for n in simplest_first if sign * (means[n] - means[best]) <= se(n) + 1e-12]
    chosen = min(within, key=lambda n: (rank[n], sign * means[n], names.index(n)))
    if rule == "best":
        reason = f"{chosen} has the best mean CV {metric} ({means[chosen]:#.4g})."
    elif chosen == best:
        others = [n for n in within if n != best]
        reason = (f"{best} has the best mean CV {metric} ({means[best]:#.4g}) and "
                  + ("no other candidate is within one standard error of it." if not others
                     else f"is also the simplest of the {len(within)} candidates within one "
                          f"standard error of it."))
    else:
        reason = (f"{best} has the best mean CV {metric} ({means[best]:#.4g}), but {chosen} "
                  f"({means[chosen]:#.4g}) is within one standard error of it (fold-by-fold "
                  f"difference {means[chosen] - means[best]:+#.3g}, standard error "
                  f"{se(chosen):#.3g}) and simpler by the declared order.")
    return {"selected": chosen, "rule": rule, "best": best, "within_noise": within,
            "order": simplest_first, "reason": reason,
            # the figures the reason quotes, per candidate: against the best, fold by fold
            "vs_best": {n: {"cv_mean": means[n], "difference": means[n] - means[best],
                            "standard_error": se(n)} for n in names}}


def simplicity_rank(names: Sequence[str], order: Sequence[str] | None) -> dict[str, int]:
    """Each candidate's place in the declared simplicity order (`case.train.simplicity_order`,
    simplest first): the first entry equal to its name or to the part before a '-' (`linear`
    covers `linear-huber`). No order: the declaration order of the candidates."""
    if not order:
        return {n: i for i, n in enumerate(names)}
    rank = {}
    for n in names:
        hits = [i for i, entry in enumerate(order) if n == entry or n.startswith(f"{entry}-")]
        if not hits:
            raise CasebookError(f"candidate {n!r} is not in case.train.simplicity_order "
                                f"({', '.join(order)}); add it (or its prefix before '-')")
        rank[n] = hits[0]
    return rank


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


def describe_folds(time_ordered: bool, grouped: bool, n_folds: int, period=None) -> str:
    if not time_ordered:
        return (f"{n_folds} shuffled folds of whole groups (e.g. hosts)" if grouped
                else f"{n_folds} shuffled folds")
    blocks = period_blocks(period) if period is not None else np.arange(0)
    if len(blocks) and blocks[-1] < len(blocks) - 1:
        n = min(n_folds, int(blocks[-1]))
        return (f"{n} expanding time fold{'s' if n > 1 else ''} over {blocks[-1] + 1} separate "
                f"stretches of training data: each validates on a whole later stretch and trains "
                f"on every stretch before it"
                + (", holding out a different set of groups in each" if grouped else ""))
    return (f"{n_folds} expanding time folds: each validates on one later training period and "
            f"trains on every period before it"
            + (", holding out a different set of groups (e.g. drivers) in each" if grouped else ""))
