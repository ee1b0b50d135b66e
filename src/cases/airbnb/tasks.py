"""One task: log price, every model with every encoding of the many-level categorical
(neighbourhood), all on the same host-grouped folds. Baseline: the mean log price of the
neighbourhood and room type (a geometric-mean price per neighbourhood and room type).

Encodings (`Encode`), fitted inside each fold on its training rows only:
- onehot: one indicator per level (rare levels pooled);
- target: scikit-learn's TargetEncoder, which cross-fits on the training rows so a listing's own
  price never encodes its own neighbourhood;
- tree: levels grouped into at most `tree_buckets` buckets by a shallow regression tree on the
  level's mean log price;
- native: LightGBM's own categorical splits.

Two more LightGBM candidates on the same folds:
- `lgbm-plain`, the reference every run must beat: LightGBM with the library's defaults, native
  categories, on the file's own columns;
- `lgbm-tuned`: the file's own columns, the word indicators of the listing's text (`Words`: the
  vocabulary counted over each fit's training rows), the mean log price of the nearest training
  listings (`NeighbourPrice`, fitted inside each fold, its own inner folds holding out whole
  hosts) and the parameters of `case.train.tuned`, chosen on CV folds only.
Every other candidate, like `lgbm-plain`, sees the file's own columns only (`own_columns`: not the
listing's text nor the host's code, which only lgbm-tuned's steps read): the encodings are
compared on the same inputs, and a forest does not split on hundreds of words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from cases.airbnb.features import HOST, TEXT, Words
from cases.errors import CasebookError
from cases.lifecycle.bootstrap import log_target_statistics
from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.evaluate import log_target_metrics
from cases.lifecycle.models import (
    GroupBaseline,
    KeepColumns,
    OneHot,
    lgbm_params,
    lgbm_pipeline,
    linear_pipeline,
    plain_candidate,
)

ENCODINGS = ("onehot", "target", "tree", "native")
MODELS = ("linear", "forest", "lgbm")
REFERENCES = ("plain", "tuned")  # case.train.references: the LightGBM candidates beyond encodings
ENGINEERED = (TEXT, HOST)  # columns only lgbm-tuned reads (the view's token `words`)


def own_columns(cols: Sequence[str]) -> list[str]:
    """The view's columns without the engineered ones (`ENGINEERED`)."""
    return [c for c in cols if not c.startswith(ENGINEERED)]


