"""The acceptance case's own estimators: the driver's recent acceptance rate as a baseline, and
a random forest on median-imputed inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline


class ColumnRateBaseline(BaseEstimator, ClassifierMixin):
    """The probability is a rate the row already carries (e.g. the driver's recent acceptance
    rate), falling back to the training base rate where it is missing."""

    def __init__(self, column: str = ""):
        self.column = column

    def fit(self, X: pd.DataFrame, y):
        self.classes_ = np.array([0, 1])
        self.base_rate_ = float(np.mean(y))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = X[self.column].astype(float).fillna(self.base_rate_).clip(1e-4, 1 - 1e-4).to_numpy()
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def forest_pipeline(kind: str, params: dict | None = None, seed: int = 0) -> Pipeline:
    """A random forest on median-imputed inputs (scikit-learn's forests take no missing values
    in every version we support)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if kind == "regression" else RandomForestClassifier
    return Pipeline([("impute", SimpleImputer(strategy="median")),
                     ("model", cls(random_state=seed, **(params or {})))])
