"""Reasons without the weights. Every explanation here calls only the model's predict function
(SHAP's permutation explainer over a background sample, acceptance curves, counterfactual
search), and is then checked against what the weights would say: exact TreeSHAP of the tree
model, and the scorecard's points below the best value of the logistic model."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.selection import predict_for


def approval(model, X: pd.DataFrame) -> np.ndarray:
    return predict_for("binary", model, X)


def check_inputs_not_protected(cols: Sequence[str], protected: Sequence[str]) -> None:
    bad = sorted(set(cols) & set(protected))
    if bad:
        raise CasebookError(f"protected attribute(s) {', '.join(bad)} among model inputs; they "
                            f"may be audited but never used or given as reasons")


def agnostic_shap(model, X: pd.DataFrame, background: pd.DataFrame, seed: int,
                  permutations: int = 5, batch_rows: int = 1_000_000) -> np.ndarray:
    """Permutation SHAP on the approval probability, from predict calls only: the values of
    SHAP's `PermutationExplainer` with an independent masker over `background` (the same
    permutations from the same seed: each row's varying inputs shuffled `permutations` times,
    each order walked forward and back), computed for many rows per predict call.

    SHAP scores one row per call (its 2p + 1 masked inputs times the background) and spends
    most of its time masking in Python; here the masked inputs of whole batches of rows (up to
    `batch_rows` distinct model rows) go to the model at once, the same numbers to rounding.
    About half of those masked inputs repeat (an input equal to a background row's value reads
    the same switched on or off, and the walks share coalitions: none, all, ...): each distinct
    one is scored once and its score reused, the same values from half the model rows."""
    cols = list(X.columns)
    A = X[cols].to_numpy(dtype=float)
    B = background[cols].to_numpy(dtype=float)
    rng = np.random.RandomState(seed)  # SHAP seeds numpy's global generator and shuffles
    out = np.zeros(A.shape)
    walks: list[tuple[int, list[np.ndarray], np.ndarray, int]] = []
    inputs: list[np.ndarray] = []
    rows = 0

    def flush() -> None:
        f = approval(model, pd.DataFrame(np.concatenate(inputs), columns=cols))
        at = 0
        for i, orders, inverse, n in walks:
            # every coalition's mean over the background, from the distinct rows' scores
            mean = f[at:at + n][inverse].reshape(-1, len(B)).mean(axis=1)
            at += n
            q = len(orders[0])
            for k, order in enumerate(orders):
                walk = mean[k * (2 * q + 1):(k + 1) * (2 * q + 1)]
                out[i, order] += walk[1:q + 1] - walk[:q]  # forward: each input switched on
                out[i, order] += walk[q:2 * q] - walk[q + 1:2 * q + 1]  # back: switched off
        walks.clear()
        inputs.clear()

    for i, x in enumerate(A):
        inds = np.flatnonzero(np.any(~np.isclose(x, B), axis=0))
        if not len(inds):
            continue
        orders = []
        for _ in range(permutations):
            rng.shuffle(inds)
            orders.append(inds.copy())
        masks = np.concatenate([_walk_masks(order, A.shape[1]) for order in orders])
        first, inverse = _distinct_masked(masks, differ(x[None, :], B))
        on, b = masks[first // len(B)], first % len(B)
        inputs.append(np.where(on, x[None, :], B[b]))
        walks.append((i, orders, inverse, len(first)))
        rows += len(first)
        if rows >= batch_rows:
            flush()
            rows = 0
    if walks:
        flush()
    return out / (2 * permutations)


def _walk_masks(order: np.ndarray, p: int) -> np.ndarray:
    """The 2q + 1 coalitions of one permutation walk over `order` (q inputs of p): none, then
    each input switched on in turn, then each switched off again in the same order."""
    q = len(order)
    masks = np.zeros((2 * q + 1, p), dtype=bool)
    for k, j in enumerate(order):
        masks[k + 1:q + k + 1, j] = True
    return masks


def _distinct_masked(masks: np.ndarray, differs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct model inputs among every coalition of `masks` (m x p) over every background
    row (`differs`, n x p: where the explained row differs from it): input (c, b), at position
    c * n + b, reads the explained row where `masks[c] & differs[b]` and background row b
    elsewhere. Returns a position of each distinct input (its first) and, for every position,
    the index of its distinct input among them."""
    words = [np.arange(len(differs), dtype=np.uint64)[None, :].repeat(len(masks), axis=0)]
    for at in range(0, masks.shape[1], 64):  # the coalitions as 64-bit words
        bit = np.uint64(1) << np.arange(min(64, masks.shape[1] - at), dtype=np.uint64)
        m = (masks[:, at:at + 64] * bit).sum(axis=1, dtype=np.uint64)
        d = (differs[:, at:at + 64] * bit).sum(axis=1, dtype=np.uint64)
        words.append(m[:, None] & d[None, :])
    keys = np.stack([w.ravel() for w in words])
    order = np.lexsort(keys[::-1])  # stable: the first of equal inputs comes first
    ranked = keys[:, order]
    new = np.concatenate([[True], np.any(ranked[:, 1:] != ranked[:, :-1], axis=0)])
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def tree_shap(model, X: pd.DataFrame) -> np.ndarray:
    """Exact TreeSHAP (log-odds) of a LightGBM pipeline: the check on the agnostic values."""
    import shap

    Z = model[:-1].transform(X)
    values = shap.TreeExplainer(model[-1]).shap_values(Z)
    values = values[1] if isinstance(values, list) else values
    return np.asarray(values, dtype=float)