class NeighbourPrice(BaseEstimator, TransformerMixin):
    """Adds `neighbour_log_price`: the mean log price of the `k` nearest training listings of the
    same room type (great-circle distance on latitude and longitude), and `neighbour_km`, the
    distance to the k-th of them, and drops the host column `group`. A training row's value
    comes from a model fitted on the other folds of the training rows, folds of whole hosts
    (`folds`, shuffled, as CV's): neither a listing's own price nor its host's other listings
    are in its feature (a host prices its listings alike, and a test host is never in
    training); rows without coordinates get missing values."""

    def __init__(self, k: int = 20, folds: int = 5, seed: int = 0, group: str = HOST):
        self.k = k
        self.folds = folds
        self.seed = seed
        self.group = group

    def fit(self, X: pd.DataFrame, y=None):
        self.fit_transform(X, y)
        return self

    def _points(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        missing = [c for c in ("latitude", "longitude") if c not in X]
        if missing:
            raise CasebookError(f"NeighbourPrice: column(s) {', '.join(missing)} not in the "
                                f"view; lgbm-tuned needs the listings' coordinates")
        ll = np.radians(X[["latitude", "longitude"]].to_numpy(dtype=float))
        room = (X["room_type"].astype(str).to_numpy() if "room_type" in X
                else np.zeros(len(X), dtype=object))
        return ll, room, np.isfinite(ll).all(axis=1)

    @staticmethod
    def _index(ll_src, y_src, room_src) -> dict:
        """{room type: (ball tree of its listings, their log prices)}."""
        from sklearn.neighbors import BallTree

        return {r: (BallTree(ll_src[room_src == r], metric="haversine"), y_src[room_src == r])
                for r in np.unique(room_src)}

    def _query(self, index, ll, room, ok) -> tuple[np.ndarray, np.ndarray]:
        mean = np.full(len(ll), np.nan)
        dist = np.full(len(ll), np.nan)
        for r, (tree, y_src) in index.items():
            q = ok & (room == r)
            if not q.any():
                continue
            d, i = tree.query(ll[q], k=int(min(self.k, len(y_src))))
            mean[q] = y_src[i].mean(axis=1)
            dist[q] = d[:, -1] * 6371.0
        return mean, dist

    def fit_transform(self, X: pd.DataFrame, y=None, **fit_params):
        from cases.lifecycle.selection import group_folds

        if self.group not in X:
            raise CasebookError(f"NeighbourPrice: the host column {self.group!r} is not in the "
                                f"view; lgbm-tuned needs it (the view's token `words` adds it) "
                                f"to hold out whole hosts")
        ll, room, ok = self._points(X)
        y = np.asarray(y, dtype=float)
        self.index_ = self._index(ll[ok], y[ok], room[ok])  # what serving queries
        mean = np.full(len(X), np.nan)
        dist = np.full(len(X), np.nan)
        rows = np.flatnonzero(ok)
        hosts = X[self.group].to_numpy()[rows]
        if len(np.unique(hosts)) >= self.folds:
            for a, b in group_folds(hosts, self.folds, self.seed):
                src, dst = rows[a], rows[b]
                hit = np.zeros(len(X), dtype=bool)
                hit[dst] = True
                m, d = self._query(self._index(ll[src], y[src], room[src]), ll, room, hit)
                mean[dst], dist[dst] = m[dst], d[dst]
        return self._add(X, mean, dist)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        ll, room, ok = self._points(X)
        return self._add(X, *self._query(self.index_, ll, room, ok))

    def _add(self, X, mean, dist) -> pd.DataFrame:
        return X.drop(columns=[self.group], errors="ignore").assign(neighbour_log_price=mean,
                                                                     neighbour_km=dist)


class Encode(BaseEstimator, TransformerMixin):
    """Re-encodes `column`: 'target' -> numeric `<column>_te`; 'tree' -> `<column>_bucket`
    (a category); 'onehot' and 'native' leave it to the model pipeline."""

    def __init__(self, column: str = "neighbourhood", method: str = "onehot", buckets: int = 8,
                 seed: int = 0):
        self.column = column
        self.method = method
        self.buckets = buckets
        self.seed = seed

    def fit(self, X: pd.DataFrame, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None, **fit_params):
        if self.method not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.method!r}; expected one of {ENCODINGS}")
        if self.method in ("onehot", "native"):  # left to the model: the column may be absent
            return self.transform(X)
        col = X[[self.column]].astype(str)
        y = np.asarray(y, dtype=float)
        if self.method == "target":
            from sklearn.model_selection import KFold
            from sklearn.preprocessing import TargetEncoder

            self.encoder_ = TargetEncoder(target_type="continuous",
                                          cv=KFold(5, shuffle=True, random_state=self.seed))
            # cross-fitted: each training row is encoded by a model that never saw its price
            encoded = self.encoder_.fit_transform(col, y)[:, 0]
            return self._replace(X, encoded)
        if self.method == "tree":
            from sklearn.tree import DecisionTreeRegressor

            means = pd.Series(y).groupby(col[self.column].to_numpy()).mean()
            tree = DecisionTreeRegressor(max_leaf_nodes=max(int(self.buckets), 2),
                                         min_samples_leaf=20, random_state=self.seed)
            level_mean = col[self.column].map(means).to_numpy()[:, None]
            tree.fit(level_mean, y)
            leaves = tree.apply(means.to_numpy()[:, None])
            self.buckets_ = {str(k): f"b{int(v)}" for k, v in zip(means.index, leaves)}
            self.n_buckets_ = int(len(set(leaves)))
        return self.transform(X)

    def _replace(self, X, encoded):
        X = X.drop(columns=[self.column]).copy()
        X[f"{self.column}_te"] = encoded
        return X

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if self.method == "target":
            return self._replace(X, self.encoder_.transform(X[[self.column]].astype(str))[:, 0])
        if self.method == "tree":
            out = X.drop(columns=[self.column]).copy()
            out[f"{self.column}_bucket"] = X[self.column].astype(str).map(self.buckets_).fillna(
                "unseen")
            return out
        return X


