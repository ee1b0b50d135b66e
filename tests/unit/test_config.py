"""Configs are code: every case and experiment file composes, has the keys the stages read, and
has its DVC pipeline (pipelines/<case>/dvc.yaml)."""

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


def test_every_case_config_is_registered_and_has_a_dvc_pipeline():
    assert CASES == known_cases()
    in_dvc = {p.parent.name for p in (ROOT / "pipelines").glob("*/dvc.yaml")
              if yaml.safe_load(p.read_text())["stages"]}
    assert sorted(in_dvc) == CASES


def test_unknown_case_and_bad_override_are_clear_errors():
    with pytest.raises(CasebookError, match="unknown case 'nope'; known cases: .*flights"):
        compose(["case=nope"])
    with pytest.raises(CasebookError, match="configuration"):
        compose(["case.no_such_key.x=1"])


@pytest.mark.parametrize("override, message", [
    ("case.train.cv_folds=abc", "option case.train.cv_folds='abc': expected an integer >= 2"),
    ("case.train.cv_folds=1", "option case.train.cv_folds=1: expected an integer >= 2"),
    ("case.train.cv_folds=0", "option case.train.cv_folds=0: expected an integer >= 2"),
    ("case.train.cv_folds=-3", "option case.train.cv_folds=-3: expected an integer >= 2"),
    ("case.train.cv_folds=2.5", "option case.train.cv_folds=2.5: expected an integer >= 2"),
    ("+case.train.no_such_knob=1", "unknown option case.train.no_such_knob .*loans.yaml"),
    ("+no_such_top=1", "unknown option no_such_top .*conf/config.yaml"),
    ("case.features.test_fraction=0", "case.features.test_fraction=0: expected a number in"),
    ("case.features.test_fraction=1.5", "case.features.test_fraction=1.5: expected a number in"),
    ("case.data.sample_rows=-5", "case.data.sample_rows=-5: expected a positive integer or null"),
    ("case.data.sample_rows=ten", "case.data.sample_rows='ten': expected a positive integer"),
    ("seed=1.5", "option seed=1.5: expected an integer"),
    ("case.train.tasks=hmda", "option case.train.tasks='hmda': expected a list"),
    ("case.evaluate.latency_samples=0", "case.evaluate.latency_samples=0: expected a positive"),
    ("case.train.lgbm.subsample=high", "case.train.lgbm.subsample='high': expected a number"),
])
def test_bad_options_are_refused_by_name(override, message):
    with pytest.raises(CasebookError, match=message):
        compose(["case=loans", override])


@pytest.mark.parametrize("overrides", [
    ["case=loans", "case.train.cv_folds=3", "case.data.sample_rows=500", "seed=7",
     "case.features.test_fraction=0.3", "case.evaluate.gate_min_improvement=0",
     "case.analysis.explain_rows=30", "+case.analysis.applicants.people.Dave={debt_k: 3}"],
    ["+experiment=flights_quick", "case.data.sample_rows=null"],
])
def test_good_options_pass(overrides):
    compose(overrides)


@pytest.mark.parametrize("case", CASES)
def test_every_committed_case_config_passes_its_own_checks(case):
    compose([f"case={case}"])
