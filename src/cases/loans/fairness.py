"""Who the fairness audit compares, and the adverse impact ratio as a test metric, so that the
gate can hold a model to the four-fifths rule (`case.evaluate.guardrails`). The protected
attributes are never model inputs: the evaluate stage hands them to the metrics only
(`case.evaluate.metric_columns`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def attributes(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The audited groups of the applicants in `frame`, from the protected columns it has (an
    attribute is left out when its columns are absent or never recorded; an applicant whose
    value is missing is in no group of it): HMDA race, sex, marital status and age; the
    scenario's sex and age band."""
    def have(*cols: str) -> bool:
        return all(c in frame and frame[c].notna().any() for c in cols)

    out: dict[str, pd.Series] = {}
    if have("black", "hispan", "white"):
        out["race"] = pd.Series(np.select(
            [frame["black"] == 1, frame["hispan"] == 1, frame["white"] == 1],
            ["black", "hispanic", "white"], "other"), index=frame.index)
    if have("male"):
        out["sex"] = frame["male"].map({1.0: "male", 0.0: "female"})
    if have("married"):
        out["marital status"] = frame["married"].map({1.0: "married", 0.0: "not married"})
    if have("old"):
        out["age"] = frame["old"].map({1.0: "older", 0.0: "younger"})
    if have("sex") and "sex" not in out:
        out["sex"] = frame["sex"].astype(str)
    if have("age_band"):
        out["age band"] = frame["age_band"].astype(str)
    return out


def metric_name(attribute: str) -> str:
    return "air_" + attribute.replace(" ", "_")


def _groups(values: pd.Series) -> list[np.ndarray]:
    """One mask per recorded group (the audit's groups: missing values belong to none)."""
    g = pd.Series(values).reset_index(drop=True)
    return [(g == v).to_numpy() for v in sorted(g.dropna().unique(), key=str)]


def fairness_metrics(y, score, rows: pd.DataFrame, cfg: Mapping) -> dict:
    """`air_<attribute>`: the lowest group's approval rate (score >= the analysis threshold) over
    the highest group's, for each audited attribute the rows carry (none in CV folds, which
    see the inputs only)."""
    decided = np.asarray(score, dtype=float) >= float(cfg["analysis"]["threshold"])
    out = {}
    for attr, values in attributes(rows).items():
        rates = [decided[m].mean() for m in _groups(values) if m.any()]
        out[metric_name(attr)] = float(min(rates) / max(max(rates), 1e-12))
    return out


def fairness_statistics(y, score, rows: pd.DataFrame, cfg: Mapping) -> dict:
    """The bootstrap twins of `fairness_metrics`: each group's approvals and size are sums over
    rows, so the ratio is recomputed on every resample from one matrix product."""
    from cases.lifecycle.bootstrap import Additive

    decided = (np.asarray(score, dtype=float) >= float(cfg["analysis"]["threshold"])).astype(float)
    out = {}
    for attr, values in attributes(rows).items():
        cols = []
        for m in _groups(values):
            cols += [decided * m, m.astype(float)]
        out[metric_name(attr)] = Additive(cols, _air)
    return out


def _air(totals: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = totals[:, 0::2] / totals[:, 1::2]  # NaN: a group no resample drew
        return np.nanmin(rates, axis=1) / np.maximum(np.nanmax(rates, axis=1), 1e-12)
