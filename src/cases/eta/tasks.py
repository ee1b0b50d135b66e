"""One task: trip duration in seconds. Baseline: the median speed of the hour times the distance
(or, without a distance, the zone pair's median duration). Candidates: a linear model and
LightGBM, both on log duration, both with zone-pair statistics fitted on their training rows
(on TLC files also the zones' geometry from the training trips' meters: `ZoneGeometry`), and the
plain reference `lgbm-plain`: LightGBM with the library's default settings on the raw
pickup and dropoff places and times only (`train.plain_columns`), no engineered feature, so the
run measures on its own rows and split what the features and the tuning add."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from cases.eta.features import METER, fit_zone_geometry, zone_geometry_features
from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.models import lgbm_pipeline, linear_pipeline, plain_candidate

PAIRS = (("pickup_cluster", "dropoff_cluster"), ("pu_zone", "do_zone"))
DISTANCES = ("gc_km", "trip_distance_km")


def pair_of(cols: Sequence[str]) -> tuple[str, str] | None:
    return next((p for p in PAIRS if set(p) <= set(cols)), None)


class PairStats(BaseEstimator, TransformerMixin):
    """Adds the median target of the trip's (pickup, dropoff) zone pair (inside `on_log`: the
    log duration) and how many training trips it rests on, shrunk toward the pickup zone's
    median when the pair is rare (`smoothing` pseudo-trips). Fitted on the rows it is given, so
    inside each CV fold, never on validation or test trips."""

    def __init__(self, pickup: str = "pickup_cluster", dropoff: str = "dropoff_cluster",
                 smoothing: float = 20.0):
        self.pickup = pickup
        self.dropoff = dropoff
        self.smoothing = smoothing

    def fit(self, X: pd.DataFrame, y):
        target = pd.Series(np.asarray(y, dtype=float), index=X.index)
        self.global_ = float(target.median())
        # plain dicts: the fitted model is serialised with skops, which takes no pandas state
        self.origin_ = target.groupby(X[self.pickup].astype(str)).median().to_dict()
        pair, key, _, _ = _pairs(X, self.pickup, self.dropoff)
        g = target.groupby(key.to_numpy()[pair])
        # keys and arrays (no pandas state either), looked up with one vectorised indexer per
        # transform instead of a Python call per trip
        med = g.median()
        self.pair_keys_ = [str(k) for k in med.index]
        self.pair_median_ = med.to_numpy(dtype=float)
        self.pair_count_ = g.size().reindex(med.index).to_numpy(dtype=float)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        # look-ups once per distinct pickup and pair, not once per trip
        pair, key, pick, pick_values = _pairs(X, self.pickup, self.dropoff)
        origin = pick_values.map(self.origin_).fillna(self.global_).to_numpy(dtype=float)[pick]
        pos = pd.Index(self.pair_keys_).get_indexer(key)[pair]
        hit = pos >= 0
        at = np.where(hit, pos, 0)
        med = np.where(hit, self.pair_median_[at], np.nan) if len(pos) and len(
            self.pair_keys_) else np.full(len(key), np.nan)
        cnt = np.where(hit, self.pair_count_[at], 0.0) if len(pos) and len(
            self.pair_keys_) else np.zeros(len(key))
        med = np.where(cnt > 0, med, origin)
        k = float(self.smoothing)
        return X.assign(pair_median=(cnt * med + k * origin) / np.maximum(cnt + k, 1e-9),
                        pair_trips=cnt)


class ZoneGeometry(BaseEstimator, TransformerMixin):
    """TLC trips have zones, not coordinates. Fitted on the rows it is given (inside each CV fold,
    never on validation or test trips): the median metered km of each zone pair and the zones'
    pseudo-coordinates from those distances (features.fit_zone_geometry). Transform adds them to
    every trip (features.zone_geometry_features) and drops the `meter` column: the trip's own
    meter is read only to fit, never to predict, and may be absent when predicting."""

    def __init__(self, pickup: str = "pu_zone", dropoff: str = "do_zone",
                 pickup_borough: str = "pu_borough", dropoff_borough: str = "do_borough",
                 meter: str = METER, min_trips: int = 5, smoothing: float = 5.0, dims: int = 2):
        self.pickup, self.dropoff = pickup, dropoff
        self.pickup_borough, self.dropoff_borough = pickup_borough, dropoff_borough
        self.meter = meter
        self.min_trips, self.smoothing, self.dims = min_trips, smoothing, dims

    def fit(self, X: pd.DataFrame, y=None):
        self.geometry_ = fit_zone_geometry(X[self.pickup], X[self.dropoff], X[self.meter],
                                           X[self.pickup_borough], X[self.dropoff_borough],
                                           int(self.min_trips), int(self.dims))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.drop(columns=[self.meter], errors="ignore")
        geo = zone_geometry_features(X[self.pickup], X[self.dropoff], X[self.pickup_borough],
                                     X[self.dropoff_borough], self.geometry_,
                                     float(self.smoothing))
        geo.index = X.index
        return pd.concat([X, geo], axis=1)

    def columns(self) -> list[str]:
        """The columns transform adds."""
        one = {self.pickup: ["1"], self.dropoff: ["1"], self.pickup_borough: ["a"],
               self.dropoff_borough: ["a"]}
        empty = {"pairs": [], "pair_km": [], "pair_trips": [], "borough_km": {}, "global_km": 0.0,
                 "coords": {}, "dims": int(self.dims)}
        return list(zone_geometry_features(*one.values(), empty, 1.0).columns)


def _pairs(X: pd.DataFrame, a: str, b: str) -> tuple[np.ndarray, pd.Series, np.ndarray,
                                                     pd.Series]:
    """Each row's position among the distinct (`a`, `b`) pairs and those pairs' keys, "a>b" with
    both as `astype(str)` makes them; also each row's position among the distinct `a` and those
    as strings. The strings are made once per distinct value, not once per trip."""
    pick, pick_values = _distinct(X[a])
    drop, drop_values = _distinct(X[b])
    n = max(len(drop_values), 1)
    pair, pairs = pd.factorize(pick.astype(np.int64) * n + drop)
    key = (pick_values.iloc[pairs // n].reset_index(drop=True) + ">"
           + drop_values.iloc[pairs % n].reset_index(drop=True))
    return pair, key, pick, pick_values


def _distinct(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's position among the column's distinct values, and those values as strings
    (as `astype(str)` makes them row by row; a missing value stays missing)."""
    codes, values = pd.factorize(column, use_na_sentinel=False)
    return codes, pd.Series(values).astype(str)


