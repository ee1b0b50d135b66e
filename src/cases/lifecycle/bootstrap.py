"""Cluster-bootstrap intervals of test metrics, and paired intervals of differences between models.

Test rows are rarely independent: a stormy day delays many flights at once, a host prices all of
their listings alike, a driver refuses many offers. So a resample draws whole *units* (days,
hosts, drivers; single rows where the rows are independent) with replacement, and every row of a
drawn unit comes along. Every model of a task and view is scored on the *same* resamples, so the
difference between two models is paired: its interval is narrow when the models err on the same
rows, and exactly [0, 0] for two identical models.

Speed: a resample is a vector of counts, how many times each unit was drawn (a multinomial draw),
never a copy of the rows. Metrics that are ratios of sums over rows (MAE, RMSE, log loss, Brier,
accuracy, recalls, R², calibration error) need only the per-unit sums of a few row vectors: all
models' metrics come from one matrix product (resamples x units) @ (units x sums). Quantiles,
ranks and precision-recall figures (median errors, AUC, average precision, recall at an alert
rate) need row weights in the model's score order: they are computed on blocks of resamples at
once, vectorised over rows; AUC with few units (days) comes from a units x units matrix of
positive-negative pairs instead, computed once per model, and AUC and the precision-recall
figures with many units (drivers, rows) from running sums over the positive and over the
negative rows alone, whose counts are exact integers: the same floats as the row weights give.

The point value of every statistic (all counts 1) equals the metric `cases.lifecycle.evaluate`
computes with scikit-learn; a test checks it for every kind of task.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.features import INTERNAL, Rows

LEVEL = 0.95
BLOCK_ELEMENTS = 4_000_000  # resamples x rows held at once by the row-wise statistics
UNIT_MATRIX_MAX = 6_000_000  # cells of a units x rows matrix: above it, row weights instead


# ---- the unit a case's rows are not independent over ---------------------------------------------

def unit_ids(rows: Rows, spec: Mapping | None) -> tuple[str, np.ndarray]:
    """(unit name, one code per row) from `case.evaluate.bootstrap_unit`: `{name, columns,
    width, timezone}`. `columns` are columns of the test rows (`_period` and `_group` are the
    feature table's period and group); a unit is one distinct combination of their values. A
    `width` bins the first column: a number for a numeric column (86400: days of seconds), a
    pandas frequency for a datetime (`1D`), read in `timezone` when given. No columns: every row
    is its own unit."""
    spec = dict(spec or {})
    name = str(spec.get("name") or "row")
    columns = list(spec.get("columns") or [])
    if not columns:
        return name, np.arange(len(rows))
    internal = {INTERNAL["period"]: rows.period, INTERNAL["group"]: rows.group}
    parts = []
    for i, col in enumerate(columns):
        if col in internal:
            values = pd.Series(internal[col])
        elif col in rows.frame.columns:
            values = rows.frame[col].reset_index(drop=True)
        else:
            raise CasebookError(
                f"case.evaluate.bootstrap_unit: column {col!r} is not in the test rows; available: "
                f"{', '.join(map(str, rows.frame.columns))}, {', '.join(internal)}")
        if i == 0 and spec.get("width") is not None:
            values = _binned(values, spec["width"], spec.get("timezone"), col)
        parts.append(values)
    codes = pd.MultiIndex.from_arrays(parts).factorize()[0] if len(parts) > 1 else \
        pd.factorize(parts[0])[0]
    if (codes < 0).any():
        raise CasebookError(f"case.evaluate.bootstrap_unit: {', '.join(columns)} missing in "
                            f"{int((codes < 0).sum())} test rows")
    return name, codes


def _binned(values: pd.Series, width, timezone, col: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        if timezone:
            values = values.dt.tz_convert(timezone) if values.dt.tz is not None else \
                values.dt.tz_localize(timezone)
        return values.dt.floor(str(width))
    if isinstance(width, str) or not pd.api.types.is_numeric_dtype(values):
        raise CasebookError(f"case.evaluate.bootstrap_unit.width={width!r}: a number bins a "
                            f"numeric column, a frequency ('1D') a datetime; {col!r} is "
                            f"{values.dtype}")
    return np.floor(values.astype(float) / float(width))


# ---- resamples --------------------------------------------------------------------------------

class Resamples:
    """`n` resamples of the units: `counts[b, c]` is how often unit c was drawn in resample b
    (each resample draws as many units as there are)."""

    def __init__(self, units: np.ndarray, n: int, seed: int, n_rowwise: int | None = None):
        self.units, uniques = pd.factorize(np.asarray(units))
        self.n_units = len(uniques)
        self.n = int(n)
        # statistics computed from row weights (many units) use only the first resamples
        self.n_rowwise = min(self.n, int(n_rowwise or n))
        if self.n < 1 or self.n_units < 1:
            raise CasebookError(f"bootstrap: {self.n} resamples of {self.n_units} units")
        rng = np.random.default_rng(seed)
        self.counts = np.empty((self.n, self.n_units), dtype=np.int32)
        step = max(1, BLOCK_ELEMENTS // self.n_units)
        for start in range(0, self.n, step):
            stop = min(start + step, self.n)
            draws = rng.integers(0, self.n_units, size=(stop - start, self.n_units))
            offsets = np.arange(stop - start)[:, None] * self.n_units
            self.counts[start:stop] = np.bincount(
                (draws + offsets).ravel(), minlength=(stop - start) * self.n_units
            ).reshape(stop - start, self.n_units)

    def blocks(self, width: int, n: int | None = None):
        """Slices of the first `n` resamples (default all), small enough that a block times
        `width` columns fits in memory."""
        n = self.n if n is None else n
        step = max(1, BLOCK_ELEMENTS // max(width, 1))
        for start in range(0, n, step):
            yield slice(start, min(start + step, n))

    def row_weights(self, rows: np.ndarray):
        """(slice, weights) blocks over the first `n_rowwise` resamples: the weight of each of
        `rows` (positions, in the order given) in each resample of the slice."""
        units = self.units[rows]
        for sl in self.blocks(len(rows), self.n_rowwise):
            yield sl, self.counts[sl][:, units].astype(float)

    def running(self, sl: slice, rows: np.ndarray) -> np.ndarray:
        """Resamples in `sl` x (len(rows) + 1): column k holds the weight of the first k of
        `rows` (positions, in the order given) in each resample, column 0 nothing. Weights are
        counts, so these are exact integers (each row weighs at most the number of units)."""
        dtype = np.int32 if (len(rows) + 1) * max(self.n_units, 1) < 2**31 else np.int64
        c = self.counts[sl]
        out = np.zeros((len(c), len(rows) + 1), dtype=dtype)
        np.cumsum(np.take(c, self.units[rows], axis=1), axis=1, dtype=dtype, out=out[:, 1:])
        return out

    def cumulative(self, rows: np.ndarray, values: np.ndarray | None = None) -> np.ndarray | None:
        """units x len(rows): the running sum, unit by unit, of `values` (default 1) over `rows`
        in the order given; None when that matrix would be too large (many units)."""
        m = len(rows)
        if self.n_units * m > UNIT_MATRIX_MAX:
            return None
        out = np.zeros((self.n_units, m))
        out[self.units[rows], np.arange(m)] = 1.0 if values is None else values
        return np.cumsum(out, axis=1)

    def first_reaching(self, cum: np.ndarray, counts: np.ndarray, target: np.ndarray,
                       strict: bool) -> np.ndarray:
        """For each resample of `counts` (block x units), the first position k whose weighted
        running total (counts @ cum[:, k]) exceeds `target` (strict) or reaches it: a binary
        search over positions, vectorised over resamples."""
        left = np.zeros(len(counts), dtype=np.int64)
        right = np.full(len(counts), cum.shape[1] - 1, dtype=np.int64)
        while (left < right).any():
            mid = (left + right) // 2
            at = (counts * cum[:, mid].T).sum(axis=1)
            done = at > target if strict else at >= target
            right = np.where(done, mid, right)
            left = np.where(done, left, mid + 1)
        return left

    def unit_sums(self, values: np.ndarray) -> np.ndarray:
        """Per-unit sums of each column of `values` (rows x k) -> units x k."""
        from scipy import sparse

        onehot = sparse.csr_matrix((np.ones(len(self.units)), (self.units,
                                    np.arange(len(self.units)))),
                                   shape=(self.n_units, len(self.units)))
        return np.asarray(onehot @ values)


# ---- statistics: a metric as a function of row weights -----------------------------------------

class Stat:
    """A metric that can be recomputed on any resample. Additive statistics list `columns` (row
    vectors) and `combine` their weighted sums; the others compute from row weights."""

    columns: list[np.ndarray] = []

    def combine(self, totals: np.ndarray) -> np.ndarray:  # totals: (resamples, len(columns))
        raise NotImplementedError

    def resample(self, rs: Resamples) -> np.ndarray:  # only for non-additive statistics
        raise NotImplementedError

    def point(self) -> float:
        raise NotImplementedError

    @property
    def additive(self) -> bool:
        return bool(self.columns)


class Additive(Stat):
    """`fn` of weighted sums of row vectors, e.g. mean = sum(w * v) / sum(w)."""

    def __init__(self, columns: Sequence[np.ndarray], fn: Callable[[np.ndarray], np.ndarray]):
        self.columns = [np.asarray(c, dtype=float) for c in columns]
        self.fn = fn

    def combine(self, totals):
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.fn(totals)

    def point(self):
        return float(self.combine(np.array([[c.sum() for c in self.columns]]))[0])


def mean_of(values, mask=None) -> Additive:
    values = np.asarray(values, dtype=float)
    mask = np.ones(len(values)) if mask is None else np.asarray(mask, dtype=float)
    return Additive([values * mask, mask], lambda t: t[:, 0] / t[:, 1])


def root_mean_of(values, mask=None) -> Additive:
    values = np.asarray(values, dtype=float)
    mask = np.ones(len(values)) if mask is None else np.asarray(mask, dtype=float)
    return Additive([values * mask, mask], lambda t: np.sqrt(t[:, 0] / t[:, 1]))


def r2_of(y, pred) -> Additive:
    """1 - SS_res / SS_tot with SS_tot = sum(w y^2) - (sum(w y))^2 / sum(w)."""
    y = np.asarray(y, dtype=float)
    res = (y - np.asarray(pred, dtype=float)) ** 2
    return Additive([y, y ** 2, res, np.ones(len(y))],
                    lambda t: 1 - t[:, 2] / (t[:, 1] - t[:, 0] ** 2 / t[:, 3]))


def calibration_error_of(y, p, n_bins: int = 10) -> Additive:
    """Expected calibration error on equal-width bins: sum over bins of |sum(p - y)| / n."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    cols = [np.where(bins == b, p - y, 0.0) for b in range(n_bins)] + [np.ones(len(y))]
    return Additive(cols, lambda t: np.abs(t[:, :-1]).sum(axis=1) / t[:, -1])


class Quantile(Stat):
    """The q-quantile of `values` (rows in `mask`), linear interpolation as `np.percentile`."""

    def __init__(self, values, q: float, mask=None):
        values = np.asarray(values, dtype=float)
        self.rows = np.flatnonzero(np.ones(len(values), bool) if mask is None else
                                   np.asarray(mask, bool))
        order = np.argsort(values[self.rows], kind="stable")
        self.rows = self.rows[order]
        self.sorted = values[self.rows]
        self.q = float(q)

    def point(self):
        return float(np.percentile(self.sorted, 100 * self.q)) if len(self.sorted) else np.nan

    def resample(self, rs):
        if not len(self.rows):
            return np.full(rs.n, np.nan)
        v = self.sorted
        cum = rs.cumulative(self.rows)
        if cum is not None:  # few units: binary search on the units' running counts
            out = np.empty(rs.n)
            for sl in rs.blocks(rs.n_units):
                counts = rs.counts[sl].astype(float)
                total = counts @ cum[:, -1]
                pos = self.q * (total - 1)
                lo = np.floor(pos)
                i_lo = rs.first_reaching(cum, counts, lo, strict=True)
                i_hi = rs.first_reaching(cum, counts, np.minimum(lo + 1, total - 1), strict=True)
                value = v[i_lo] + (pos - lo) * (v[i_hi] - v[i_lo])
                out[sl] = np.where(total >= 1, value, np.nan)
            return out
        # many units: each resample's running count over the sorted rows (exact integers), and
        # a binary search in every resample at once
        out = np.empty(rs.n_rowwise)
        for sl in rs.blocks(len(self.rows), rs.n_rowwise):
            cum = rs.running(sl, self.rows)[:, 1:]
            total = cum[:, -1].astype(float)
            pos = self.q * (total - 1)
            lo = np.floor(pos)
            i_lo = _first_above(cum, lo)
            i_hi = _first_above(cum, np.minimum(lo + 1, total - 1))
            value = v[i_lo] + (pos - lo) * (v[i_hi] - v[i_lo])
            out[sl] = np.where(total >= 1, value, np.nan)
        return out


def _first_above(cum: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each row of `cum` (nondecreasing along each row), the first position whose value
    exceeds that row's `target` (`np.searchsorted(..., side="right")`; the last position when
    none does): a binary search, vectorised over rows."""
    rows = np.arange(len(cum))
    left = np.zeros(len(cum), dtype=np.int64)
    right = np.full(len(cum), cum.shape[1] - 1, dtype=np.int64)
    while (left < right).any():
        mid = (left + right) // 2
        done = cum[rows, mid] > target
        right = np.where(done, mid, right)
        left = np.where(done, left, mid + 1)
    return left


class _Ranked(Stat):
    """Base of the statistics of a binary label `y` ranked by a `score`: rows sorted by score
    (descending unless `ascending`), with the start of each group of tied scores."""

    def __init__(self, y, score, ascending: bool):
        y = np.asarray(y, dtype=float)
        score = np.asarray(score, dtype=float)
        key = score if ascending else -score
        self.order = np.argsort(key, kind="stable")
        self.y = y[self.order]
        s = key[self.order]
        self.starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        self.tied = len(self.starts) < len(s)

    def _grouped(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative weights per group of tied scores."""
        wp = w * self.y
        wn = w - wp
        if self.tied:
            wp = np.add.reduceat(wp, self.starts, axis=1)
            wn = np.add.reduceat(wn, self.starts, axis=1)
        return wp, wn

    def point(self):
        return float(self._compute(np.ones((1, len(self.y))))[0])

    def resample(self, rs):
        return self.by_row_weights(rs)

    def by_row_weights(self, rs) -> np.ndarray:
        """The statistic on the first `n_rowwise` resamples from every row's weight (`_compute`):
        the reference the faster paths reproduce bit for bit."""
        out = np.empty(rs.n_rowwise)
        for sl, w in rs.row_weights(self.order):
            out[sl] = self._compute(w)
        return out

    def _compute(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _sides(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Positions (in score order) of the positive and of the negative rows, and each row's
        group of tied scores; None unless `y` is 0/1."""
        pos, neg = np.flatnonzero(self.y == 1), np.flatnonzero(self.y == 0)
        if len(pos) + len(neg) != len(self.y):
            return None
        group = np.repeat(np.arange(len(self.starts)), np.diff(np.r_[self.starts, len(self.y)]))
        return pos, neg, group

    def _running(self, rs, pos: np.ndarray, neg: np.ndarray):
        """(slice, cp, cn) blocks over the first `n_rowwise` resamples: cp[:, k] is the weight
        of the first k positive rows in score order (`Resamples.running`), cn the same of the
        negative rows. These are exact integers: any order of adding them gives the float the
        row-weight path gives. The blocks are those of the row-weight path
        (`Resamples.row_weights`): a sum over thresholds may add in another order in another
        block shape."""
        for sl in rs.blocks(len(self.y), rs.n_rowwise):
            yield sl, rs.running(sl, self.order[pos]), rs.running(sl, self.order[neg])


class AUC(_Ranked):
    """Area under the ROC curve: the weighted share of (positive, negative) pairs ranked right,
    ties counting one half (as `roc_auc_score`)."""

    def __init__(self, y, score):
        super().__init__(y, score, ascending=True)

    def _compute(self, w):
        wp, wn = self._grouped(w)
        below = np.cumsum(wn, axis=1) - wn
        with np.errstate(divide="ignore", invalid="ignore"):
            return (wp * (below + 0.5 * wn)).sum(axis=1) / (wp.sum(axis=1) * wn.sum(axis=1))

    def _by_positives(self, rs) -> np.ndarray:
        """Many units: each positive row's weight times the weight of the negatives ranked
        below it (half of those tied with it), from running sums over the negative rows only.
        Every term is a multiple of one half, so the sums are exact and equal `_compute`'s."""
        sides = self._sides()
        if sides is None:
            return self.by_row_weights(rs)
        pos, neg, group = sides
        below = np.searchsorted(group[neg], group[pos], side="left")
        upto = np.searchsorted(group[neg], group[pos], side="right")
        out = np.empty(rs.n_rowwise)
        for sl, cp, cn in self._running(rs, pos, neg):
            lower = cn[:, below]
            pairs = (np.diff(cp, axis=1) * (lower + 0.5 * (cn[:, upto] - lower))).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[sl] = pairs / (cp[:, -1].astype(float) * cn[:, -1])
        return out

    def resample(self, rs):
        groups = len(self.starts)
        # the pairs matrix below is units x units: with many units, the rows instead
        if max(groups, rs.n_units) * rs.n_units > UNIT_MATRIX_MAX:
            return self._by_positives(rs)
        from scipy import sparse

        # few units: pairs[c, d] = pairs of a positive of unit c above a negative of unit d,
        # so each resample's count is counts @ pairs @ counts
        group = np.repeat(np.arange(groups), np.diff(np.r_[self.starts, len(self.y)]))
        units = rs.units[self.order]
        cell = group * rs.n_units + units
        neg = np.bincount(cell, 1 - self.y, groups * rs.n_units).reshape(groups, rs.n_units)
        below = np.cumsum(neg, axis=0) - 0.5 * neg
        pos = sparse.csr_matrix((self.y, (units, group)), shape=(rs.n_units, groups))
        pairs = np.asarray(pos @ below)
        n_pos, n_neg = np.asarray(pos.sum(axis=1)).ravel(), neg.sum(axis=0)
        out = np.empty(rs.n)
        for sl in rs.blocks(rs.n_units):
            c = rs.counts[sl].astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[sl] = ((c @ pairs) * c).sum(axis=1) / ((c @ n_pos) * (c @ n_neg))
        return out


class _PrecisionRecall(_Ranked):
    """Statistics of the precision-recall curve: precision and recall at every distinct score
    threshold, highest score first. Recall moves only at a threshold that holds a positive, and
    precision only falls between two of them, so the curve at those thresholds is enough."""

    def __init__(self, y, score):
        super().__init__(y, score, ascending=False)

    def _from_curve(self, precision, recall, gained) -> np.ndarray:
        """The statistic from precision, recall and the recall gained at each threshold."""
        raise NotImplementedError

    def _compute(self, w):
        wp, wn = self._grouped(w)
        tps = np.cumsum(wp, axis=1)
        seen = tps + np.cumsum(wn, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(seen > 0, tps / seen, 0.0)
            recall = tps / tps[:, -1:]
        return self._from_curve(precision, recall, np.diff(recall, axis=1, prepend=0.0))

    def _over_thresholds(self, values: tuple, at: np.ndarray) -> np.ndarray:
        """The statistic from its terms at the thresholds that hold a positive (`at`: their
        positions among all thresholds), as `_compute` reads its curve; by default the curve at
        those thresholds alone (precision, recall, recall gained)."""
        return self._from_curve(*values)

    @staticmethod
    def _positive_thresholds(pos: np.ndarray, neg: np.ndarray, group: np.ndarray):
        """(pos, neg, at, k_pos, k_neg): `at` the groups of tied scores that hold a positive,
        k_pos and k_neg how many positive and negative rows rank at or above each of them (the
        columns of the running counts, `Resamples.running`, to read)."""
        at = np.unique(group[pos])
        return (pos, neg, at, np.searchsorted(group[pos], at, side="right"),
                np.searchsorted(group[neg], at, side="right"))

    def _by_positive_groups(self, rs) -> np.ndarray:
        """Many units: the curve at the thresholds that hold a positive, from running sums over
        the positive and over the negative rows (exact integers: the same precision, recall and
        gain, bit for bit, as `_compute` at those thresholds; elsewhere recall does not move)."""
        sides = self._sides()
        if sides is None or not len(sides[0]):
            return self.by_row_weights(rs)
        pos, neg, at, k_pos, k_neg = self._positive_thresholds(*sides)
        out = np.empty(rs.n_rowwise)
        for sl, cp, cn in self._running(rs, pos, neg):
            tps = cp[:, k_pos]
            seen = tps + cn[:, k_neg]
            with np.errstate(divide="ignore", invalid="ignore"):
                precision = np.where(seen > 0, tps / seen, 0.0)
                recall = tps / cp[:, -1:]
                gained = np.diff(recall, axis=1, prepend=0.0)
                out[sl] = self._over_thresholds((precision, recall, gained), at)
        return out

    def resample(self, rs):
        ends = np.r_[self.starts[1:], len(self.y)] - 1
        positive = np.add.reduceat(self.y, self.starts) > 0
        at = ends[positive]
        before = self.starts[positive] - 1
        if not len(at):
            return self.by_row_weights(rs)
        if rs.n_units * len(self.y) > UNIT_MATRIX_MAX:  # many units
            return self._by_positive_groups(rs)
        # few units: products with each unit's counts, or running counts over the rows when
        # there are fewer rows than units x thresholds (the same floats either way)
        if len(self.y) < rs.n_units * len(at) and self._sides() is not None:
            return self._all_by_running_counts(rs)
        return self._all_by_unit_products(rs, at, before)

    def _all_by_unit_products(self, rs, at: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Few units, every resample: each unit's running count of positives and of rows at
        the thresholds `at` (row positions) that hold a positive (`before`: the row before each
        threshold's first), and each resample's figures as products with its unit counts."""
        tps = rs.cumulative(self.order, self.y)
        seen = rs.cumulative(self.order)
        tp_end, seen_end = tps[:, at], seen[:, at]
        tp_gained = tp_end - np.where(before >= 0, tps[:, np.maximum(before, 0)], 0.0)
        total = tps[:, -1]
        out = np.empty(rs.n)
        for sl in rs.blocks(len(at)):
            c = rs.counts[sl].astype(float)
            t, n_pos = c @ tp_end, (c @ total)[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                out[sl] = self._from_curve(np.where(c @ seen_end > 0, t / (c @ seen_end), 0.0),
                                           t / n_pos, (c @ tp_gained) / n_pos)
        return out

    def _all_by_running_counts(self, rs) -> np.ndarray:
        """The few-unit path's figures on every resample (the same blocks, the same arrays in
        the same memory order), from running counts over the positive and the negative rows
        instead of products with each unit's counts: both are exact integers, so the floats
        are the same; the rows cost less when there are more thresholds than rows per unit."""
        pos, neg, _, k_pos, k_neg = self._positive_thresholds(*self._sides())
        out = np.empty(rs.n)
        for sl in rs.blocks(len(self.y)):  # each row's sum is its own: any block of rows
            cp, cn = rs.running(sl, self.order[pos]), rs.running(sl, self.order[neg])
            t = np.ascontiguousarray(np.take(cp, k_pos, axis=1), dtype=float)
            seen = t + np.take(cn, k_neg, axis=1)
            gained = t - np.take(cp, np.r_[0, k_pos[:-1]], axis=1)  # each threshold's own
            n_pos = cp[:, -1:].astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[sl] = self._from_curve(np.where(seen > 0, t / seen, 0.0), t / n_pos,
                                           gained / n_pos)
        return out


class AveragePrecision(_PrecisionRecall):
    """Sum over thresholds of (recall gained) x precision (as `average_precision_score`)."""

    def _from_curve(self, precision, recall, gained):
        return (gained * precision).sum(axis=1)

    def _over_thresholds(self, values, at):
        # the sum over every threshold as `_compute` on row weights adds it, whose other terms
        # are exact zeros (recall does not move); the memory order of its terms decides numpy's
        # order of addition: the sums over tied scores are in row order, added pairwise along
        # each row (the same terms in the same places give the same float); row weights
        # gathered by unit are in column order, added one column after the other: a running
        # sum, in which the zeros change nothing
        precision, _, gained = values
        if self.tied:
            terms = np.zeros((len(gained), len(self.starts)))
            terms[:, at] = gained * precision
            return terms.sum(axis=1)
        return np.cumsum(gained * precision, axis=1)[:, -1]


class PrecisionAtRecall(_PrecisionRecall):
    """The best precision at which at least `recall` of the positives are caught."""

    def __init__(self, y, score, recall: float):
        super().__init__(y, score)
        self.target = float(recall)

    def _from_curve(self, precision, recall, gained):
        best = np.where(recall >= self.target, precision, -np.inf).max(axis=1)
        return np.where(np.isfinite(best), best, np.where(np.isnan(recall[:, -1]), np.nan, 0.0))


class TopShare(_Ranked):
    """The share of positives among the top `rate` of rows by score (recall at an alert rate);
    ties in order of the rows, as a stable sort of the negated score."""

    def __init__(self, y, score, rate: float):
        self.order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
        self.y = np.asarray(y, dtype=float)[self.order]
        self.rate = float(rate)

    def _compute(self, w):
        cum = np.cumsum(w, axis=1)
        k = np.maximum(np.rint(self.rate * cum[:, -1]), 1)
        take = np.clip(k[:, None] - (cum - w), 0, w)
        return (take * self.y).sum(axis=1) / np.maximum((w * self.y).sum(axis=1), 1)

    def resample(self, rs):
        seen = rs.cumulative(self.order)
        caught = rs.cumulative(self.order, self.y)
        if seen is None or caught is None:
            return super().resample(rs)
        # few units: the row where the top k ends, by binary search on the running counts
        out = np.empty(rs.n)
        for sl in rs.blocks(rs.n_units):
            c = rs.counts[sl].astype(float)
            k = np.maximum(np.rint(self.rate * (c @ seen[:, -1])), 1)
            j = rs.first_reaching(seen, c, k, strict=False)
            prev = np.maximum(j - 1, 0)
            before = np.where(j > 0, (c * seen[:, prev].T).sum(axis=1), 0.0)
            caught_before = np.where(j > 0, (c * caught[:, prev].T).sum(axis=1), 0.0)
            out[sl] = (caught_before + (k - before) * self.y[j]) / np.maximum(
                c @ caught[:, -1], 1)
        return out


class MeanOf(Stat):
    """The mean of other statistics (e.g. one-vs-rest AUC over the classes), skipping a class
    that a resample does not contain."""

    def __init__(self, parts: Sequence[Stat]):
        self.parts = list(parts)

    def point(self):
        return float(np.mean([p.point() for p in self.parts]))

    def resample(self, rs):
        values = np.vstack(common(*[p.resample(rs) for p in self.parts]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample with no class at all
            return np.nanmean(values, axis=0)


# ---- the statistics of each kind of task (mirroring `cases.lifecycle.evaluate`) ---------------

def regression_statistics(y, pred, segments: Mapping[str, np.ndarray] | None = None) -> dict:
    y = np.asarray(y, dtype=float)
    err = np.asarray(pred, dtype=float) - y
    out = _reg(err, None, "")
    for name, mask in (segments or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            out.update(_reg(err, mask, f"{name}_"))
            out[f"{name}_bias"] = mean_of(err, mask)
    return out


def _reg(err, mask, prefix: str) -> dict:
    return {f"{prefix}mae": mean_of(np.abs(err), mask),
            f"{prefix}medae": Quantile(np.abs(err), 0.5, mask),
            f"{prefix}rmse": root_mean_of(err ** 2, mask)}


def log_target_statistics(y, pred) -> dict:
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    dollars = np.abs(np.exp(pred) - np.exp(y))
    return {"r2": r2_of(y, pred), "mae_dollars": mean_of(dollars),
            "medae_dollars": Quantile(dollars, 0.5)}


def binary_statistics(y, proba, n_bins: int = 10) -> dict:
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    out = {"log_loss": mean_of(-(y * np.log(p) + (1 - y) * np.log(1 - p))),
           "brier": mean_of((p - y) ** 2),
           "ece": calibration_error_of(y, p, n_bins),
           "positive_rate": mean_of(y)}
    if 0 < y.sum() < len(y):
        out["auc"] = AUC(y, p)
        out["average_precision"] = AveragePrecision(y, p)
    return out


def multiclass_statistics(y, proba, labels) -> dict:
    y = np.asarray(y).astype(int)
    proba = np.clip(np.asarray(proba, dtype=float), 1e-9, None)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.arange(len(y)), y], eps, 1 - eps)
    out = {"log_loss": mean_of(-np.log(picked)), "accuracy": mean_of(pred == y)}
    present = [c for c in range(len(labels)) if (y == c).any()]
    if len(present) > 1:
        out["auc_ovr"] = MeanOf([AUC(y == c, proba[:, c]) for c in present])
    for c in present:
        out[f"recall_{labels[c]}"] = mean_of(pred == c, y == c)
    return out


STATISTICS = {"regression": regression_statistics, "binary": binary_statistics,
              "multiclass": multiclass_statistics}


def statistics(kind: str, classes, segments: Callable, extra: Callable, cfg) -> Callable:
    """`stats(y_true, prediction, rows) -> {metric: Stat}` for one task: `evaluate.scorer`'s
    dispatch (`evaluate.by_kind`) with the statistics, and the case's extra statistics for its
    extra metrics."""
    from cases.lifecycle.evaluate import by_kind

    return by_kind(kind, classes, segments, extra, cfg, STATISTICS)


# ---- the bootstrap of a task and view -----------------------------------------------------------

def resample_all(stats: Mapping[str, Mapping[str, Stat]], rs: Resamples) -> dict:
    """{model: {metric: values on each resample}}: every additive statistic of every model from
    one product of the resample counts with the per-unit sums; the others one by one."""
    cols: list[np.ndarray] = []
    index: dict[bytes, int] = {}  # a column many statistics share (all ones, a segment) once
    where = []
    for model, by_metric in stats.items():
        for metric, stat in by_metric.items():
            if stat.additive:
                at = []
                for c in stat.columns:
                    key = c.tobytes()
                    if key not in index:
                        index[key] = len(cols)
                        cols.append(c)
                    at.append(index[key])
                where.append((model, metric, at))
    out: dict = {model: {} for model in stats}
    if cols:
        sums = rs.unit_sums(np.column_stack(cols))
        totals = np.empty((rs.n, len(cols)))
        for sl in rs.blocks(rs.n_units + len(cols)):
            totals[sl] = rs.counts[sl].astype(float) @ sums
        for model, metric, at in where:
            out[model][metric] = stats[model][metric].combine(totals[:, at])
    for model, by_metric in stats.items():
        for metric, stat in by_metric.items():
            if not stat.additive:
                out[model][metric] = stat.resample(rs)
    return out


def common(*values: np.ndarray) -> list[np.ndarray]:
    """The same first resamples of each array: a statistic computed from row weights has only
    the first `n_rowwise` of them, and resample i is the same draw in every array."""
    n = min(len(v) for v in values)
    return [np.asarray(v)[:n] for v in values]


def interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """The percentile interval of bootstrap values (resamples where the metric is undefined,
    e.g. no positive in a resample, are left out)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [None, None]  # undefined on every resample (JSON null)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def paired(point: Mapping[str, float], ref_point: Mapping[str, float], boot: Mapping,
           ref_boot: Mapping, level: float = LEVEL) -> dict:
    """{metric: {diff, lo, hi, within_noise}}: model - reference on the same resamples."""
    out = {}
    for metric, value in point.items():
        if metric not in ref_point or metric not in boot or metric not in ref_boot:
            continue
        a, b = common(boot[metric], ref_boot[metric])
        lo, hi = interval(a - b, level)
        out[metric] = {"diff": float(value - ref_point[metric]), "lo": lo, "hi": hi,
                       "within_noise": bool(lo is None or not (lo > 0 or hi < 0))}
    return out


def relative_improvement(model: np.ndarray, baseline: np.ndarray,
                         greater_is_better: bool) -> np.ndarray:
    """(baseline - model) / |baseline| (lower is better) or its mirror: positive = better."""
    model, baseline = common(model, baseline)
    gain = model - baseline if greater_is_better else baseline - model
    with np.errstate(divide="ignore", invalid="ignore"):
        return gain / np.maximum(np.abs(baseline), 1e-12)


GUARDRAIL_ACTIONS = ("fail", "flag")


def guardrail(metric: str, model: float, baseline: float, model_boot: np.ndarray,
              baseline_boot: np.ndarray, tolerance: float, action: str,
              level: float = LEVEL, min_value: float | None = None) -> dict:
    """Is the model worse than the baseline on `metric` by more than `tolerance` (metric units),
    with the paired interval of the difference beyond the tolerance too? Then it is breached.
    With `min_value` the rule is absolute instead (e.g. an adverse impact ratio of at least
    0.8, the four-fifths rule): breached when the model's value is below it."""
    from cases.lifecycle.evaluate import greater_is_better

    if action not in GUARDRAIL_ACTIONS:
        raise CasebookError(f"case.evaluate.guardrails: action {action!r} for {metric}; expected "
                            f"one of {', '.join(GUARDRAIL_ACTIONS)}")
    a, b = common(model_boot, baseline_boot)
    lo, hi = interval(a - b, level)
    diff = float(model - baseline)
    if min_value is not None:
        return {"metric": metric, "model": float(model), "baseline": float(baseline),
                "min_value": float(min_value), "model_interval": interval(model_boot, level),
                "diff_interval": [lo, hi], "breached": bool(not model >= min_value),
                "action": action}
    if greater_is_better(metric):
        breached = diff < -tolerance and hi is not None and hi < -tolerance
    else:
        breached = diff > tolerance and lo is not None and lo > tolerance
    return {"metric": metric, "model": float(model), "baseline": float(baseline),
            "tolerance": float(tolerance), "diff_interval": [lo, hi], "breached": bool(breached),
            "action": action}


def evaluate_view(points: Mapping[str, Mapping[str, float]], boot: Mapping, selected: str,
                  metric: str, min_improvement: float, guardrails: Sequence[Mapping] = (),
                  level: float = LEVEL) -> dict:
    """Intervals, paired differences and the gate of one task and view, from the test metrics
    of every model (`points`, "baseline" included) and their values on the same resamples:
    {"intervals", "paired", "gate"} as metrics.json holds them."""
    from cases.lifecycle.evaluate import gate, greater_is_better

    intervals = {name: {m: interval(boot[name][m], level) for m in points[name]}
                 for name in points}
    pairs: dict = {}
    for name in points:
        if name == "baseline":
            continue
        pairs[name] = {}
        if name != selected:
            pairs[name]["vs_selected"] = paired(points[name], points[selected], boot[name],
                                                boot[selected], level)
        pairs[name]["vs_baseline"] = paired(points[name], points["baseline"], boot[name],
                                            boot["baseline"], level)
    gain = relative_improvement(boot[selected][metric], boot["baseline"][metric],
                                greater_is_better(metric))
    guards = [guardrail(g["metric"], points[selected][g["metric"]],
                        points["baseline"][g["metric"]], boot[selected][g["metric"]],
                        boot["baseline"][g["metric"]], float(g.get("tolerance", 0.0)),
                        str(g.get("action", "flag")), level, g.get("min_value"))
              for g in guardrails if g["metric"] in points[selected]
              and g["metric"] in points["baseline"]]
    return {"intervals": intervals, "paired": pairs,
            "gate": gate(points[selected][metric], points["baseline"][metric], metric,
                         min_improvement, interval(gain, level), guards)}


def compare(stats: Mapping[str, Mapping[str, Stat]], units: np.ndarray, reference: str,
            n: int, seed: int, n_rowwise: int | None = None, level: float = LEVEL) -> dict:
    """An analysis's own comparison of a few models, as evaluate does for the candidates: each
    model's point values and intervals, and its paired difference from `reference`, all on the
    same resamples of `units` (one code per row). {model: {"point", "interval",
    "vs_<reference>"}}."""
    if reference not in stats:
        raise CasebookError(f"bootstrap compare: reference {reference!r} is not one of "
                            f"{', '.join(stats)}")
    boot = resample_all(stats, Resamples(units, n, seed, n_rowwise))
    points = {m: {k: s.point() for k, s in by.items()} for m, by in stats.items()}
    out = {}
    for m in stats:
        out[m] = {"point": points[m],
                  "interval": {k: interval(boot[m][k], level) for k in points[m]}}
        if m != reference:
            out[m][f"vs_{reference}"] = paired(points[m], points[reference], boot[m],
                                               boot[reference], level)
    return out
