"""Issue 16, "nothing lost, nothing crossed": bad options, bad data, a dead tracking server, a
second run on the same folder, and a kill at any point of evaluate, each through the real CLI on
the loans case (a small sample; one training run shared by the module)."""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow
SMALL = ["case.data.scenario.rows=1500", "case.train.lgbm.n_estimators=20",
         "case.evaluate.latency_samples=5", "case.train.cv_folds=2"]


def cli(root, stage, *overrides, env=None):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", **(env or {})}
    return run_cli("-m", "cases", stage, "case=loans", *SMALL, f"paths.root={root}", *overrides,
                   env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliab")
    for stage in ("prepare", "features", "train", "evaluate"):
        res = cli(root, stage)
        assert res.returncode == 0, f"{stage}:\n{res.stderr[-3000:]}"
    return root


def _cfg(root):
    from cases.config import compose

    return compose(["case=loans", *SMALL, f"paths.root={root}"])


@pytest.fixture
def sqlite_env(trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{trained}/mlflow.db")
    return trained


# ---- 5. options are checked before any work (no MLflow store is even created) ----------------
@pytest.mark.parametrize("override, message", [
    ("case.train.cv_folds=abc", "option case.train.cv_folds='abc': expected an integer >= 2"),
    ("case.train.cv_folds=1", "expected an integer >= 2"),
    ("case.train.cv_folds=2.5", "expected an integer >= 2"),
    ("+case.train.no_such_knob=1", "unknown option case.train.no_such_knob"),
    ("seed=abc", "option seed='abc': expected an integer"),
    ("case.data.sample_rows=0", "expected a positive integer or null"),
    ("case.features.test_fraction=1", "expected a number in (0, 1)"),
])
def test_bad_option_is_refused_before_any_work(tmp_path, override, message):
    res = cli(tmp_path, "train", override)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # no data folder, no lock, no mlflow.db


# ---- 4. a dead tracking server fails fast -------------------------------------------------
@pytest.mark.parametrize("stage", ["train", "evaluate", "analyze", "report"])
def test_unreachable_tracking_server_fails_fast(tmp_path, stage):
    t0 = time.monotonic()
    res = cli(tmp_path, stage, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    took = time.monotonic() - t0
    assert res.returncode == 2, res.stderr
    assert "MLFLOW_TRACKING_URI" in res.stderr and "http://127.0.0.1:9" in res.stderr
    assert took < 30, took  # the check itself: <= 2 tries of 3 s (test_check_server_is_quick)
    assert not (tmp_path / "data" / "loans").exists()  # nothing left behind


def test_check_server_is_quick():
    from cases.errors import CasebookError
    from cases.lifecycle.tracking import check_server

    t0 = time.monotonic()
    with pytest.raises(CasebookError, match="MLFLOW_TRACKING_URI"):
        check_server("http://127.0.0.1:9")
    assert time.monotonic() - t0 < 10


# ---- 6. degenerate data --------------------------------------------------------------------
def test_single_class_target_is_refused(trained, tmp_path):
    hmda = pd.read_parquet(trained / "data/loans/prepared/hmda.parquet").assign(approve=1)
    hmda.to_csv(tmp_path / "loanapp.csv", index=False)
    root = tmp_path / "run"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
    for stage in ("prepare", "features"):
        res = run_cli("-m", "cases", stage, "case=loans", *SMALL, f"paths.root={root}",
                      "case.data.source=file", f"case.data.path={tmp_path / 'loanapp.csv'}",
                      env=env)
    assert res.returncode == 2, res.stderr
    assert "case loans: target column 'approve_" in res.stderr
    assert "single value (1" in res.stderr
    assert not (root / "data/loans/features.parquet").exists()


def test_airbnb_file_without_any_price_is_refused(tmp_path):
    cols = ["id", "name", "host_id", "host_name", "neighbourhood_group", "neighbourhood",
            "latitude", "longitude", "room_type", "price", "minimum_nights", "number_of_reviews",
            "last_review", "reviews_per_month", "calculated_host_listings_count",
            "availability_365"]
    rows = [[i, "x", 1, "h", "g", "n", 47.6, -122.3, "Private room", "", 1, 3, "2016-01-01",
             0.5, 1, 100] for i in range(5)]
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "listings.csv", index=False)
    res = run_cli("-m", "cases", "prepare", "case=airbnb", "case.data.source=real",
                  f"case.data.path={tmp_path / 'listings.csv'}", f"paths.root={tmp_path}")
    assert res.returncode == 2, res.stderr
    assert "case airbnb: the main table 'listings' has 0 rows" in res.stderr
    assert not (tmp_path / "data/airbnb/ingest.json").exists()


# ---- 8. a folder we did not write is never replaced -------------------------------------------
def test_users_folder_is_not_replaced(tmp_path):
    mine = tmp_path / "mine"
    (mine / "prepared").mkdir(parents=True)
    (mine / "prepared" / "thesis.tex").write_text("years of work")
    res = run_cli("-m", "cases", "prepare", "case=loans", *SMALL, f"paths.data={mine}",
                  f"paths.root={tmp_path}")
    assert res.returncode == 2, res.stderr
    assert "was not written by casebook" in res.stderr and "paths.data" in res.stderr
    assert (mine / "prepared" / "thesis.tex").read_text() == "years of work"
    assert {p.name for p in mine.iterdir()} <= {"prepared", ".casebook.lock",
                                                ".casebook.lock.holder"}


# ---- 1. one run per case and folder ----------------------------------------------------------
HOLD = """
import sys, time
from cases.config import compose
from cases.stages import guard
cfg = compose(["case=loans", "paths.root=" + sys.argv[1]])
with guard.case_lock(cfg):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("stage", ["prepare", "evaluate"])
def test_second_run_on_the_same_case_is_refused(tmp_path, stage):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "holder-marker"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        res = cli(tmp_path, stage)
        assert res.returncode == 2, res.stderr
        assert time.monotonic() - t0 < 30
        assert f"pid {holder.pid}" in res.stderr and "holder-marker" in res.stderr
        assert "is in use by another run" in res.stderr and "started 20" in res.stderr
        assert not (tmp_path / "data/loans/ingest.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: the next run goes ahead
    assert cli(tmp_path, "prepare").returncode == 0


# ---- 1b. outputs of one training run only --------------------------------------------------
@pytest.mark.parametrize("stage", ["analyze", "report"])
def test_outputs_of_another_training_run_are_refused(trained, stage):
    run_file = trained / "data/loans/run.json"
    original = run_file.read_text()
    run_file.write_text(json.dumps({**json.loads(original), "run_id": "retrained0000"}))
    try:
        res = cli(trained, stage)
    finally:
        run_file.write_text(original)
    assert res.returncode == 2, res.stderr
    assert "training run retrained0000" in res.stderr and "rerun evaluate" in res.stderr


# ---- 2 and 3. a kill at any point of evaluate: registry and files agree ------------------------
def _agreement(root) -> dict:
    """serving.json against the registry: {model: (file version, alias version)}."""
    from cases.lifecycle.tracking import alias_version

    serving = json.loads((root / "reports/loans/serving.json").read_text())
    uri = f"sqlite:///{root}/mlflow.db"
    return {m["registered_model"]: (m["version"], alias_version(uri, m["registered_model"],
                                                                "champion"))
            for m in serving["models"].values() if m["registered_model"]}


@pytest.mark.parametrize("point", ["evaluate:registered", "evaluate:run_closed",
                                   "evaluate:published", "evaluate:alias_set"])
def test_kill_during_evaluate_leaves_registry_and_files_agreeing(sqlite_env, point):
    from cases.lifecycle import tracking
    from cases.stages import common, guard

    root = sqlite_env
    before = json.loads((root / "reports/loans/serving.json").read_text())
    res = cli(root, "evaluate", env={"CASEBOOK_TEST_KILL_AT": point})
    assert res.returncode == -9, res.stderr[-2000:]  # SIGKILL: no handler ran
    after = json.loads((root / "reports/loans/serving.json").read_text())
    published = after["evaluation_run_id"] != before["evaluation_run_id"]
    assert published == (point in ("evaluate:published", "evaluate:alias_set"))
    agree = all(f == a for f, a in _agreement(root).values())
    # right after the kill: they agree, or serving.json records the pending move
    assert agree or after["alias_state"] == "pending"
    # a leftover temporary, as a kill inside `outputs` would leave one
    stale = root / "reports/loans" / ".metrics.json.dead01.tmp"
    stale.write_text("{")
    # the next stage of the case, under the lock, rolls forward and cleans up
    cfg = _cfg(root)
    with guard.case_lock(cfg):
        guard.start(__import__("cases.stages", fromlist=["get"]).get("analyze"), cfg)
    assert not stale.exists()
    assert all(f == a for f, a in _agreement(root).values()), _agreement(root)
    final = json.loads((root / "reports/loans/serving.json").read_text())
    assert final["alias_state"] in ("done", "none")
    client = tracking._client(common.uri(cfg))
    exp = client.get_experiment_by_name(common.experiment(cfg))
    running = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert running == []  # the killed evaluation run is FAILED, with a note
    if point == "evaluate:registered":
        failed = client.search_runs([exp.experiment_id], "attributes.status = 'FAILED'")
        assert any("marked FAILED" in r.data.tags.get("casebook.note", "") for r in failed)
