"""Estimators every case can use: a grouped historical baseline, and linear and LightGBM pipelines
on pandas frames. Models only one case uses live in that case's package (`flights.models`,
`acceptance.models`).

All of them take a raw feature frame (strings for categories, numbers elsewhere), so the model
that MLflow logs is the whole pipeline and serves from the same columns it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge, SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cases.lifecycle.contract import PLAIN, Candidate

REGRESSION_LOSSES = ("squared", "huber", "quantile")


class CategoricalCaster(BaseEstimator, TransformerMixin):
    """Casts the categorical columns to pandas categories with the levels seen in training, so
    LightGBM treats them natively and an unseen level at serving time becomes missing."""

    def __init__(self, categorical: Sequence[str] = ()):
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y=None):
        self.categories_ = {
            c: sorted(X[c].dropna().astype(str).unique().tolist()) for c in self.categorical
        }
        self.columns_ = list(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        # one frame built from its columns (not a copy changed column by column: a served
        # single-row prediction pays pandas' per-column cost, not LightGBM's)
        out = {}
        for c in self.columns_:
            col = X[c]
            if c in self.categories_ and isinstance(col.dtype, pd.StringDtype):
                # already strings: each value's code looked up in the training levels (missing
                # and unseen: -1), the same categorical as below at a third of the cost
                levels = self.categories_[c]
                out[c] = pd.Categorical.from_codes(pd.Index(levels).get_indexer(col),
                                                   categories=levels)
            elif c in self.categories_:
                # strings, without a Python call per row (this runs at every fit and predict)
                values = col.astype(object)
                out[c] = pd.Categorical(values.astype(str).where(values.notna()),
                                        categories=self.categories_[c])
            elif col.dtype == np.float64:
                out[c] = col.to_numpy(copy=True)
            else:
                out[c] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        return pd.DataFrame(out, index=X.index, columns=self.columns_)


class MedianImputer(BaseEstimator, TransformerMixin):
    """Missing values replaced by the column's training median: the same statistics and output
    as scikit-learn's `SimpleImputer(strategy="median")` (a column with no observed value is
    dropped, as there), several times faster to fit on a few hundred thousand rows (a partial
    sort per column, where SimpleImputer sorts a masked array)."""

    def fit(self, X, y=None):
        values = self._values(X)
        self.n_features_in_ = values.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        seen = ~np.isnan(values).all(axis=0)
        self.statistics_ = np.full(values.shape[1], np.nan)
        if seen.any():
            self.statistics_[seen] = np.nanmedian(values[:, seen], axis=0)
        return self

    def transform(self, X):
        values = self._values(X)
        keep = ~np.isnan(self.statistics_)
        values = values[:, keep]
        return np.where(np.isnan(values), self.statistics_[keep], values)

    def get_feature_names_out(self, input_features=None):
        names = (np.asarray(input_features, dtype=object) if input_features is not None
                 else getattr(self, "feature_names_in_",
                              np.array([f"x{i}" for i in range(self.n_features_in_)],
                                       dtype=object)))
        return names[~np.isnan(self.statistics_)]

    @staticmethod
    def _values(X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            return X.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(X, dtype=np.float64).reshape(len(X), -1)


class KeepColumns(BaseEstimator, TransformerMixin):
    """Passes on only the view's columns that are named, in the view's order: a reference model
    (`lgbm-plain`) reads the tables' own columns of a view that also holds engineered ones."""

    def __init__(self, columns: Sequence[str] = ()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        named = set(self.columns)
        self.columns_ = [c for c in X.columns if c in named]
        if not self.columns_:
            raise ValueError(f"none of the columns {list(self.columns)} is in the view "
                             f"({', '.join(map(str, X.columns))})")
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[self.columns_]


class GroupBaseline(BaseEstimator):
    """Historical mean (or class frequencies) per group, backing off through coarser groups when
    a group has fewer than `min_count` training rows: what a team ships before any model."""

    def __init__(self, levels: Sequence[Sequence[str]] = (), min_count: int = 20,
                 kind: str = "regression"):
        self.levels = levels
        self.min_count = min_count
        self.kind = kind

    def _targets(self, y) -> pd.DataFrame:
        y = pd.Series(np.asarray(y))
        if self.kind == "multiclass":
            return pd.get_dummies(y).reindex(columns=self.classes_, fill_value=0).astype(float)
        return pd.DataFrame({"y": y.astype(float)})

    def fit(self, X: pd.DataFrame, y):
        if self.kind == "multiclass":
            self.classes_ = np.array(sorted(pd.unique(np.asarray(y))))
        elif self.kind == "binary":
            self.classes_ = np.array([0, 1])
        T = self._targets(y)
        self.global_ = T.mean().to_numpy()
        self.tables_ = []
        for keys in self.levels:
            keys = list(keys)
            frame = pd.concat([X[keys].reset_index(drop=True).astype(str), T], axis=1)
            grouped = frame.groupby(keys, observed=True)
            means = grouped[list(T.columns)].mean()
            counts = grouped.size()
            self.tables_.append((keys, means[counts >= self.min_count]))
        return self

    def _predict_matrix(self, X: pd.DataFrame) -> np.ndarray:
        out = np.tile(self.global_, (len(X), 1)).astype(float)
        done = np.zeros(len(X), dtype=bool)
        for keys, table in self.tables_:
            if done.all():
                break
            idx = pd.MultiIndex.from_frame(X[keys].astype(str)) if len(keys) > 1 else pd.Index(
                X[keys[0]].astype(str))
            pos = table.index.get_indexer(idx)
            use = (pos >= 0) & ~done
            out[use] = table.to_numpy()[pos[use]]
            done |= use
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        m = self._predict_matrix(X)
        if self.kind == "regression":
            return m[:, 0]
        if self.kind == "binary":
            return (m[:, 0] >= 0.5).astype(int)
        return self.classes_[m.argmax(axis=1)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        m = self._predict_matrix(X)
        if self.kind == "binary":
            p = np.clip(m[:, 0], 1e-6, 1 - 1e-6)
            return np.column_stack([1 - p, p])
        m = np.clip(m, 1e-6, None)
        return m / m.sum(axis=1, keepdims=True)


def linear_pipeline(kind: str, numeric: Sequence[str], categorical: Sequence[str],
                    loss: str = "squared", alpha: float = 1.0, huber_epsilon: float = 30.0,
                    min_frequency: int = 20, seed: int = 0, max_iter: int = 300) -> Pipeline:
    """Standardised numbers (median-imputed) and one-hot categories into a regularised linear
    model. The loss picks Ridge (squared), an averaged SGD fit of the Huber loss (`huber_epsilon`
    in target units) or of the absolute loss (quantile 0.5: the median), which stays fast on
    hundreds of thousands of rows where sklearn's exact Huber and quantile solvers do not, and
    logistic regression for classification."""
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", MedianImputer()),
                              ("scale", StandardScaler())]), list(numeric)),
            ("cat", OneHot(min_frequency=min_frequency), list(categorical)),
        ],
        sparse_threshold=1.0,
    )
    if kind in ("binary", "multiclass"):
        model = LogisticRegression(C=1.0 / max(alpha, 1e-9), max_iter=max_iter)
    elif loss == "squared":
        model = Ridge(alpha=alpha, solver="lsqr")
    elif loss in ("huber", "quantile"):
        model = SGDRegressor(loss="huber" if loss == "huber" else "epsilon_insensitive",
                             epsilon=huber_epsilon if loss == "huber" else 0.0, alpha=1e-6,
                             learning_rate="invscaling", eta0=0.01, average=True, max_iter=15,
                             tol=None, random_state=seed)
    else:
        raise ValueError(f"loss {loss!r}; expected one of {REGRESSION_LOSSES}")
    return Pipeline([("pre", pre), ("model", model)])


