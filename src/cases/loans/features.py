"""Loans features: HMDA and scenario applicants side by side in one table, each with its own
view and target. Protected attributes ride along for the audit but are never in a view."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle.contract import FeatureTable

MISSING_CODES = {"gdlin": 666}  # loanapp's code for "not recorded"


def _split(y: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Stratified random split: the same share of rejections in train and test."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    _, test_idx = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    out = np.full(len(y), "train", dtype=object)
    out[test_idx] = "test"
    return out


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    views = {k: list(v) for k, v in f["views"].items()}
    frac, seed = float(f["test_fraction"]), int(f["split_seed"])
    hmda = tables["hmda"].copy()
    for col, code in MISSING_CODES.items():
        hmda[col] = hmda[col].where(hmda[col] != code)
    h = hmda[views["hmda"] + list(f["protected"]["hmda"])].copy()
    h["approve_hmda"] = hmda["approve"].astype(float)
    h["dataset"] = "hmda"
    h["_split_"] = _split(hmda["approve"], frac, seed)
    sc = tables["scenario"]
    s = sc[views["scenario"] + list(f["protected"]["scenario"]) + ["true_p"]].copy()
    s["approve_scenario"] = sc["approve"].astype(float)
    s["dataset"] = "scenario"
    s["_split_"] = _split(sc["approve"], frac, seed)
    frame = pd.concat([h, s], ignore_index=True)
    split = frame.pop("_split_")
    info = {"kind": f"stratified random split, {100 * frac:.0f}% test (applications are not a "
                    f"time series)", "seed": seed,
            "hmda": {"train": int(((split == "train") & (frame.dataset == "hmda")).sum()),
                     "test": int(((split == "test") & (frame.dataset == "hmda")).sum())},
            "scenario": {"train": int(((split == "train") & (frame.dataset == "scenario")).sum()),
                         "test": int(((split == "test") & (frame.dataset == "scenario")).sum())}}
    return FeatureTable(frame=frame, views=views, targets=["approve_hmda", "approve_scenario"],
                        split=split, period=None, split_info=info)
