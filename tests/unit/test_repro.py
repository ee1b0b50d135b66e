"""`python -m cases.repro` (`make repro`): cases run side by side with their lines named, a
failure stops the cases not started and the portfolio, an interrupt reaches every running case."""

import io
import re
import sys
import threading
import time

import pytest

from cases import repro
from cases.repro import Job, Runner


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_jobs_run_side_by_side_and_each_line_carries_its_job(tmp_path):
    out = io.StringIO()
    # each job waits for the other's file: they finish only if both run at once
    jobs = [Job(n, py(f"import pathlib, time\np = pathlib.Path({str(tmp_path)!r})\n"
                      f"(p / '{n}').touch()\nwhile not (p / '{o}').exists(): time.sleep(0.01)\n"
                      f"print('hello from {n}')"))
            for n, o in (("a", "b"), ("b", "a"))]
    done = Runner(2, tmp_path, {}, out).run(jobs)
    assert [j.status for j in done] == ["done", "done"]
    assert "         a | hello from a" in out.getvalue().splitlines()
    assert "         b | hello from b" in out.getvalue().splitlines()


def test_a_failure_skips_the_cases_not_started_and_the_portfolio(monkeypatch, capsys):
    def command(*args):
        fails = "pipelines/eta/dvc.yaml" in args
        return py(f"import sys; print('ran', {' '.join(args)!r}); sys.exit({3 if fails else 0})")

    monkeypatch.setattr(repro, "case_names", lambda root: ["acceptance", "eta", "flights"])
    assert repro.main(["--jobs", "1"], command=command) == 1
    out, err = capsys.readouterr()
    assert "ran repro pipelines/acceptance/dvc.yaml" in out
    assert "flights/dvc.yaml" not in out and "portfolio" not in out.split("status")[0]
    table = dict(re.findall(r"^ *(\w+) \| (done|failed|skipped) +[\d.]+$", out, re.MULTILINE))
    assert table == {"acceptance": "done", "eta": "failed", "flights": "skipped"}
    assert "eta failed (exit 3); its last lines:" in err and "ran repro pipelines/eta" in err


def test_force_and_the_portfolio_follow_every_case(monkeypatch, capsys):
    monkeypatch.setattr(repro, "case_names", lambda root: ["acceptance", "eta"])
    assert repro.main(["--force", "eta"],
                      command=lambda *a: py(f"print('ran', {' '.join(a)!r})")) == 0
    out = capsys.readouterr().out
    assert "ran repro --force pipelines/eta/dvc.yaml" in out
    assert "acceptance/dvc.yaml" not in out
    assert out.index("ran repro --force -s portfolio") > out.index("eta/dvc.yaml")


@pytest.mark.parametrize("argv, message", [(["nosuch"], "unknown case(s) nosuch: expected one of"),
                                           (["--jobs", "0"], "--jobs=0: expected an integer")])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        repro.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_an_interrupt_reaches_every_running_case_and_starts_no_other(tmp_path):
    out = io.StringIO()
    wait = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *a: (print('interrupted', flush=True), "
            "sys.exit(130)))\nprint('ready', flush=True)\ntime.sleep(60)")
    runner = Runner(2, tmp_path, {}, out)
    jobs = [Job("a", py(wait)), Job("b", py(wait)), Job("c", py("print('never')"))]
    thread = threading.Thread(target=lambda: runner.run(jobs))
    thread.start()
    deadline = time.monotonic() + 30
    while out.getvalue().count("| ready") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.interrupt()
    thread.join(30)
    assert [j.status for j in jobs] == ["interrupted", "interrupted", "skipped"]
    assert out.getvalue().count("| interrupted\n") == 2 and "never" not in out.getvalue()
