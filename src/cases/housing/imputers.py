"""The ways of filling missing square footage, each a scikit-learn transformer that fills the
masked columns of a view (the rest pass through), so it sits in a pipeline in front of the price
model and is fitted inside each CV fold on that fold's training rows only.

`strategy(name, ...)` builds the whole candidate: the fill, then the same LightGBM price model.
`drop` trains on complete rows only (serving still needs a value: it fills the training median,
stated in the report); `native` fills nothing and lets LightGBM route missing values, with a
missing indicator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.pipeline import Pipeline

from cases.housing.data import MECHANISMS
from cases.lifecycle.models import lgbm_params

STRATEGIES = ("drop", "mean", "median", "group_median", "knn", "iterative", "lgbm_imputer",
              "native")
# numeric inputs the model-based fills may use (zipcode only where categories are native)
NUMERIC_INPUTS = ("bedrooms", "bathrooms", "grade", "yr_built", "sqft_lot", "lat", "long")


# a size column as the truth or as one mechanism's masked copy (not e.g. the real file's
# `sqft_living15`, the neighbours' size, which is never masked)
SQFT_COLUMNS = {c: {c, *(f"{c}_{m}" for m in MECHANISMS)}
                for c in ("sqft_living", "sqft_basement")}


def masked_columns(cols: Sequence[str]) -> tuple[str, str]:
    """(living, basement) columns of a view: `sqft_living_<mech>`, `sqft_basement_<mech>`."""
    living = [c for c in cols if c in SQFT_COLUMNS["sqft_living"]]
    basement = [c for c in cols if c in SQFT_COLUMNS["sqft_basement"]]
    if len(living) != 1 or len(basement) != 1:
        raise ValueError(f"a housing view needs one sqft_living* and one sqft_basement* column, "
                         f"got {list(cols)}")
    return living[0], basement[0]


class _Fill(BaseEstimator, TransformerMixin):
    """Base: fills `living` and `basement` where living is missing (they go missing together)."""

    def __init__(self, living: str = "sqft_living", basement: str = "sqft_basement"):
        self.living = living
        self.basement = basement

    def _fit(self, X: pd.DataFrame) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y=None):
        known = X[self.living].notna()
        if not known.any():
            raise ValueError(f"{self.living}: no known values to fit a fill on")
        self._fit(X[known])
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        miss = X[self.living].isna().to_numpy()
        if miss.any():
            living, basement = self._predict(X[miss])
            living = np.clip(living, 200, None)
            basement = np.clip(basement, 0, 0.9 * living)
            X.loc[miss, self.living] = living
            X.loc[miss, self.basement] = basement
        return X

    def fill(self, X: pd.DataFrame) -> pd.DataFrame:
        """Only the filled values of the rows where living was missing (for scoring the fill)."""
        return self.transform(X).loc[X[self.living].isna(), [self.living, self.basement]]


class ConstantFill(_Fill):
    def __init__(self, living: str = "sqft_living", basement: str = "sqft_basement",
                 statistic: str = "median"):
        super().__init__(living, basement)
        self.statistic = statistic

    def _fit(self, X):
        agg = np.mean if self.statistic == "mean" else np.median
        self.values_ = (float(agg(X[self.living])), float(agg(X[self.basement])))

    def _predict(self, X):
        return np.full(len(X), self.values_[0]), np.full(len(X), self.values_[1])


class GroupMedianFill(_Fill):
    """Median of homes in the same zipcode with the same bedrooms, backing off to the zipcode,
    then to all homes, when a group has fewer than `min_count` known sizes."""

    def __init__(self, living: str = "sqft_living", basement: str = "sqft_basement",
                 levels: Sequence[Sequence[str]] = (("zipcode", "bedrooms"), ("zipcode",)),
                 min_count: int = 5):
        super().__init__(living, basement)
        self.levels = levels
        self.min_count = min_count

    def _fit(self, X):
        self.global_ = X[[self.living, self.basement]].median().to_numpy()
        # plain dicts (joined group key -> [living, basement]): skops takes no pandas state
        self.tables_ = []
        for keys in self.levels:
            keys = list(keys)
            g = X.groupby(_group_key(X, keys))
            med = g[[self.living, self.basement]].median()[g.size() >= self.min_count]
            self.tables_.append((keys, {k: v.tolist() for k, v in zip(med.index, med.to_numpy())}))

    def _predict(self, X):
        out = np.tile(self.global_, (len(X), 1))
        done = np.zeros(len(X), dtype=bool)
        for keys, table in self.tables_:
            found = _group_key(X, keys).map(table)
            use = found.notna().to_numpy() & ~done
            if use.any():
                out[use] = np.vstack(found[use].to_numpy())
            done |= use
        return out[:, 0], out[:, 1]


def _group_key(X: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    key = X[keys[0]].astype(str)
    for k in keys[1:]:
        key = key + "|" + X[k].astype(str)
    return key


def _numeric(X: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    out = X[list(cols)].astype(float).copy()
    if "sqft_lot" in out:
        out["sqft_lot"] = np.log(out["sqft_lot"])
    return out.to_numpy()


class KNNFill(_Fill):
    """The average size of the `neighbors` most similar homes with a known size (standardised
    location, rooms, grade, age and lot). A KD-tree over the known homes, so it scales to
    100,000 rows where sklearn's KNNImputer (all pairwise distances) does not."""

    def __init__(self, living: str = "sqft_living", basement: str = "sqft_basement",
                 neighbors: int = 10, inputs: Sequence[str] = NUMERIC_INPUTS):
        super().__init__(living, basement)
        self.neighbors = neighbors
        self.inputs = inputs

    def _fit(self, X):
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.preprocessing import StandardScaler

        A = _numeric(X, self.inputs)
        self.scaler_ = StandardScaler().fit(A)
        self.knn_ = KNeighborsRegressor(n_neighbors=min(self.neighbors, len(X))).fit(
            self.scaler_.transform(A), X[[self.living, self.basement]].to_numpy(float))

    def _predict(self, X):
        out = self.knn_.predict(self.scaler_.transform(_numeric(X, self.inputs)))
        return out[:, 0], out[:, 1]


