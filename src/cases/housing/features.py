"""One row per sale: what the listing shows (rooms, grade, age, lot, location, zipcode, the sale
day) and its square footage three ways, one per missingness mechanism, next to the truth. The
latest sales are the test set. Nothing is filled here: every fill is fitted inside the CV folds
(imputers.py), so the features keep the gaps exactly where the masks put them."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.housing.data import MECHANISMS
from cases.lifecycle.contract import FeatureTable


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    h = tables["homes"].sort_values(["sale_date", "id"], kind="stable").reset_index(drop=True)
    # what the file offers beyond the declared columns (the real file's view, condition,
    # neighbours' sizes...) joins every view; the simulator has none of them
    extra = [c for c in f["extra"] if c in h.columns]
    views = {k: list(v) + extra for k, v in f["views"].items()}
    share = float(f["test_share"])
    if not 0 < share < 1:
        raise CasebookError(f"case.features.test_share must be between 0 and 1, got {share}")
    dates = pd.to_datetime(h["sale_date"])
    frame = pd.DataFrame({"sale_days": (dates - dates.min()).dt.days.astype(float)})
    for col in h.columns:
        if col in ("id", "sale_date"):
            continue
        if col == "zipcode":
            frame[col] = h[col].astype(str)
        elif col.startswith("missing_"):
            frame[col] = h[col].astype(bool)
        else:
            frame[col] = h[col].astype(float)
    frame["log_price"] = np.log(frame["price"])
    cut = dates.iloc[int(round((1 - share) * len(h)))]
    is_test = (dates >= cut).to_numpy()
    split = pd.Series(np.where(is_test, "test", "train"))
    info = {"kind": f"by sale date: the latest {share:.0%} of sales are the test set",
            "train": {"dates": [str(dates[~is_test].min().date()), str(dates[~is_test].max().date())]},
            "test": {"dates": [str(dates[is_test].min().date()), str(dates[is_test].max().date())]},
            "masked_share": {m: float(h[f"missing_{m}"].mean()) for m in MECHANISMS},
            "extra_features": extra}
    return FeatureTable(frame=frame, views=views, targets=["log_price"], split=split, period=None,
                        split_info=info)