class OneHot(BaseEstimator, TransformerMixin):
    """One-hot encoding that is fast on a few hundred thousand rows: levels seen fewer than
    `min_frequency` times in training, unseen levels and missing values all map to the reference
    (all zeros), so serving never fails on a new airport or carrier."""

    def __init__(self, min_frequency: int = 20):
        self.min_frequency = min_frequency

    def fit(self, X: pd.DataFrame, y=None):
        self.levels_ = {}
        for c in X.columns:
            counts = _as_str(X[c]).value_counts()
            self.levels_[c] = sorted(counts[counts >= self.min_frequency].index.tolist())
        return self

    def transform(self, X: pd.DataFrame):
        from scipy import sparse

        blocks = []
        for c, levels in self.levels_.items():
            codes = pd.Categorical(_as_str(X[c]), categories=levels).codes
            rows = np.flatnonzero(codes >= 0)
            blocks.append(sparse.csr_matrix(
                (np.ones(len(rows)), (rows, codes[rows])), shape=(len(X), max(len(levels), 1))))
        return sparse.hstack(blocks, format="csr")

    def get_feature_names_out(self, input_features=None):
        return np.array([f"{c}={v}" for c, levels in self.levels_.items() for v in levels])


def _as_str(s: pd.Series) -> pd.Series:
    """Numbers-as-categories (hour 7.0 -> "7") and strings alike become strings; missing stays
    missing (pd.NA)."""
    if pd.api.types.is_numeric_dtype(s):
        whole = s.dropna()
        if (whole == whole.round()).all():
            return s.round().astype("Int64").astype("string")
    return s.astype("string")


