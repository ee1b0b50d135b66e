"""`make repro`: every case's DVC pipeline, `--jobs` of them side by side, then the portfolio.

`dvc repro` runs one stage after another, and most stages keep one core busy (a load, a report,
a bootstrap; only the fits use both). Each case is a DVC pipeline of its own
(`pipelines/<case>/dvc.yaml`, its lock beside it) that writes only its own outputs, so two cases
can run at once: a `dvc repro` holds the repository's lock only between stages (DVC releases it
while a stage's command runs), and `dvc --wait-for-lock` waits for those moments instead of
failing. The portfolio, which reads every case's card, runs once all of them have succeeded.

Each line a case prints is prefixed with its name. A failed case stops the ones not started yet
(the running ones finish); Ctrl-C or SIGTERM interrupts every running case the way Ctrl-C
interrupts one (its stage's MLflow run is marked FAILED, nothing half-written is published).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cases.config import repo_root
from cases.generate import case_pipeline


@dataclass
class Job:
    name: str
    cmd: list[str]
    status: str = "waiting"  # waiting | running | done | failed | skipped | interrupted
    returncode: int | None = None
    seconds: float = 0.0
    tail: deque = field(default_factory=lambda: deque(maxlen=40))


class Runner:
    """Runs jobs at most `jobs` at a time, each in a process group of its own (so an interrupt
    reaches its whole tree), streaming their output line by line with the job's name."""

    def __init__(self, jobs: int, cwd: Path, env: dict, out=None):
        self.jobs, self.cwd, self.env, self._out = jobs, cwd, env, out
        self._print = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}
        self.failed = self.interrupted = False  # either: no new job starts

    @property
    def stopping(self) -> bool:
        return self.failed or self.interrupted

    def say(self, name: str, line: str) -> None:
        out = self._out or sys.stdout
        with self._print:
            out.write(f"{name:>10} | {line.rstrip()}\n")
            out.flush()

    def _run(self, job: Job) -> Job:
        if self.stopping:
            job.status = "skipped"
            return job
        start = time.perf_counter()
        job.status = "running"
        proc = subprocess.Popen(job.cmd, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1,
                                start_new_session=True)
        self._procs[job.name] = proc
        for line in proc.stdout:
            job.tail.append(line)
            self.say(job.name, line)
        job.returncode = proc.wait()
        del self._procs[job.name]
        job.seconds = time.perf_counter() - start
        if job.returncode == 0:
            job.status = "done"
        elif self.interrupted:
            job.status = "interrupted"
        else:
            job.status = "failed"
            self.failed = True
        self.say(job.name, f"{job.status} in {job.seconds:.0f} s (exit {job.returncode})")
        return job

    def interrupt(self) -> None:
        """Stop starting jobs and pass an interrupt (SIGINT, what Ctrl-C sends) to every running
        job's process group."""
        self.interrupted = True
        for proc in list(self._procs.values()):
            try:
                os.killpg(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def run(self, jobs: list[Job]) -> list[Job]:
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            return list(pool.map(self._run, jobs))


def case_names(root: Path) -> list[str]:
    """The cases whose pipelines the repository holds (`pipelines/<case>/dvc.yaml`), in name
    order: what `dvc repro` would run."""
    return sorted(p.parent.name for p in root.glob(case_pipeline("*")))


def dvc_command(*args: str) -> list[str]:
    """DVC of this environment (beside its Python), waiting for the repository's lock."""
    return [str(Path(sys.executable).parent / "dvc"), "--wait-for-lock", *args]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cases.repro",
        description="Run every case's DVC pipeline (pipelines/<case>/dvc.yaml), JOBS of them at "
                    "a time, then the portfolio (dvc.yaml). Like `dvc repro`, each stage runs "
                    "only if its code, config or inputs changed; the outputs and dvc.lock files "
                    "are the ones `dvc repro` writes.",
        epilog="examples:\n"
               "  python -m cases.repro                  # every case, two at a time\n"
               "  python -m cases.repro flights eta      # these two cases, then the portfolio\n"
               "  python -m cases.repro --force --jobs 1 # rerun everything, one case at a time",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", metavar="case",
                        help="cases to run (default: every pipelines/<case>/dvc.yaml)")
    parser.add_argument("--jobs", "-j", type=int, default=2, metavar="JOBS",
                        help="cases run at the same time (default 2)")
    parser.add_argument("--force", "-f", action="store_true",
                        help="rerun every stage even if nothing changed (dvc repro --force)")
    return parser


def main(argv: list[str] | None = None, command: Callable[..., list[str]] = dvc_command) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    root = repo_root()
    known = case_names(root)
    unknown = sorted(set(args.cases) - set(known))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: expected one of {', '.join(known)} "
                     f"(the pipelines/<case>/dvc.yaml files)")
    if args.jobs < 1:
        parser.error(f"option --jobs={args.jobs}: expected an integer >= 1")
    force = ["--force"] if args.force else []
    # OpenMP threads that spin while they wait steal the core another case's stage is using
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    runner = Runner(args.jobs, root, env)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, f: runner.interrupt())
    start = time.perf_counter()
    jobs = runner.run([Job(c, command("repro", *force, case_pipeline(c)))
                       for c in args.cases or known])
    if not runner.stopping:
        # -s: the portfolio alone; its cases' stages were just brought up to date above
        jobs += runner.run([Job("portfolio", command("repro", *force, "-s", "portfolio"))])
    print(f"\n{'case':>10} | status        seconds")
    for job in jobs:
        print(f"{job.name:>10} | {job.status:<13} {job.seconds:7.1f}")
    print(f"{'all':>10} | {'':<13} {time.perf_counter() - start:7.1f}")
    failed = [j for j in jobs if j.status == "failed"]
    for job in failed:
        print(f"\n{job.name} failed (exit {job.returncode}); its last lines:\n"
              f"{''.join(job.tail)}", file=sys.stderr)
    return 130 if runner.interrupted else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
