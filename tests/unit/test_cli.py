"""The CLI as a user meets it: truthful help, clear errors, no traceback, no partial outputs."""

import runpy
from pathlib import Path

import pandas as pd

from tests.conftest import make_flights, run_cli


def test_help_lists_every_stage():
    res = run_cli("-m", "cases", "--help")
    assert res.returncode == 0
    for stage in ("prepare", "eda", "features", "train", "evaluate", "report", "all", "list"):
        assert stage in res.stdout
    script = run_cli("pipelines/train.py", "--help")
    assert script.returncode == 0 and "usage: python pipelines/train.py" in script.stdout


def test_unknown_case_lists_known_ones():
    res = run_cli("-m", "cases", "prepare", "case=nope")
    assert res.returncode == 2
    known = "acceptance, airbnb, eta, flights, fraud, housing, loans"
    assert f"unknown case 'nope'; known cases: {known}" in res.stderr
    assert "Traceback" not in res.stderr


def _prepare(tmp_path: Path, path: Path):
    return run_cli("-m", "cases", "prepare", "case=flights", "case.data.source=file",
                   f"case.data.path={path}", f"paths.root={tmp_path}")


def test_file_with_missing_column_names_file_and_column(tmp_path):
    flights, _, _ = make_flights()
    bad = tmp_path / "flights.csv"
    flights.drop(columns=["carrier"]).to_csv(bad, index=False)
    res = _prepare(tmp_path, bad)
    assert res.returncode == 2, res.stderr
    assert str(bad) in res.stderr and "missing column(s) carrier" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "data" / "flights").exists()  # nothing half-written


def test_file_with_mistyped_column_names_it(tmp_path):
    flights, _, _ = make_flights()
    flights["distance"] = flights["distance"].astype(object)
    flights.loc[3, "distance"] = "far"
    bad = tmp_path / "flights.csv"
    flights.to_csv(bad, index=False)
    res = _prepare(tmp_path, bad)
    assert res.returncode == 2
    assert "column 'distance': expected numbers (float), found 'far' at row 5" in res.stderr


def test_empty_file_says_so(tmp_path):
    empty = tmp_path / "flights.csv"
    empty.write_text("")
    res = _prepare(tmp_path, empty)
    assert res.returncode == 2 and "file is empty" in res.stderr


def test_good_local_file_is_prepared_atomically(tmp_path):
    flights, weather, _ = make_flights()
    good = tmp_path / "flights.parquet"
    flights.to_parquet(good)
    wpath = tmp_path / "weather.csv"
    weather.to_csv(wpath, index=False)
    res = run_cli("-m", "cases", "prepare", "case=flights", "case.data.source=file",
                  f"case.data.path={good}", f"case.data.weather_path={wpath}",
                  f"paths.root={tmp_path}")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "data" / "flights"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".casebook.lock")) == [
        "ingest.json", "prepared"]  # and the case's lock (stages.guard)
    assert len(pd.read_parquet(out / "prepared" / "flights.parquet")) == len(flights)
    assert len(pd.read_parquet(out / "prepared" / "weather.parquet")) == len(weather)
    # the line `make bench` reads each stage's seconds from (benchmarks/bench.py)
    bench = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"))
    [(stage, wall, cpu, with_start)] = bench["stage_seconds"](res.stderr)
    assert stage == "prepare" and float(wall) >= 0 and 0 <= float(cpu) <= float(with_start)


def test_stage_without_its_inputs_names_the_missing_file(tmp_path):
    res = run_cli("-m", "cases", "train", "case=flights", f"paths.root={tmp_path}")
    assert res.returncode == 2
    assert "features.parquet is missing; run the 'features' stage first" in res.stderr


_EXIT = """
import atexit, sys, threading, time
from pathlib import Path
from cases.cli import exit_process

out, mode = Path(sys.argv[1]), sys.argv[2]


class Teardown:  # its __del__ runs only if the interpreter tears the module down
    def __del__(self):
        out.with_suffix(".teardown").write_text("torn down")


kept = Teardown()
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
if mode == "thread":  # a thread Python waits for: the ordinary exit is taken
    threading.Thread(target=lambda: (time.sleep(0.3),
                                     out.with_suffix(".thread").write_text("done"))).start()
print("buffered line", end="")  # no newline: still in stdout's buffer when the process ends
sys.stderr.write("error line")
exit_process(3 if mode == "failed" else 0)
"""


def test_exit_process_skips_teardown_but_not_exit_handlers(tmp_path):
    """The stage entry points end without the interpreter's teardown, yet keep what an
    ordinary exit guarantees: the exit code, every atexit handler, flushed output; a failure
    and a still-running thread take the ordinary exit (the thread finishes first)."""
    for mode, code in (("done", 0), ("thread", 0), ("failed", 3)):
        base = tmp_path / mode
        res = run_cli("-c", _EXIT, str(base), mode)
        assert res.returncode == code, res.stderr
        assert res.stdout == "buffered line" and res.stderr.endswith("error line")
        assert base.with_suffix(".atexit").read_text() == "ran"
        assert base.with_suffix(".teardown").exists() == (mode != "done")
        if mode == "thread":
            assert base.with_suffix(".thread").read_text() == "done"