LGBM_THREADS = 2  # the machine the pipeline is sized for; a fixed count keeps fits reproducible


def lgbm_params(seed: int, params: dict | None = None) -> dict:
    """Keyword arguments of every LightGBM model the cases build: the same seed, thread count
    and deterministic, row-wise build give the same trees on a rerun."""
    base = dict(random_state=seed, verbose=-1, deterministic=True, force_row_wise=True,
                n_jobs=LGBM_THREADS)
    base.update(params or {})
    if base.get("force_col_wise"):
        base.pop("force_row_wise")
    return base


def lgbm_pipeline(kind: str, categorical: Sequence[str], loss: str = "squared",
                  params: dict | None = None, huber_delta: float = 1.0,
                  quantile_alpha: float = 0.5, n_classes: int | None = None,
                  seed: int = 0) -> Pipeline:
    """LightGBM with native categorical handling; bit-reproducible for a fixed seed: a
    deterministic build, row-wise histograms, and a fixed thread count (`n_jobs` from the case's
    config, else LGBM_THREADS)."""
    base = lgbm_params(seed, params)
    import lightgbm as lgb

    if kind == "binary":
        model = lgb.LGBMClassifier(objective="binary", **base)
    elif kind == "multiclass":
        model = lgb.LGBMClassifier(objective="multiclass", **base)
    elif loss == "squared":
        model = lgb.LGBMRegressor(objective="regression", **base)
    elif loss == "huber":
        model = lgb.LGBMRegressor(objective="huber", alpha=huber_delta, **base)
    elif loss == "quantile":
        model = lgb.LGBMRegressor(objective="quantile", alpha=quantile_alpha, **base)
    else:
        raise ValueError(f"loss {loss!r}; expected one of {REGRESSION_LOSSES}")
    return Pipeline([("cast", CategoricalCaster(list(categorical))), ("model", model)])


def plain_candidate(kind: str, keep: Sequence[str], categorical: Sequence[str], seed: int,
                    lgbm: Mapping | None = None, wrap: Callable | None = None,
                    **params: str) -> Candidate:
    """`lgbm-plain`, the reference a run's selected model must beat on the same rows and split:
    LightGBM with the library's default parameters (only the seed and the case's thread count,
    `n_jobs` of its LightGBM settings `lgbm`, are set) on the view's columns named in `keep`
    (its other, engineered columns are dropped: `KeepColumns`), the `categorical` ones among
    them native.
    `wrap` wraps the pipeline (e.g. a log target); `params` are logged with the candidate."""
    threads = {k: lgbm[k] for k in ("n_jobs",) if k in (lgbm or {})}
    keep = list(keep)
    cats = [c for c in categorical if c in keep]

    def build():
        model = Pipeline([("columns", KeepColumns(keep)),
                          ("model", lgbm_pipeline(kind, cats, params=threads, seed=seed))])
        return wrap(model) if wrap else model

    return Candidate(PLAIN, build, {"model": "lgbm", "settings": "library defaults", **params})
