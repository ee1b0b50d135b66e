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
    p = len(cols)
    out = explainer(X.to_numpy(dtype=float), max_evals=permutations * (2 * p + 1), silent=True)
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
    best = None
    for feature, direction in actionable.items():
        lo, hi = float(X_train[feature].min()), float(X_train[feature].max())
        now = float(x[feature].iloc[0])
        end = lo if direction == "down" else hi
        if (direction == "down" and now <= lo) or (direction == "up" and now >= hi):
            continue
        grid = np.linspace(now, end, steps + 1)[1:]
        trial = pd.concat([x] * len(grid), ignore_index=True)
        trial[feature] = grid
        p = approval(model, trial)
        hit = np.flatnonzero(p >= threshold)
        if len(hit) == 0:
            continue
        value = float(grid[hit[0]])
        scale = float(X_train[feature].std()) or 1.0
        cost = abs(value - now) / scale
        if best is None or cost < best["cost_sd"]:
            best = {"feature": feature, "from": now, "to": value, "cost_sd": cost}
    if best is None:
        return None
    check = x.copy()
    check[best["feature"]] = best["to"]
    best["rescored"] = float(approval(model, check)[0])
    best["verified"] = bool(best["rescored"] >= threshold)
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

