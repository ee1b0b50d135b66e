"""Features that fit what the file carries. Coordinates: great-circle and Manhattan distance,
bearing, the points and their k-means clusters (fitted on training trips only), and the points
and the distance along a street grid turned by `features.grid_angle_deg` (Manhattan's
avenues run about 29 degrees east of north). Taxi zones: the zone ids and boroughs (and, only if
allowed, the metered distance). Both: hour, weekday, hour of the week, minute of the day, US
federal holidays, passengers, vendor, and the day's rain when the data has it. Every function
here is row-wise (or takes statistics fitted on training trips), so it also runs on one partition
of a larger frame. Zone-pair statistics depend on the target, so they are fitted inside the
model (tasks.PairStats) on each fold's training rows, never here. So are the taxi zones' places:
TLC files carry no coordinates, but the meter's distance of past trips between two zones is
history known when a trip is booked; `fit_zone_geometry` turns the training trips' distances
into a median per zone pair and pseudo-coordinates of every zone (classical multidimensional
scaling of the pairs' distances), and `zone_geometry_features` reads them for any trip without
its own meter (tasks.ZoneGeometry fits them inside each fold). The latest weeks are the test
set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.eta.data import KM_PER_MILE, TRUTH, bearing_deg, haversine_km, manhattan_km, us_holidays
from cases.lifecycle.contract import FeatureTable

KM_PER_DEG_LAT = 111.2
METER = "meter_km"  # TLC: the trip's metered km, read only to fit statistics on training trips


def time_features(when: pd.Series) -> pd.DataFrame:
    when = pd.to_datetime(when)
    days = when.dt.normalize()
    holidays = us_holidays(days.min(), days.max())
    return pd.DataFrame({
        "hour": when.dt.hour.astype(float),
        "weekday": when.dt.dayofweek.astype(float),
        "hour_of_week": (when.dt.dayofweek * 24 + when.dt.hour).astype(float),
        "minute_of_day": (when.dt.hour * 60 + when.dt.minute).astype(float),
        "holiday": days.isin(holidays).astype(float),
    })


def grid_xy(lat, lon, angle_deg: float, origin: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Kilometres from `origin` (lat, long: the city's centre) along a street grid turned
    `angle_deg` east of north (x: across the avenues, y: along them), from an equirectangular
    projection at the origin's latitude (a fixed scale: the same place, the same point)."""
    lat0, lon0 = (float(v) for v in origin)
    north = (np.asarray(lat, dtype=float) - lat0) * KM_PER_DEG_LAT
    east = (np.asarray(lon, dtype=float) - lon0) * KM_PER_DEG_LAT * np.cos(np.radians(lat0))
    a = np.radians(float(angle_deg))
    return east * np.cos(a) - north * np.sin(a), east * np.sin(a) + north * np.cos(a)


def grid_features(t: pd.DataFrame, angle_deg: float, origin: Sequence[float]) -> pd.DataFrame:
    """The pickup and dropoff on the turned grid and the distance along its streets."""
    px, py = grid_xy(t["pickup_latitude"], t["pickup_longitude"], angle_deg, origin)
    dx, dy = grid_xy(t["dropoff_latitude"], t["dropoff_longitude"], angle_deg, origin)
    return pd.DataFrame({"pickup_x": px, "pickup_y": py, "dropoff_x": dx, "dropoff_y": dy,
                         "grid_km": np.abs(dx - px) + np.abs(dy - py)})


def city_box(data: Mapping) -> Mapping:
    """The city's box: the simulator's, or the real files' (`data.real_bbox`)."""
    return data["world"]["bbox"] if data.get("source") == "simulator" else data["real_bbox"]


