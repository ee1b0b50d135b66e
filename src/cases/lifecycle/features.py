"""Guards every case's feature views share: declared columns exist, and nothing from the future
(a column listed as forbidden, e.g. the departure delay when predicting the arrival delay) is
ever a feature."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError

# the columns the features stage adds to a case's feature table: which split a row is in, its
# training period (time-ordered cases) and its group (e.g. host or driver); only the stages and
# `AnalysisContext` read them
INTERNAL = {"split": "_split", "period": "_period", "group": "_group"}


def check_views(frame: pd.DataFrame, views: Mapping[str, list[str]], targets: Iterable[str],
                forbidden: Iterable[str]) -> None:
    forbidden = set(forbidden)
    targets = set(targets)
    for view, cols in views.items():
        if not cols:
            raise CasebookError(f"feature view {view!r} has no columns")
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise CasebookError(f"feature view {view!r}: column(s) {', '.join(missing)} were not "
                                f"built; available: {', '.join(map(str, frame.columns))}")
        leaked = sorted((set(cols) & forbidden) | (set(cols) & targets))
        if leaked:
            raise CasebookError(
                f"feature view {view!r} uses {', '.join(leaked)}, which is not known at "
                f"prediction time (listed in case.features.forbidden or a target); remove it "
                f"from case.features.views.{view}"
            )


class Rows:
    """One split's rows: the feature frame (internal columns removed, index 0..n-1) with each
    row's training period and group aligned to it."""

    def __init__(self, frame: pd.DataFrame):
        frame = frame.reset_index(drop=True)
        self.period = frame[INTERNAL["period"]].to_numpy()
        self.group = frame[INTERNAL["group"]].to_numpy()
        self.frame = frame.drop(columns=list(INTERNAL.values()))

    def __len__(self) -> int:
        return len(self.frame)


class FeatureData:
    """The features stage's table and its description (views, targets, split): what train,
    evaluate and the analyses read, through accessors rather than internal column names."""

    def __init__(self, frame: pd.DataFrame, meta: Mapping):
        self._frame = frame
        self.meta = dict(meta)
        self.views: dict[str, list[str]] = self.meta["views"]
        self.time_ordered: bool = bool(self.meta["time_ordered"])
        self.grouped: bool = bool(self.meta.get("grouped"))

    def rows(self, split: str, target: str | None = None) -> Rows:
        """Rows of `split` ('train' or 'test'), only those with a known `target` when given."""
        mask = self._frame[INTERNAL["split"]] == split
        if target is not None:
            mask &= self._frame[target].notna()
        return Rows(self._frame[mask])

    def validation(self, n_periods: int) -> tuple[Rows, Rows]:
        """The training rows split in time: the last `n_periods` periods as validation."""
        train = self._frame[self._frame[INTERNAL["split"]] == "train"]
        periods = np.sort(train[INTERNAL["period"]].unique())
        start = periods[-int(n_periods)]
        return (Rows(train[train[INTERNAL["period"]] < start]),
                Rows(train[train[INTERNAL["period"]] >= start]))
