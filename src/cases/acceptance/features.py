"""Offer features as the dispatcher sees them when it asks the driver. The split is by time
(the last week is the test); CV inside the training weeks holds out later days and, at once,
a set of drivers, so neither a driver's future nor the driver themself leaks into validation."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle.contract import FeatureTable


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    o = tables["offers"].sort_values("time_h").reset_index(drop=True)
    views = {k: list(v) for k, v in f["views"].items()}
    cols = sorted({c for v in views.values() for c in v})
    frame = o[cols].astype(float).copy()
    frame["accepted"] = o["accepted"].astype(float)
    frame["day"] = o["day"].astype(int)
    frame["true_p"] = o["true_p"]
    last = int(o["day"].max())
    is_test = o["day"] > last - int(f["test_days"])
    split = pd.Series(np.where(is_test, "test", "train"))
    info = {"kind": "time-ordered by day; CV folds also hold out drivers",
            "train": {"days": [int(o.loc[~is_test, "day"].min()), int(o.loc[~is_test, "day"].max())]},
            "test": {"days": [int(o.loc[is_test, "day"].min()), int(o.loc[is_test, "day"].max())]},
            "drivers": int(o["driver_id"].nunique())}
    return FeatureTable(frame=frame, views=views, targets=["accepted"], split=split,
                        period=(o["day"] // int(f["cv_period_days"])).astype(int),
                        split_info=info, groups=o["driver_id"].astype(int))