def scorecard_points(model, X: pd.DataFrame, X_train: pd.DataFrame) -> np.ndarray:
    """Points below the best value: coef * (z - z_best) per input of the logistic scorecard,
    where z_best is the best standardized value seen in training (always <= 0)."""
    pre, lr = model[:-1], model[-1]
    Z = _dense(pre.transform(X))
    Zt = _dense(pre.transform(X_train))
    coef = lr.coef_[0]
    best = np.where(coef > 0, Zt.max(axis=0), Zt.min(axis=0))
    return coef * (Z - best)


def _dense(Z):
    return Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)


def reason_codes(contrib: np.ndarray, cols: Sequence[str], texts: Mapping[str, str],
                 max_reasons: int = 4) -> list[list[tuple[str, str, float]]]:
    """At most `max_reasons` per applicant, only inputs that pushed toward rejection (negative
    contribution to approval), strongest first, each with its adverse-action text."""
    missing = [c for c in cols if c not in texts]
    if missing:
        raise CasebookError(f"case.analysis.reason_texts has no text for {', '.join(missing)}")
    out = []
    for row in np.atleast_2d(contrib):
        order = np.argsort(row, kind="stable")
        out.append([(cols[j], texts[cols[j]], float(row[j])) for j in order[:max_reasons]
                    if row[j] < 0])
    return out


def top_reason(contrib: np.ndarray, cols: Sequence[str]) -> list[str | None]:
    return [cols[int(np.argmin(r))] if np.min(r) < 0 else None for r in np.atleast_2d(contrib)]


def agreement(a: Sequence, b: Sequence) -> float:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return float(np.mean([x == y for x, y in pairs])) if pairs else float("nan")


def curve(model, X: pd.DataFrame, feature: str, grid: np.ndarray,
          hold: Mapping[str, float] | None = None) -> np.ndarray:
    """Average approval as `feature` moves over `grid`, every other input at each applicant's
    own value (and `hold` fixed for everyone): the acceptance curve of the worked example."""
    from cases.lifecycle.evaluate import partial_dependence

    return partial_dependence(lambda frame: approval(model, frame), X, feature, grid, hold)


def counterfactual(model, x: pd.DataFrame, actionable: Mapping[str, str], X_train: pd.DataFrame,
                   threshold: float, steps: int = 200) -> dict | None:
    """The smallest change in one actionable feature (in its allowed direction, within the range
    seen in training) that turns a rejection into an approval, then checked by re-scoring."""
    return counterfactuals(model, x, actionable, X_train, threshold, steps)[0]


