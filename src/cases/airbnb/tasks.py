"""One task: log price, every model with every encoding of the many-level categorical
(neighbourhood), all on the same host-grouped folds. Baseline: the mean log price of the
neighbourhood and room type (a geometric-mean price per neighbourhood and room type).

Encodings (`Encode`), fitted inside each fold on its training rows only:
- onehot: one indicator per level (rare levels pooled);
- target: scikit-learn's TargetEncoder, which cross-fits on the training rows so a listing's own
  price never encodes its own neighbourhood;
- tree: levels grouped into at most `tree_buckets` buckets by a shallow regression tree on the
  level's mean log price;
- native: LightGBM's own categorical splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from cases.errors import CasebookError
from cases.lifecycle.bootstrap import log_target_statistics
from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.evaluate import log_target_metrics
from cases.lifecycle.models import (
    GroupBaseline,
    OneHot,
    lgbm_params,
    lgbm_pipeline,
    linear_pipeline,
)

ENCODINGS = ("onehot", "target", "tree", "native")
MODELS = ("linear", "forest", "lgbm")


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
    return Pipeline([("encode", Encode(column, method, int(t["tree_buckets"]), seed)),
                     ("model", model)])


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    pairs = [(m, e) for m in t["models"] for e in t["encodings"][m]]
    bad = [f"{m}-{e}" for m, e in pairs if m not in MODELS or e not in ENCODINGS
           or (e == "native" and m != "lgbm")]
    if bad:
        raise CasebookError(f"case.train.encodings: unsupported {', '.join(bad)} (models "
                            f"{', '.join(MODELS)}; encodings {', '.join(ENCODINGS)}; 'native' "
                            f"only for lgbm)")

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        return [Candidate(f"{m}-{e}", lambda m=m, e=e: build_model(m, e, cols, cfg, seed),
                          {"model": m, "encoding": e}) for m, e in pairs]

    levels = [["neighbourhood", "room_type"], ["room_type"]]
    return [Task("price", "regression", "log_price", t["selection_metric"]["price"], candidates,
                 lambda: GroupBaseline(levels, min_count=5))]


def price_metrics(y, pred, rows, cfg) -> dict:
    """R² on log price and the errors in dollars (what a host hears)."""
    return log_target_metrics(y, pred)


def price_statistics(y, pred, rows, cfg) -> dict:
    """The bootstrap twins of `price_metrics`."""
    return log_target_statistics(y, pred)
