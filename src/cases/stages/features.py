"""features: the case's features and targets with the train/test split, checked for leakage."""

from __future__ import annotations

from omegaconf import DictConfig

from cases.errors import CasebookError
from cases.lifecycle.contract import get_case
from cases.lifecycle.features import INTERNAL, check_views
from cases.lifecycle.io import outputs
from cases.stages.paths import Paths


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    ft = case.features(p.tables(), cfg.case)
    check_views(ft.frame, ft.views, ft.targets, cfg.case.features.get("forbidden", []))
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