def counterfactuals(model, X: pd.DataFrame, actionable: Mapping[str, str],
                    X_train: pd.DataFrame, threshold: float,
                    steps: int = 200) -> list[dict | None]:
    """`counterfactual` for every row of `X`, scoring each feature's grid for all rows in one
    predict call (a call per applicant and feature was most of the analysis' time)."""
    n = len(X)
    best: list[dict | None] = [None] * n
    X = X.reset_index(drop=True)
    for feature, direction in actionable.items():
        lo, hi = float(X_train[feature].min()), float(X_train[feature].max())
        now = X[feature].to_numpy(dtype=float)
        end = lo if direction == "down" else hi
        movable = np.flatnonzero(now > lo) if direction == "down" else np.flatnonzero(now < hi)
        if len(movable) == 0:
            continue
        # np.linspace(now, end, steps + 1)[1:] for every movable row at once
        grids = np.linspace(now[movable], end, steps + 1, axis=1)[:, 1:]
        trial = X.iloc[np.repeat(movable, steps)].reset_index(drop=True)
        trial[feature] = grids.ravel()
        p = approval(model, trial).reshape(len(movable), steps)
        hit = p >= threshold
        scale = float(X_train[feature].std()) or 1.0
        for r, i in enumerate(movable):
            first = np.flatnonzero(hit[r])
            if len(first) == 0:
                continue
            value = float(grids[r, first[0]])
            cost = float(abs(value - now[i]) / scale)
            if best[i] is None or cost < best[i]["cost_sd"]:
                best[i] = {"feature": feature, "from": float(now[i]), "to": value,
                           "cost_sd": cost}
    found = [i for i in range(n) if best[i] is not None]
    if found:
        check = X.iloc[found].reset_index(drop=True)
        for feature in actionable:
            rows = [r for r, i in enumerate(found) if best[i]["feature"] == feature]
            if rows:
                col = check[feature].to_numpy(dtype=float, copy=True)
                col[rows] = [best[found[r]]["to"] for r in rows]
                check[feature] = col
        rescored = approval(model, check)
        for r, i in enumerate(found):
            best[i]["rescored"] = float(rescored[r])
            best[i]["verified"] = bool(rescored[r] >= threshold)
    return best