def city_centre(data: Mapping) -> tuple[float, float]:
    """The centre of the city's box (`city_box`)."""
    box = city_box(data)
    return (float(np.mean(box["lat"])), float(np.mean(box["long"])))


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
    """Mini-batch k-means on one thread: its batches are small (4,096 points), so a second
    OpenMP thread buys nothing and, on a busy machine, waits on its partner for most of the
    fit; the centres are the same at any thread count."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="openmp"):
        return MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096,
                               n_init=3).fit(points)


def cluster_points(train: pd.DataFrame, at_most: int) -> np.ndarray:
    """The pickup and dropoff points k-means is fitted on: those of every n-th training trip,
    at most `at_most` trips (`features.cluster_sample`). scikit-learn's mini-batch k-means
    draws each batch with a pass over every point (a cumulative sum of the weights), so its
    cost grows with the points it is given, while a sample of a few hundred thousand trips
    places the centres as well as all of them (on the 1M world, the inertia on every training
    point moves less than it does from one k-means seed to another)."""
    step = max(1, -(-len(train) // max(int(at_most), 1)))
    train = train.iloc[::step]
    return np.vstack([train[["pickup_latitude", "pickup_longitude"]].to_numpy(float),
                      train[["dropoff_latitude", "dropoff_longitude"]].to_numpy(float)])


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
                 extras: Sequence[str] | None = None,
                 centre: tuple[float, float] | None = None) -> pd.DataFrame:
    """Every feature that depends on the trip alone (and the fitted k-means `km` and the city's
    `centre` for coordinate trips): the local path calls it on all trips, the Dask path
    (`distributed`) on each partition. `extras`: the optional columns to carry (passengers,
    vendor, rain); by default those the trips have values for."""
    parts = [time_features(t["pickup_datetime"])]
    if schema == "coords":
        geo = pd.concat([geo_features(t), grid_features(t, float(f["grid_angle_deg"]), centre)],
                        axis=1)
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
            zones["trip_distance_km"] = t["trip_distance"].astype(float) * KM_PER_MILE
        parts.append(zones)
    if extras is None:
        extras = [c for c in ("passenger_count", "vendor_id", "precip_mm")
                  if c in t and t[c].notna().any()]
    for c in extras:
        parts.append(pd.DataFrame({c: t[c].astype(float)}))
    return pd.concat(parts, axis=1)


def _undirected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a).astype(str), np.asarray(b).astype(str)
    return np.where(a <= b, np.char.add(np.char.add(a, "|"), b), np.char.add(np.char.add(b, "|"), a))


def classical_mds(d: np.ndarray, dims: int) -> np.ndarray:
    """Points in `dims` dimensions whose distances best match the symmetric matrix `d`
    (Torgerson: the top eigenvectors of the double-centred squared distances). Deterministic up
    to the eigenvectors' signs, which are fixed here (each axis's largest entry positive)."""
    n = len(d)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d ** 2) @ j
    w, v = np.linalg.eigh(b)
    top = np.argsort(w)[::-1][:dims]
    v = v[:, top] * np.sign(v[np.abs(v[:, top]).argmax(axis=0), top])
    return v * np.sqrt(np.maximum(w[top], 0.0))


def fit_zone_geometry(pu, do, km, pu_borough, do_borough, min_trips: int,
                      dims: int = 2) -> dict:
    """From training trips (pickup zone, dropoff zone, metered km, boroughs): the median km of
    every zone pair (either direction) and its trip count, the median km of every borough pair
    (the fallback for pairs never seen), and each zone's pseudo-coordinates (km): the pairs with
    at least `min_trips` trips are edges of a graph, the shortest paths through it complete the
    distance matrix, and classical MDS places the zones of its largest connected part. Plain
    lists and dicts: the state is serialised with the model."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    km = np.asarray(km, dtype=float)
    ok = np.isfinite(km)
    pu, do = np.asarray(pu).astype(str)[ok], np.asarray(do).astype(str)[ok]
    km = km[ok]
    g = pd.Series(km).groupby(_undirected(pu, do))
    med, n = g.median(), g.size()
    boroughs = pd.Series(km).groupby(_undirected(np.asarray(pu_borough)[ok],
                                                 np.asarray(do_borough)[ok])).median()
    zones = sorted(set(pu) | set(do))
    index = {z: i for i, z in enumerate(zones)}
    edges = [(index[a], index[b], v) for (k, v), c in zip(med.items(), n.to_numpy())
             for a, b in [k.split("|")] if c >= min_trips and a != b and v > 0]
    coords = {}
    if edges:
        i, j, v = (np.asarray(x) for x in zip(*edges))
        graph = coo_matrix((v, (i, j)), shape=(len(zones), len(zones))).tocsr()
        dist = shortest_path(graph, method="D", directed=False)
        reach = np.isfinite(dist)
        keep = np.flatnonzero(reach[np.argmax(reach.sum(axis=1))])
        if len(keep) > dims:
            xy = classical_mds(dist[np.ix_(keep, keep)], dims)
            coords = {zones[k]: [float(c) for c in row] for k, row in zip(keep, xy)}
    return {"pairs": [str(k) for k in med.index], "pair_km": med.to_numpy(float).tolist(),
            "pair_trips": n.to_numpy(float).tolist(), "borough_km": boroughs.to_dict(),
            "global_km": float(np.median(km)) if len(km) else 0.0, "coords": coords,
            "dims": int(dims)}


