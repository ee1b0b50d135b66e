"""Configs are code: every case and experiment file composes, has the keys the stages read, and
is listed in dvc.yaml."""

from pathlib import Path

import pytest
import yaml

from cases.config import compose, known_case_configs
from cases.errors import CasebookError
from cases.lifecycle.contract import known_cases

ROOT = Path(__file__).resolve().parents[2]
CASES = known_case_configs()
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
REQUIRED = ["name", "title", "question", "data.source", "data.sample_rows", "features.views",
            "features.forbidden", "train.cv_folds", "metrics", "analysis",
            "report.card_figures", "train.tasks", "evaluate.gate_min_improvement",
            "evaluate.latency_samples", "primary.task", "primary.view"]


@pytest.mark.parametrize("case", CASES)
def test_case_config_composes_with_required_keys(case):
    cfg = compose([f"case={case}"])
    assert cfg.case.name == case
    for key in REQUIRED:
        node = cfg.case
        for part in key.split("."):
            assert part in node, f"conf/case/{case}.yaml lacks {key}"
            node = node[part]
    assert cfg.case.primary.view in cfg.case.features.views
    assert cfg.case.primary.task in cfg.case.train.tasks
    assert Path(cfg.paths.data).is_absolute() and cfg.paths.data.endswith(f"data/{case}")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_files_compose(experiment):
    text = (ROOT / "conf" / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_")
    compose([f"+experiment={experiment}"])


def test_every_case_config_is_registered_and_in_dvc_yaml():
    assert CASES == known_cases()
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    in_dvc = {name.rsplit("-", 1)[1] for name in dvc["stages"] if "-" in name}
    assert sorted(in_dvc) == CASES


def test_unknown_case_and_bad_override_are_clear_errors():
    with pytest.raises(CasebookError, match="unknown case 'nope'; known cases: .*flights"):
        compose(["case=nope"])
    with pytest.raises(CasebookError, match="configuration"):
        compose(["case.no_such_key.x=1"])
