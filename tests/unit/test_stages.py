"""The stage registry is the one list of stages: the CLI, pipelines/, MLproject and dvc.yaml
derive from it, and each DVC stage depends on exactly the code it runs."""

import importlib

import pytest

from cases import generate
from cases.stages import NAMES, STAGES, get
from tests.conftest import run_cli


def test_generated_files_are_up_to_date():
    res = run_cli("-m", "cases.generate", "--check")
    assert res.returncode == 0, res.stderr


def test_every_stage_has_a_module_with_run_and_help_in_the_cli():
    for stage in STAGES:
        assert callable(importlib.import_module(f"cases.stages.{stage.name}").run)
    res = run_cli("-m", "cases", "--help")
    for stage in STAGES:
        assert stage.name in res.stdout and stage.help[:30] in res.stdout.replace("\n", " ")


def test_unknown_stage_is_named():
    from cases.errors import CasebookError

    with pytest.raises(CasebookError, match="unknown stage 'nope'; stages: prepare, eda"):
        get("nope")


def deps(stage: str, case: str) -> set[str]:
    return set(generate.code_deps(get(stage), case))


def test_a_story_is_a_dependency_of_report_only():
    story = "src/cases/flights/story.py"
    assert story in deps("report", "flights")
    assert not [s for s in NAMES[:-1] if s != "report" and story in deps(s, "flights")]


def test_stage_deps_are_its_own_code_and_its_case_hooks():
    assert "src/cases/flights/features.py" in deps("features", "flights")
    assert "src/cases/stages/train.py" in deps("train", "flights")
    assert "src/cases/stages/train.py" not in deps("evaluate", "flights")
    assert "src/cases/lifecycle/models.py" not in deps("prepare", "flights")
    # another case's code never reruns this one
    assert not [d for d in deps("train", "flights") if d.startswith("src/cases/loans/")]
    # the analysis imports the lifecycle modules it uses, and they are listed
    assert "src/cases/loans/analysis.py" in deps("analyze", "loans")
    assert "src/cases/lifecycle/evaluate.py" in deps("analyze", "loans")


def test_report_stage_does_not_load_matplotlib():
    """The report formats tables and text only: its code, every case's story included, must not
    import matplotlib (0.3 s of every report's start; `lifecycle.eda.pyplot` loads it with the
    first figure)."""
    code = ("import importlib, sys\n"
            "from cases.config import known_case_configs\n"
            "from cases.lifecycle.contract import get_case\n"
            "import cases.cli, cases.stages.report, cases.stages.guard\n"
            "for case in known_case_configs():\n"
            "    importlib.import_module(get_case(case).story.__module__)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    res = run_cli("-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("values, message", [
    ([1, 1, 1, 1], "target column 'y' has a single value \\(1\\) in all 3 training rows"),
    ([0.5, 0.5, 0.5, 2.0], "target column 'y' has a single value \\(0.5\\)"),
    ([None, None, None, 1], "target column 'y' has no values in the 3 training rows"),
])
def test_degenerate_targets_are_refused(values, message):
    import pandas as pd

    from cases.errors import CasebookError
    from cases.stages.features import check_targets

    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": values})
    split = pd.Series(["train", "train", "train", "test"])
    with pytest.raises(CasebookError, match=f"case demo: {message}"):
        check_targets("demo", frame, ["y"], split)
    check_targets("demo", frame.assign(y=[0, 1, 0, 1]), ["y"], split)
