"""`dvc repro` on a temporary copy of the repository holding the five cases test_dvc_repro.py
does not run: every stage runs once, then the portfolio of their cards; a second run runs
none."""

import re

import pytest

from tests.conftest import STAGE_SCRIPTS
from tests.integration.dvc_repo import SMALL_KNOBS, dvc, ran, repo_with

pytestmark = pytest.mark.slow
CASES = [c for c in SMALL_KNOBS if c not in ("flights", "loans")]


def test_dvc_repro_runs_every_stage_of_the_other_cases_once(tmp_path):
    repo, env = repo_with(tmp_path, CASES)
    first = dvc(repo, "repro", env=env)
    assert ran(first.stdout) == {f"{s}-{c}" for s in STAGE_SCRIPTS for c in CASES} | {"portfolio"}
    for case in CASES:
        assert (repo / f"reports/{case}/rollout.md").exists()
    index = (repo / "reports/index.html").read_text()
    assert set(re.findall(r'href="(\w+)/rollout\.html"', index)) == set(CASES)
    assert ran(dvc(repo, "repro", env=env).stdout) == set()