class SpeedBaseline(BaseEstimator, RegressorMixin):
    """Distance divided by the median speed of trips that started in the same hour: what a
    dispatcher's rule of thumb does. It uses the first distance the data has (straight line, or
    the metered one if allowed); without any, the zone pair's median duration."""

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y, dtype=float)
        self.distance_ = next((d for d in DISTANCES if d in X.columns), None)
        if self.distance_:
            speed = pd.Series(X[self.distance_].to_numpy(float) / y)
            self.speed_ = speed.groupby(X["hour"].to_numpy()).median().to_dict()
            self.global_ = float(speed.median())
        else:
            self.stats_ = PairStats(*pair_of(list(X.columns)), smoothing=0.0).fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.distance_:
            speed = X["hour"].map(self.speed_).fillna(self.global_).to_numpy()
            return X[self.distance_].to_numpy(float) / speed
        return self.stats_.transform(X)["pair_median"].to_numpy()


def on_log(model) -> TransformedTargetRegressor:
    """Fit on log(1 + seconds), predict seconds: errors in ratio, as RMSLE scores them."""
    return TransformedTargetRegressor(regressor=model, func=np.log1p, inverse_func=np.expm1,
                                      check_inverse=False)


def lgbm_settings(cfg: Mapping) -> dict:
    """The LightGBM settings of the data source: `train.lgbm`, with `train.lgbm_real`'s keys
    replacing its own on the real files (`data.source=real`)."""
    t = cfg["train"]
    real = (t.get("lgbm_real") or {}) if cfg["data"]["source"] == "real" else {}
    return {**dict(t["lgbm"]), **dict(real)}


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    categorical_all = list(cfg["features"]["categorical"])

    geo_cfg = cfg["features"]["zone_geometry"]

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        pair = pair_of(cols)
        cat = [c for c in categorical_all if c in cols]
        stats = [("pairs", PairStats(*pair, smoothing=float(t["pair_smoothing"])))] if pair else []
        extra = ["pair_median", "pair_trips"] if pair else []
        if METER in cols:  # the zones' geometry from training trips' meters (TLC)
            geo = ZoneGeometry(meter=METER, min_trips=int(geo_cfg["min_trips"]),
                               smoothing=float(geo_cfg["smoothing"]), dims=int(geo_cfg["dims"]))
            stats = [("zones", geo)] + stats
            extra = geo.columns() + extra
        numeric = [c for c in cols if c not in cat and c != METER] + extra
        # the linear model: hours and weekdays as categories, log distances, the pair median
        lin_cat = cat + [c for c in ("hour", "weekday") if c in cols]
        lin_num = [c for c in numeric if c not in lin_cat]

        def linear():
            return on_log(Pipeline(stats + [("model", linear_pipeline(
                "regression", lin_num, lin_cat, alpha=float(t["linear_alpha"]), seed=seed))]))

        def lgbm():
            return on_log(Pipeline(stats + [("model", lgbm_pipeline(
                "regression", cat, params=lgbm_settings(cfg), seed=seed))]))

        plain_cols = [c for c in t["plain_columns"] if c in cols]
        return [Candidate("linear", linear, {"model": "ridge", "target": "log1p"}),
                plain_candidate("regression", plain_cols, cat, seed, t["lgbm"], wrap=on_log,
                                target="log1p", columns=",".join(plain_cols)),
                Candidate("lgbm", lgbm, {"model": "lgbm", "target": "log1p"})]

    return [Task("duration", "regression", "trip_duration", t["selection_metric"]["duration"],
                 candidates, SpeedBaseline)]


def duration_metrics(y, pred, rows, cfg) -> dict:
    """RMSLE and the absolute percentage error at the median and the 90th percentile."""
    y = np.asarray(y, dtype=float)
    pred = np.clip(np.asarray(pred, dtype=float), 0, None)
    ape = 100 * np.abs(pred - y) / y
    return {"rmsle": float(np.sqrt(np.mean((np.log1p(pred) - np.log1p(y)) ** 2))),
            "ape_p50": float(np.percentile(ape, 50)), "ape_p90": float(np.percentile(ape, 90))}


def duration_statistics(y, pred, rows, cfg) -> dict:
    """The bootstrap twins of `duration_metrics`."""
    from cases.lifecycle.bootstrap import Quantile, root_mean_of

    y = np.asarray(y, dtype=float)
    pred = np.clip(np.asarray(pred, dtype=float), 0, None)
    ape = 100 * np.abs(pred - y) / y
    return {"rmsle": root_mean_of((np.log1p(pred) - np.log1p(y)) ** 2),
            "ape_p50": Quantile(ape, 0.5), "ape_p90": Quantile(ape, 0.9)}
