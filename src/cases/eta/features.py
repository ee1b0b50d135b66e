"""Features that fit what the file carries. Coordinates: great-circle and Manhattan distance,
bearing, the points and their k-means clusters (fitted on training trips only). Taxi zones: the
zone ids and boroughs (and, only if allowed, the metered distance). Both: hour, weekday, minute
of the day, US federal holidays, passengers, vendor, and the day's rain when the data has it.
Zone-pair statistics depend on the target, so they are fitted inside the model (models.PairStats)
on each fold's training rows, never here. The latest weeks are the test set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.eta.data import TRUTH, bearing_deg, haversine_km, manhattan_km, us_holidays
from cases.lifecycle.contract import FeatureTable


def time_features(when: pd.Series) -> pd.DataFrame:
    when = pd.to_datetime(when)
    days = when.dt.normalize()
    holidays = us_holidays(days.min(), days.max())
    return pd.DataFrame({
        "hour": when.dt.hour.astype(float),
        "weekday": when.dt.dayofweek.astype(float),
        "minute_of_day": (when.dt.hour * 60 + when.dt.minute).astype(float),
        "holiday": days.isin(holidays).astype(float),
    })


def geo_features(t: pd.DataFrame) -> pd.DataFrame:
    args = (t["pickup_latitude"], t["pickup_longitude"], t["dropoff_latitude"],
            t["dropoff_longitude"])
    gc = haversine_km(*args)
    return pd.DataFrame({
        "gc_km": gc, "manhattan_km": manhattan_km(*args), "log_gc_km": np.log1p(gc),
        "bearing": bearing_deg(*args),
        **{c: t[c].astype(float).to_numpy() for c in ("pickup_latitude", "pickup_longitude",
                                                       "dropoff_latitude", "dropoff_longitude")},
    })


def fit_clusters(points: np.ndarray, k: int, seed: int):
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3).fit(points)


def split_by_weeks(when: pd.Series, f: Mapping) -> tuple[np.ndarray, np.ndarray, str]:
    """(is_test, week index, description): the last `test_weeks` weeks when the data spans
    enough of them, else the latest `test_share` of trips (cut at a week boundary)."""
    when = pd.to_datetime(when)
    week = ((when - when.min()).dt.days // 7).to_numpy()
    weeks = np.unique(week)
    n_test = int(f["test_weeks"])
    if len(weeks) >= 3 * n_test:
        first = weeks[-n_test]
        how = f"the last {n_test} weeks of trips are the test set"
    else:
        first = week[min(int(round((1 - float(f["test_share"])) * len(week))), len(week) - 1)]
        how = f"the latest weeks (about {float(f['test_share']):.0%} of trips) are the test set"
    is_test = week >= first
    if is_test.all() or not is_test.any():
        raise CasebookError(f"the trips span {len(weeks)} week(s): too few to split by time "
                            f"(case.features.test_weeks / test_share)")
    return is_test, week, how


def row_features(t: pd.DataFrame, schema: str, f: Mapping, km=None,
                 extras: Sequence[str] | None = None) -> pd.DataFrame:
    """Every feature that depends on the trip alone (and the fitted k-means `km` for coordinate
    trips): the local path calls it on all trips, the Dask path (`distributed`) on each
    partition. `extras`: the optional columns to carry (passengers, vendor, rain); by default
    those the trips have values for."""
    parts = [time_features(t["pickup_datetime"])]
    if schema == "coords":
        geo = geo_features(t)
        geo["pickup_cluster"] = km.predict(geo[["pickup_latitude", "pickup_longitude"]].to_numpy())
        geo["dropoff_cluster"] = km.predict(
            geo[["dropoff_latitude", "dropoff_longitude"]].to_numpy())
        geo[["pickup_cluster", "dropoff_cluster"]] = geo[["pickup_cluster",
                                                          "dropoff_cluster"]].astype(str)
        parts.append(geo)
    else:
        zones = pd.DataFrame({
            "pu_zone": t["PULocationID"].astype(int).astype(str),
            "do_zone": t["DOLocationID"].astype(int).astype(str),
            "pu_borough": t["borough"].fillna("Unknown").astype(str),
            "do_borough": t["do_borough"].fillna("Unknown").astype(str)})
        if f["use_meter_distance"]:
            zones["trip_distance_km"] = t["trip_distance"].astype(float) * 1.609344
        parts.append(zones)
    if extras is None:
        extras = [c for c in ("passenger_count", "vendor_id", "precip_mm")
                  if c in t and t[c].notna().any()]
    for c in extras:
        parts.append(pd.DataFrame({c: t[c].astype(float)}))
    return pd.concat(parts, axis=1)


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    t = tables["trips"].sort_values("pickup_datetime", kind="stable").reset_index(drop=True)
    schema = str(t["schema"].iloc[0])
    is_test, week, how = split_by_weeks(t["pickup_datetime"], f)
    km = None
    if schema == "coords":
        train = t.loc[~is_test]
        train_pts = np.vstack([
            train[["pickup_latitude", "pickup_longitude"]].to_numpy(float),
            train[["dropoff_latitude", "dropoff_longitude"]].to_numpy(float)])
        km = fit_clusters(train_pts, int(f["clusters"]), int(cfg["data"].get("world", {}).get(
            "seed", 0)))
    frame = row_features(t, schema, f, km)
    frame["trip_duration"] = t["trip_duration"].astype(float)
    if TRUTH in t:  # the simulator's truth, for the Bayes floor only (never in a view)
        frame[TRUTH] = t[TRUTH].astype(float)
    declared = {k: list(v) for k, v in f["views"].items()}
    views = {k: [c for c in v if c in frame.columns] for k, v in declared.items()}
    unavailable = sorted({c for v in declared.values() for c in v} - set(frame.columns))
    split = pd.Series(np.where(is_test, "test", "train"))
    when = pd.to_datetime(t["pickup_datetime"])
    info = {"kind": f"by time: {how}; CV validates on later training weeks",
            "schema": schema,
            "train": {"from": str(when[~is_test].min()), "to": str(when[~is_test].max())},
            "test": {"from": str(when[is_test].min()), "to": str(when[is_test].max())},
            "unavailable_features": unavailable}
    return FeatureTable(frame=frame, views=views, targets=["trip_duration"], split=split,
                        period=pd.Series(week), split_info=info)