def zone_geometry_features(pu, do, pu_borough, do_borough, geo: Mapping,
                           smoothing: float) -> pd.DataFrame:
    """Each trip's zones read through a fitted `fit_zone_geometry`: the pair's median metered km
    (shrunk toward the pseudo-coordinates' straight line, or the borough pair's median, by
    `smoothing` pseudo-trips) and its trip count; both zones' pseudo-coordinates, the straight
    line between them and its bearing (missing for zones MDS could not place). Never the trip's
    own meter."""
    pu, do = np.asarray(pu).astype(str), np.asarray(do).astype(str)
    key = _undirected(pu, do)
    pos = pd.Index(geo["pairs"]).get_indexer(key)
    hit = pos >= 0
    at = np.where(hit, pos, 0)
    pair_km = np.asarray(geo["pair_km"], dtype=float)
    trips = np.asarray(geo["pair_trips"], dtype=float)
    med = np.where(hit, pair_km[at], np.nan) if len(pair_km) else np.full(len(key), np.nan)
    cnt = np.where(hit, trips[at], 0.0) if len(trips) else np.zeros(len(key))
    dims = int(geo["dims"])
    missing = [np.nan] * dims
    p = np.array([geo["coords"].get(z, missing) for z in pu], dtype=float).reshape(-1, dims)
    d = np.array([geo["coords"].get(z, missing) for z in do], dtype=float).reshape(-1, dims)
    line = np.sqrt(((d - p) ** 2).sum(axis=1))
    borough = pd.Series(_undirected(pu_borough, do_borough)).map(geo["borough_km"]).to_numpy(float)
    prior = np.where(np.isfinite(line) & (pu != do), line, borough)
    prior = np.where(np.isfinite(prior), prior, float(geo["global_km"]))
    k = float(smoothing)
    shrunk = (cnt * np.nan_to_num(med) + k * prior) / np.maximum(cnt + k, 1e-9)
    out = {"pair_km": np.where(cnt > 0, shrunk, prior),
           "pair_km_trips": cnt}
    for i in range(dims):
        out[f"pu_zone_x{i}"], out[f"do_zone_x{i}"] = p[:, i], d[:, i]
    out["zone_line_km"] = line
    if dims >= 2:
        out["zone_bearing"] = np.degrees(np.arctan2(d[:, 0] - p[:, 0], d[:, 1] - p[:, 1])) % 360
    return pd.DataFrame(out)


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    f = cfg["features"]
    t = tables["trips"].sort_values("pickup_datetime", kind="stable").reset_index(drop=True)
    schema = str(t["schema"].iloc[0])
    is_test, week, how = split_by_weeks(t["pickup_datetime"], f)
    km = None
    if schema == "coords":
        train_pts = cluster_points(t.loc[~is_test], int(f["cluster_sample"]))
        km = fit_clusters(train_pts, int(f["clusters"]), int(cfg["data"].get("world", {}).get(
            "seed", 0)))
    frame = row_features(t, schema, f, km, centre=city_centre(cfg["data"]))
    if schema == "zones" and f["zone_geometry"]["enabled"] and "trip_distance" in t:
        # fit-only: the zone-geometry statistics read past trips' meters; never a model input
        frame[METER] = t["trip_distance"].astype(float) * KM_PER_MILE
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