def encoded_columns(cols: Sequence[str], categorical: Sequence[str], column: str,
                    method: str) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns after `Encode(column, method)`."""
    cat = [c for c in categorical if c in cols and c != column]
    num = [c for c in cols if c not in categorical]
    if method == "target":
        num.append(f"{column}_te")
    elif method == "tree":
        cat.append(f"{column}_bucket")
    elif column in cols:
        cat.append(column)
    return num, cat


def dense_pipeline(model, numeric: Sequence[str], categorical: Sequence[str]) -> Pipeline:
    """Median-imputed numbers and one-hot categories (rare levels pooled) into `model`."""
    pre = ColumnTransformer([("num", SimpleImputer(strategy="median"), list(numeric)),
                             ("cat", OneHot(min_frequency=5), list(categorical))],
                            sparse_threshold=0.0)
    return Pipeline([("pre", pre), ("model", model)])


def build_model(name: str, method: str, cols: Sequence[str], cfg: Mapping, seed: int):
    t, f = cfg["train"], cfg["features"]
    cols = own_columns(cols)
    column = f["high_cardinality"]
    num, cat = encoded_columns(cols, f["categorical"], column, method)
    if name == "linear":
        model = linear_pipeline("regression", num, cat, alpha=float(t["linear_alpha"]),
                                min_frequency=5, seed=seed)
    elif name == "forest":
        from cases.lifecycle.selection import SerialForestRegressor  # threaded predict sums vary

        model = dense_pipeline(SerialForestRegressor(random_state=seed, **dict(t["forest"])),
                               num, cat)
    elif name == "lgbm" and method == "onehot":
        import lightgbm as lgb

        model = dense_pipeline(lgb.LGBMRegressor(**lgbm_params(seed, dict(t["lgbm"]))), num, cat)
    elif name == "lgbm":
        model = lgbm_pipeline("regression", cat, params=dict(t["lgbm"]), seed=seed)
    else:
        raise CasebookError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return Pipeline([("columns", KeepColumns(cols)),
                     ("encode", Encode(column, method, int(t["tree_buckets"]), seed)),
                     ("model", model)])


def reference(name: str, cols: Sequence[str], cfg: Mapping, seed: int) -> Candidate:
    """The candidate `lgbm-<name>` of `case.train.references`: `lgbm-plain` (library defaults on
    the file's own columns, `models.plain_candidate`) or `lgbm-tuned` (`reference_model`)."""
    params = {"encoding": "native", "reference": name}
    if name == "plain":
        return plain_candidate("regression", own_columns(cols), cfg["features"]["categorical"],
                               seed, cfg["train"]["lgbm"], **params)
    if name not in REFERENCES:
        raise CasebookError(f"case.train.references: unknown {name!r}; expected one of "
                            f"{', '.join(REFERENCES)}")
    return Candidate(f"lgbm-{name}", lambda: reference_model(name, cols, cfg, seed),
                     {"model": "lgbm", **params})


def reference_model(name: str, cols: Sequence[str], cfg: Mapping, seed: int) -> Pipeline:
    """`lgbm-plain` (library defaults on the file's own columns) or `lgbm-tuned` (every column,
    neighbour prices, tuned parameters); see the module's docstring."""
    t, f = cfg["train"], cfg["features"]
    categorical = [c for c in f["categorical"] if c in cols]
    if name == "plain":
        return reference(name, cols, cfg, seed).build()
    if name == "tuned":
        tuned = dict(t["tuned"])
        text = f["text"]
        steps = [("words", Words(TEXT, int(text["words"]), int(text["min_listings"])))] if (
            TEXT in cols) else []
        return Pipeline([*steps,
                         ("neighbours", NeighbourPrice(int(tuned.pop("neighbours")),
                                                       seed=seed)),
                         ("model", lgbm_pipeline("regression", categorical, params=tuned,
                                                 seed=seed))])
    raise CasebookError(f"case.train.references: unknown {name!r}; expected one of "
                        f"{', '.join(REFERENCES)}")


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    pairs = [(m, e) for m in t["models"] for e in t["encodings"][m]]
    references = list(t.get("references") or [])
    bad = [f"{m}-{e}" for m, e in pairs if m not in MODELS or e not in ENCODINGS
           or (e == "native" and m != "lgbm")]
    if bad:
        raise CasebookError(f"case.train.encodings: unsupported {', '.join(bad)} (models "
                            f"{', '.join(MODELS)}; encodings {', '.join(ENCODINGS)}; 'native' "
                            f"only for lgbm)")

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        return [Candidate(f"{m}-{e}", lambda m=m, e=e: build_model(m, e, cols, cfg, seed),
                          {"model": m, "encoding": e}) for m, e in pairs] + [
            reference(r, cols, cfg, seed) for r in references]

    levels = [["neighbourhood", "room_type"], ["room_type"]]
    return [Task("price", "regression", "log_price", t["selection_metric"]["price"], candidates,
                 lambda: GroupBaseline(levels, min_count=5))]


def price_metrics(y, pred, rows, cfg) -> dict:
    """R² on log price and the errors in dollars (what a host hears)."""
    return log_target_metrics(y, pred)


def price_statistics(y, pred, rows, cfg) -> dict:
    """The bootstrap twins of `price_metrics`."""
    return log_target_statistics(y, pred)
