"""One row per listing: the canonical columns the file had, amenities as indicators (the most
common ones), dates already turned into ages. The test set is a random 20% of hosts, and CV folds
hold out whole hosts too, so one host's listings (and pricing habits) never leak across."""

from __future__ import annotations

import json
from collections import Counter
from typing import Mapping

import numpy as np
import pandas as pd

from cases.airbnb.data import TRUTH, slug
from cases.lifecycle.contract import FeatureTable


def amenity_vocabulary(amenities: pd.Series, top: int) -> list[str]:
    counts = Counter(a for items in amenities for a in items)
    return [a for a, _ in counts.most_common(top)]


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    t = tables["listings"].reset_index(drop=True)
    if "amenities" in t:
        t["amenities"] = t["amenities"].map(json.loads)
    declared = [c for v in f["views"].values() for c in v]
    categorical = list(f["categorical"])
    frame = pd.DataFrame(index=t.index)
    for c in declared:
        if c not in t or c == "amenities":
            continue
        frame[c] = t[c].astype(str) if c in categorical else t[c].astype(float)
    # the many-level test's candidate columns (analysis only, in no view unless listed there)
    for c in f["many_levels"]:
        if c in t and c not in frame:
            frame[c] = t[c].astype(str)
    amen_cols: list[str] = []
    if "amenities" in t:
        # an amenity's name is not the price: the vocabulary may come from every listing
        vocab = amenity_vocabulary(t["amenities"], int(f["amenities_top"]))
        for a in vocab:
            frame[slug(a)] = t["amenities"].map(lambda items, a=a: a in items).astype(float)
        frame["n_amenities"] = t["amenities"].map(len).astype(float)
        amen_cols = [slug(a) for a in vocab]
    frame["log_price"] = np.log(t["price"].astype(float))
    frame["price"] = t["price"].astype(float)
    if TRUTH in t:  # the simulator's truth, for the Bayes floor only (never in a view)
        frame[TRUTH] = t[TRUTH].astype(float)
    views = {k: [c for c in v if c in frame.columns] + (amen_cols if "amenities" in v else [])
             for k, v in f["views"].items()}
    unavailable = sorted({c for c in declared if c not in frame.columns and c != "amenities"}
                         | ({"amenities"} if not amen_cols else set()))
    hosts = t["host_id"].astype(str) if "host_id" in t else t.index.astype(str)
    codes = pd.Series(pd.factorize(hosts)[0])
    rng = np.random.default_rng(int(f["split_seed"]))
    test_hosts = rng.uniform(size=codes.max() + 1) < float(f["test_share"])
    is_test = test_hosts[codes.to_numpy()]
    split = pd.Series(np.where(is_test, "test", "train"))
    info = {"kind": f"random by host: {float(f['test_share']):.0%} of hosts are the test set",
            "schema": str(tables["schema"]["schema"].iloc[0]) if "schema" in tables else "?",
            "hosts": int(codes.nunique()), "unavailable_features": unavailable,
            "amenities": amen_cols}
    return FeatureTable(frame=frame, views=views, targets=["log_price"], split=split,
                        period=None, split_info=info, groups=codes)
