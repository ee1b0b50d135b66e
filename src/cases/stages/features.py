"""features: the case's features and targets with the train/test split, checked for leakage."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig

from cases.errors import CasebookError
from cases.lifecycle.contract import get_case
from cases.lifecycle.features import INTERNAL, check_views
from cases.lifecycle.floor import truth_columns
from cases.lifecycle.io import outputs
from cases.stages.paths import Paths


def check_targets(case: str, frame: pd.DataFrame, targets: list[str], split: pd.Series) -> None:
    """A target with no values, or a single one, in the training rows: a classifier would see one
    class and a regressor a constant, and either "learns" nothing while metrics look fine or
    crash far downstream. Refused here, naming the case and column."""
    train = frame.loc[split.to_numpy() == "train"]
    for target in targets:
        values = train[target].dropna()
        if values.empty:
            raise CasebookError(f"case {case}: target column '{target}' has no values in the "
                                f"{len(train)} training rows")
        if values.nunique() < 2:
            raise CasebookError(
                f"case {case}: target column '{target}' has a single value "
                f"({values.tolist()[0]!r}) in all {len(values)} training rows: a single class for a "
                f"classifier, a constant for a regressor; nothing to learn")


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    ft = case.features(p.tables(), cfg.case)
    # the truth a simulator writes for the Bayes floor is never a feature
    check_views(ft.frame, ft.views, ft.targets, list(cfg.case.features.get("forbidden", []))
                + list(truth_columns(cfg.case).values()))
    check_targets(case.name, ft.frame, ft.targets, ft.split)
    frame = ft.frame.copy()
    frame[INTERNAL["split"]] = ft.split.to_numpy()
    frame[INTERNAL["period"]] = ft.period.to_numpy() if ft.period is not None else 0
    frame[INTERNAL["group"]] = ft.groups.to_numpy() if ft.groups is not None else 0
    is_train = frame[INTERNAL["split"]] == "train"
    meta = {
        "views": ft.views,
        "targets": ft.targets,
        "time_ordered": ft.period is not None,
        "grouped": ft.groups is not None,
        "split": {**ft.split_info, "train_rows": int(is_train.sum()),
                  "test_rows": int((frame[INTERNAL["split"]] == "test").sum())},
    }
    if meta["split"]["train_rows"] == 0 or meta["split"]["test_rows"] == 0:
        raise CasebookError(f"the split left {meta['split']['train_rows']} training and "
                            f"{meta['split']['test_rows']} test rows; check case.features")
    with outputs() as out:
        frame.to_parquet(out.path(p.features), index=False)
        out.write_json(p.features_meta, meta)
    return meta