class IterativeFill(_Fill):
    """scikit-learn's IterativeImputer (chained Bayesian ridge regressions, MICE-like) over the
    numeric columns, log sizes in, sizes out."""

    def __init__(self, living: str = "sqft_living", basement: str = "sqft_basement",
                 max_iter: int = 10, seed: int = 0, inputs: Sequence[str] = NUMERIC_INPUTS):
        super().__init__(living, basement)
        self.max_iter = max_iter
        self.seed = seed
        self.inputs = inputs

    def _matrix(self, X):
        return np.column_stack([np.log(X[self.living].astype(float)),
                                np.log1p(X[self.basement].astype(float)),
                                _numeric(X, self.inputs)])

    def fit(self, X, y=None):
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        # the chained models need the rows with missing sizes too: they are training rows
        self.imp_ = IterativeImputer(max_iter=self.max_iter, random_state=self.seed,
                                     tol=1e-3).fit(self._matrix(X))
        return self

    def _predict(self, X):
        out = self.imp_.transform(self._matrix(X))
        return np.exp(out[:, 0]), np.expm1(out[:, 1])


class LGBMFill(_Fill):
    """A LightGBM model of log living area from everything else the listing shows (zipcode as a
    native category), and one of the basement's share of it; trained on homes with a known size."""

    def __init__(self, living: str = "sqft_living", basement: str = "sqft_basement",
                 params: Mapping | None = None, seed: int = 0,
                 inputs: Sequence[str] = NUMERIC_INPUTS + ("zipcode",)):
        super().__init__(living, basement)
        self.params = params
        self.seed = seed
        self.inputs = inputs

    def _X(self, X):
        out = X[list(self.inputs)].copy()
        if "zipcode" in out:
            out["zipcode"] = pd.Categorical(out["zipcode"].astype(str), categories=self.zips_)
        return out

    def _fit(self, X):
        import lightgbm as lgb

        self.zips_ = sorted(X["zipcode"].astype(str).unique()) if "zipcode" in self.inputs else []
        base = lgbm_params(self.seed, self.params)
        A = self._X(X)
        living = X[self.living].astype(float)
        self.size_ = lgb.LGBMRegressor(**base).fit(A, np.log(living))
        self.share_ = lgb.LGBMRegressor(**base).fit(A, X[self.basement].astype(float) / living)

    def _predict(self, X):
        A = self._X(X)
        living = np.exp(self.size_.predict(A))
        return living, np.clip(self.share_.predict(A), 0, 0.7) * living


class MissingIndicator(BaseEstimator, TransformerMixin):
    """Adds `sqft_missing` (1 where living is missing) and leaves the gaps for LightGBM."""

    def __init__(self, living: str = "sqft_living"):
        self.living = living

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = X.copy()
        X["sqft_missing"] = X[self.living].isna().astype(float)
        return X


class DropIncomplete(BaseEstimator, RegressorMixin):
    """Trains the price model on complete listings only. A listing without a size still needs a
    price at serving time, so it gets the training median (the stated rule)."""

    def __init__(self, estimator=None, living: str = "sqft_living",
                 basement: str = "sqft_basement"):
        self.estimator = estimator
        self.living = living
        self.basement = basement

    def fit(self, X, y):
        keep = X[self.living].notna().to_numpy()
        self.fill_ = ConstantFill(self.living, self.basement, "median").fit(X[keep])
        self.estimator_ = clone(self.estimator).fit(X[keep], np.asarray(y)[keep])
        self.rows_used_ = int(keep.sum())
        return self

    def predict(self, X):
        return self.estimator_.predict(self.fill_.transform(X))


def fill_of(model) -> _Fill | None:
    """The fitted fill inside a strategy's model (None for `native`: it fills nothing)."""
    if isinstance(model, DropIncomplete):
        return model.fill_
    step = model.named_steps.get("fill") if isinstance(model, Pipeline) else None
    return step if isinstance(step, _Fill) else None


def make_fill(name: str, living: str, basement: str, cfg: Mapping, seed: int) -> _Fill:
    if name in ("mean", "median"):
        return ConstantFill(living, basement, name)
    if name == "group_median":
        return GroupMedianFill(living, basement)
    if name == "knn":
        return KNNFill(living, basement, neighbors=int(cfg["knn"]["neighbors"]))
    if name == "iterative":
        return IterativeFill(living, basement, max_iter=int(cfg["iterative"]["max_iter"]),
                             seed=seed)
    if name == "lgbm_imputer":
        return LGBMFill(living, basement, params=dict(cfg["imputer_lgbm"]), seed=seed)
    raise ValueError(f"unknown fill {name!r}")


def strategy(name: str, cols: Sequence[str], model, cfg: Mapping, seed: int):
    """The candidate for one strategy: the fill in front of an (unfitted) price model."""
    living, basement = masked_columns(cols)
    if name == "drop":
        return DropIncomplete(model, living, basement)
    if name == "native":
        return Pipeline([("indicator", MissingIndicator(living)), ("model", model)])
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    return Pipeline([("fill", make_fill(name, living, basement, cfg, seed)), ("model", model)])
