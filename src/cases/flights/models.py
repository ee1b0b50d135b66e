"""The flights case's outlier strategies (filter, winsorize, log-type transform) as a wrapper
around any regressor: only this case compares what to do with 12-hour delays."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

TARGET_STRATEGIES = ("none", "filter_tail", "winsorize", "log_transform")


class TargetStrategyRegressor(BaseEstimator, RegressorMixin):
    """Applies an outlier strategy to the training target only; predictions are on the original
    scale, so every strategy is scored on the same test flights in the same units."""

    def __init__(self, estimator=None, strategy: str = "none", max_target: float | None = None,
                 quantile: float = 0.99):
        self.estimator = estimator
        self.strategy = strategy
        self.max_target = max_target
        self.quantile = quantile

    def fit(self, X, y):
        if self.strategy not in TARGET_STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r}; expected one of {TARGET_STRATEGIES}")
        y = np.asarray(y, dtype=float)
        keep = np.ones(len(y), dtype=bool)
        if self.strategy == "filter_tail":
            keep = y <= self.max_target
        elif self.strategy == "winsorize":
            self.bounds_ = (float(np.quantile(y, 1 - self.quantile)), float(np.quantile(y, self.quantile)))
            y = np.clip(y, *self.bounds_)
        elif self.strategy == "log_transform":
            y = np.sign(y) * np.log1p(np.abs(y))
        self.n_dropped_ = int((~keep).sum())
        Xk = X[keep] if not keep.all() else X
        self.estimator_ = clone(self.estimator).fit(Xk, y[keep])
        return self

    def predict(self, X):
        pred = np.asarray(self.estimator_.predict(X), dtype=float)
        if self.strategy == "log_transform":
            pred = np.sign(pred) * np.expm1(np.abs(pred))
        return pred

