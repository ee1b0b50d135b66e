"""What the bank knows when the card is swiped: the amount, the hour, the merchant's category and
distance from home, and the customer's own history up to that moment (transactions in the last
hour and day, the amount against their usual, minutes since the last one, a first visit to the
merchant, a burst of small charges). History uses earlier transactions only. The real ULB file
carries anonymised components V1..V28 instead, and the features fit what it carries.

Split by time: the last `test_weeks` weeks are the test set, over which the SMS loop runs; the
week before them picks the thresholds. The ULB file spans two days, so it is cut into eight
equal time blocks instead of weeks."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.contract import FeatureTable

WEEK = 7 * 86400


def history(tx: pd.DataFrame) -> pd.DataFrame:
    """Per-customer features from strictly earlier transactions (vectorised by sorted keys)."""
    order = np.lexsort((tx["time_s"].to_numpy(), tx["customer_id"].to_numpy()))
    t = tx["time_s"].to_numpy()[order]
    c = tx["customer_id"].to_numpy()[order].astype(np.int64)
    amount = tx["amount"].to_numpy()[order]
    key = c * 1e8 + t  # customers apart, time within (the simulator spans < 1e8 s)
    idx = np.arange(len(t))
    first = np.r_[True, c[1:] != c[:-1]]
    group_start = np.maximum.accumulate(np.where(first, idx, 0))
    out = pd.DataFrame(index=order)
    for name, window in (("tx_1h", 3600), ("tx_24h", 86400)):
        out[name] = (idx - np.searchsorted(key, key - window, side="left")).astype(float)
    prev_t = np.r_[np.nan, t[:-1]]
    out["minutes_since_last"] = np.where(first, np.nan, (t - prev_t) / 60)
    csum = np.cumsum(amount) - amount  # amount spent before, within the customer below
    before = csum - csum[group_start]
    n_before = idx - group_start
    usual = np.where(n_before > 0, before / np.maximum(n_before, 1), np.nan)
    out["amount_vs_usual"] = amount / usual
    small = (amount < 5).astype(float)
    s_cum = np.cumsum(small) - small
    lo = np.searchsorted(key, key - 3600, side="left")
    out["small_amount_burst"] = s_cum - np.r_[0, np.cumsum(small)][lo]
    pair = pd.Series(c * 10**6 + tx["merchant_id"].to_numpy()[order])
    out["new_merchant"] = (~pair.duplicated()).astype(float).to_numpy()
    return out.sort_index()


def time_blocks(time_s: pd.Series, f: Mapping) -> tuple[np.ndarray, str]:
    span = float(time_s.max() - time_s.min())
    weeks_needed = int(f["test_weeks"]) + int(f["validation_weeks"]) + 3
    if span >= weeks_needed * WEEK:
        return ((time_s - time_s.min()) // WEEK).astype(int).to_numpy(), "week"
    return np.minimum(((time_s - time_s.min()) / (span / 8)).astype(int), 7).to_numpy(), \
        "block of 1/8 of the time span"


def observable(tx: pd.DataFrame) -> pd.DataFrame:
    """What the bank sees of each transaction (`tx` in time order): the amount, the hour, and
    on the simulated schema the customer's history, the merchant's category and the distance
    from home. The simulator draws fraud from these very values (`data.fraud_logit`)."""
    frame = pd.DataFrame({"amount": tx["amount"].astype(float),
                          "log_amount": np.log1p(tx["amount"].astype(float)),
                          "hour": ((tx["time_s"] % 86400) // 3600).astype(float)})
    if "customer_id" in tx:
        frame = pd.concat([frame, history(tx)], axis=1)
        frame["category"] = tx["category"].astype(str)
        frame["distance_km"] = tx["distance_km"].astype(float)
    return frame


# the truth the simulator writes for each label the task can learn: P(label | what the bank sees)
TRUTH = {"reported": "true_p_reported", "is_fraud": "true_p"}


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    tx = tables["transactions"].sort_values("time_s", kind="stable").reset_index(drop=True)
    frame = observable(tx)
    simulated = "customer_id" in tx
    if simulated:
        label = tx[f["label"]].astype(int)
        if "true_p" in tx:  # the Bayes floor's truth (lifecycle/floor.py), never in a view
            frame["true_p"] = tx["true_p"].astype(float)
            if f["label"] not in TRUTH:
                raise CasebookError(f"case.features.label={f['label']!r}; expected one of "
                                    f"{', '.join(TRUTH)}")
            frame["true_p_label"] = tx[TRUTH[f["label"]]].astype(float)
        frame["reply_p"] = tx["reply_p"].astype(float)
        frame["fraud_kind"] = tx["fraud_kind"].astype(str)
    else:
        for i in range(1, 29):
            frame[f"V{i}"] = tx[f"V{i}"].astype(float)
        # the real file has one label; hide the unnoticed share as the bank would never see it
        rng = np.random.default_rng(int(cfg["data"]["world"]["seed"]))
        hidden = rng.uniform(size=len(tx)) < float(cfg["data"]["world"]["unnoticed_share"])
        label = (tx["is_fraud"].astype(bool) & ~hidden).astype(int)
        a, b = cfg["data"]["world"]["reply_beta"]
        frame["reply_p"] = float(a) / (float(a) + float(b))  # the mean reply probability
        frame["fraud_kind"] = np.where(tx["is_fraud"] == 1, "unknown", "none")
    frame["label"] = label.to_numpy()
    frame["is_fraud"] = tx["is_fraud"].astype(int).to_numpy()
    frame["time_s"] = tx["time_s"].astype(float)
    declared = {k: list(v) for k, v in f["views"].items()}
    views = {k: [c for c in v if c in frame.columns] for k, v in declared.items()}
    period, unit = time_blocks(tx["time_s"], f)
    last = int(period.max())
    n_test = int(f["test_weeks"]) if unit == "week" else 2
    is_test = period > last - n_test
    split = pd.Series(np.where(is_test, "test", "train"))
    info = {"kind": f"by time: the last {n_test} {unit}s are the test set (the SMS loop runs "
                    f"over them); CV validates on later training {unit}s",
            "unit": unit, "test_periods": n_test,
            "validation_periods": int(f["validation_weeks"]) if unit == "week" else 1,
            "label": f["label"] if simulated else "Class, with the unnoticed share hidden",
            "fraud_rate": float(frame["is_fraud"].mean()),
            "label_rate": float(frame["label"].mean()),
            "unavailable_features": sorted({c for v in declared.values() for c in v}
                                           - set(frame.columns))}
    return FeatureTable(frame=frame, views=views, targets=["label"], split=split,
                        period=pd.Series(period), split_info=info)
