"""Guards every case's feature views share: declared columns exist, and nothing from the future
(a column listed as forbidden, e.g. the departure delay when predicting the arrival delay) is
ever a feature."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from cases.errors import CasebookError


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