def audit(frame: pd.DataFrame, score: np.ndarray, actual: np.ndarray, threshold: float,
          attributes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Approval rates and mean scores by group, and the adverse impact ratio (the lowest group's
    approval rate over the highest's; under 0.8 is the four-fifths rule's red flag), for the
    model's decisions and for the raw historical decisions."""
    rows = []
    decided = score >= threshold
    for attr, groups in attributes.items():
        g = pd.Series(np.asarray(groups), index=frame.index)
        table = []
        for value in sorted(g.dropna().unique(), key=str):
            m = (g == value).to_numpy()
            if m.sum() == 0:
                continue
            table.append({"attribute": attr, "group": str(value), "n": int(m.sum()),
                          "actual_approval": float(actual[m].mean()),
                          "model_approval": float(decided[m].mean()),
                          "mean_score": float(score[m].mean())})
        if not table:
            continue
        t = pd.DataFrame(table)
        t["air_model"] = t["model_approval"] / max(t["model_approval"].max(), 1e-12)
        t["air_actual"] = t["actual_approval"] / max(t["actual_approval"].max(), 1e-12)
        rows.append(t)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()



# ---- reasons against an approved reference: "why was I rejected and she approved" -------------

def differ(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Elementwise: the values differ (two missing values are the same)."""
    return ~((A == B) | (np.isnan(A) & np.isnan(B)))


def nearest_approved(X: pd.DataFrame, pool: pd.DataFrame, scale: pd.Series,
                     chunk: int = 64) -> np.ndarray:
    """For each row of `X`, the position in `pool` (approved applicants) of the one most like
    it: the fewest inputs that differ, then the smallest distance in units of `scale` (a
    missing value against a present one counts one unit). An applicant who differs from an
    approved one in debt alone gets that one, whoever else was approved."""
    cols = list(X.columns)
    if pool.empty:
        raise CasebookError("no approved applicant to compare with: the reference pool is empty")
    A, B = X[cols].to_numpy(dtype=float), pool[cols].to_numpy(dtype=float)
    s = np.where(scale[cols].to_numpy(dtype=float) > 0, scale[cols].to_numpy(dtype=float), 1.0)
    out = np.empty(len(A), dtype=int)
    for start in range(0, len(A), chunk):
        a = A[start:start + chunk, None, :]
        changed = differ(a, B[None])
        gap = np.where(np.isnan(a) | np.isnan(B[None]), changed.astype(float),
                       ((a - B[None]) / s) ** 2)
        count, dist = changed.sum(axis=2), np.nan_to_num(gap).sum(axis=2)
        # lexicographic, count first and distance second, as one key: the distance scaled
        # below 1 within each row (argmin keeps the first of exact ties, as a stable sort)
        key = count + dist / (dist.max(axis=1, keepdims=True) + 1.0)
        out[start:start + chunk] = key.argmin(axis=1)
    return out


def reference_shapley(model, X: pd.DataFrame, R: pd.DataFrame, seed: int,
                      max_exact: int = 8, permutations: int = 10) -> np.ndarray:
    """Shapley values of the approval score of each row of `X` against its own reference row of
    `R` (one background row: a feature is "absent" at the reference's value). They sum to
    score(x) - score(reference), and an input equal to the reference's gets exactly 0, so only
    what differs can be a reason. Exact (every coalition) when at most `max_exact` inputs
    differ, else `permutations` antithetic permutations drawn from a seed derived from the
    two rows' values: the same inputs give the same values in any batch, run to run."""
    import hashlib

    cols = list(X.columns)
    A, B = X[cols].to_numpy(dtype=float), R[cols].to_numpy(dtype=float)
    plans, blocks = [], []
    for i, (x, r) in enumerate(zip(A, B)):
        d = np.flatnonzero(differ(x, r))
        if len(d) <= max_exact:
            masks = ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1).astype(bool)
        else:
            key = hashlib.sha256(np.concatenate([x, r, [seed]]).tobytes()).digest()
            rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
            orders = [rng.permutation(len(d)) for _ in range(max(1, permutations // 2))]
            orders += [o[::-1] for o in orders]
            masks = np.zeros((len(orders) * (len(d) + 1), len(d)), dtype=bool)
            for k, o in enumerate(orders):
                for step in range(1, len(d) + 1):
                    masks[k * (len(d) + 1) + step, o[:step]] = True
        rows = np.repeat(r[None], len(masks), axis=0)
        for j, col in enumerate(d):
            rows[masks[:, j], col] = x[col]
        plans.append((i, d, masks, len(d) <= max_exact))
        blocks.append(rows)
    values = approval(model, pd.DataFrame(np.vstack(blocks), columns=cols)) if blocks else []
    out = np.zeros(A.shape)
    at = 0
    for (i, d, masks, exact), block in zip(plans, blocks):
        f = np.asarray(values[at:at + len(block)])
        at += len(block)
        if not len(d):
            continue
        if exact:
            index = (masks * (1 << np.arange(len(d)))).sum(axis=1)
            f_of = np.empty(2 ** len(d))
            f_of[index] = f
            size = masks.sum(axis=1)
            weight = np.array([math.factorial(int(s)) * math.factorial(len(d) - int(s) - 1)
                               for s in np.minimum(size, len(d) - 1)]) / math.factorial(len(d))
            for j in range(len(d)):
                without = ~masks[:, j]
                out[i, d[j]] = float(np.sum(weight[without] * (f_of[index[without] | (1 << j)]
                                                              - f[without])))
        else:
            steps = len(d) + 1
            for k in range(len(masks) // steps):
                walk = masks[k * steps:(k + 1) * steps]
                gain = np.diff(f[k * steps:(k + 1) * steps])
                added = np.argmax(walk[1:] & ~walk[:-1], axis=1)
                out[i, d[added]] += gain
            out[i, d] /= len(masks) // steps
    return out


def reference_reasons(model, X: pd.DataFrame, pool: pd.DataFrame, scale: pd.Series,
                      texts: Mapping[str, str], max_reasons: int, seed: int):
    """(reasons per row, reference positions in `pool`, contributions): each applicant's
    reasons against the approved applicant most like them (`nearest_approved`)."""
    ref = nearest_approved(X, pool, scale)
    contrib = reference_shapley(model, X.reset_index(drop=True),
                                pool.iloc[ref].reset_index(drop=True), seed)
    return reason_codes(contrib, list(X.columns), texts, max_reasons), ref, contrib
