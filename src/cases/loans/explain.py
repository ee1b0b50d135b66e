"""Reasons without the weights. Every explanation here calls only the model's predict function
(SHAP's permutation explainer over a background sample, acceptance curves, counterfactual
search), and is then checked against what the weights would say: exact TreeSHAP of the tree
model, and the scorecard's points below the best value of the logistic model."""

from __future__ import annotations

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
                  permutations: int = 5) -> np.ndarray:
    """Permutation SHAP on the approval probability, from predict calls only."""
    import shap

    cols = list(X.columns)

    def f(arr: np.ndarray) -> np.ndarray:
        return approval(model, pd.DataFrame(arr, columns=cols))

    masker = shap.maskers.Independent(background[cols].to_numpy(dtype=float),
                                      max_samples=len(background))
    explainer = shap.PermutationExplainer(f, masker, seed=seed)
    evals = permutations * (2 * len(cols) + 1)
    # one predict call per explained row (every permutation's 2p + 1 masked inputs) instead of
    # shap's default batches of 10: the same values (each row is scored on its own), a fifth
    # of the calls of one per permutation and most of the time with a linear model
    out = explainer(X.to_numpy(dtype=float), max_evals=evals, silent=True, batch_size=evals)
    return np.asarray(out.values, dtype=float)


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

