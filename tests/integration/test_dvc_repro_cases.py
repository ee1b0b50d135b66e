"""`make repro` (`python -m cases.repro`: the case pipelines two at a time, then the portfolio) on
a temporary copy of the repository holding the five cases test_dvc_repro.py does not run: every
stage runs once, each case's lines carry its name, then the portfolio of their cards; a second
run runs none."""

import re
import subprocess
import sys

import pytest

from tests.conftest import STAGE_SCRIPTS
from tests.integration.dvc_repo import SMALL_KNOBS, ran, repo_with

pytestmark = pytest.mark.slow
CASES = [c for c in SMALL_KNOBS if c not in ("flights", "loans")]


def repro(repo, env) -> str:
    res = subprocess.run([sys.executable, "-m", "cases.repro", "--jobs", "2"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def test_make_repro_runs_every_stage_of_the_other_cases_once(tmp_path):
    repo, env = repo_with(tmp_path, CASES)
    first = repro(repo, env)
    assert ran(first) == {f"{s}-{c}" for s in STAGE_SCRIPTS for c in CASES} | {"portfolio"}
    for case in CASES:  # a case's DVC lines carry its own name, never another's
        assert re.search(rf"^ *{case} \| Running stage 'pipelines/{case}/dvc.yaml:train'", first,
                         re.MULTILINE)
        assert not re.search(rf"^ *{case} \| .*pipelines/(?!{case}/)\w+/dvc.yaml", first,
                             re.MULTILINE)
        assert (repo / f"reports/{case}/rollout.md").exists()
        assert (repo / f"pipelines/{case}/dvc.lock").exists()
    index = (repo / "reports/index.html").read_text()
    assert set(re.findall(r'href="(\w+)/rollout\.html"', index)) == set(CASES)
    assert ran(repro(repo, env)) == set()
