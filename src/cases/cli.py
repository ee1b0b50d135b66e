"""Command line: `python -m cases <stage> [overrides]` runs one lifecycle stage of one case.

Overrides are Hydra's: `case=flights`, `case.data.sample_rows=20000`, `seed=7`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import NoReturn

from cases.errors import CasebookError
from cases.stages import NAMES, STAGES, get


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cases",
        description="casebook: run the lifecycle stages of an ML interview case. Stages read "
                    "conf/ (Hydra) and write data/<case>/ and reports/<case>/; runs are tracked "
                    "in MLflow (sqlite:///<repo>/mlflow.db unless MLFLOW_TRACKING_URI is set).",
        epilog="examples:\n"
               "  python -m cases list\n"
               "  python -m cases all case=flights\n"
               "  python -m cases train case=flights case.data.sample_rows=20000\n"
               "  python -m cases show case=flights\n"
               "whole pipelines with caching: python -m cases.repro (every case, two at a time), "
               "dvc repro pipelines/flights/dvc.yaml (one case)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    sub.add_parser("list", help="list the known cases")
    for name, text in [("show", "print the composed configuration"),
                       *((s.name, s.help) for s in STAGES),
                       ("all", "run every stage in order for one case, then the portfolio")]:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("overrides", nargs="*", metavar="override",
                       help="Hydra override, e.g. case=flights case.data.sample_rows=20000")
    return parser


def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
    """SIGTERM (timeout, CI cancellation, container stop) stops a stage like Ctrl-C: its MLflow
    run is marked FAILED and nothing it was writing is published."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=os.environ.get("CASEBOOK_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "urllib3", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "list":
            from cases.lifecycle.contract import known_cases

            print("\n".join(known_cases()))
            return 0
        from omegaconf import OmegaConf

        from cases.config import compose

        cfg = compose(args.overrides)
        if args.command == "show":
            print(OmegaConf.to_yaml(cfg))
            return 0
        from cases.stages import guard

        if cfg.case.get("compute", "local") != "local":
            return _distributed(args.command, cfg)
        if args.command == "all":  # one lock for the whole run: no other run slips in between
            with guard.case_lock(cfg):
                for name in NAMES:
                    logging.getLogger("cases").info("stage %s, case %s", name, cfg.case.name)
                    _timed(name, cfg)
        else:
            _timed(args.command, cfg)
        return 0
    except CasebookError as exc:
        print(f"casebook: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("casebook: interrupted; no partial outputs were published", file=sys.stderr)
        return 130
    except Exception as exc:
        logging.getLogger("cases").debug("unexpected failure", exc_info=True)
        print(f"casebook: failed: {type(exc).__name__}: {exc} (set CASEBOOK_LOG=DEBUG for the "
              f"traceback)", file=sys.stderr)
        return 1


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(name: str, cfg) -> None:
    """Run one stage and log its wall and CPU seconds (`benchmarks/bench.py` reads this line):
    the CPU includes the fit workers (`lifecycle.parallel`), ended here so that they count, and
    the CPU since the process started adds the start-up (Python, imports, configuration)."""
    import time

    from cases.stages import run_stage

    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    run_stage(name, cfg)
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    if loky is not None and loky._executor is not None:  # the fit workers the stage started
        loky._executor.shutdown(wait=True)
    where = f"case {cfg.case.name}" if get(name).per_case else "all cases"
    cpu = _cpu_seconds()
    logging.getLogger("cases").info("stage %s, %s: done in %.1f s wall, %.1f s CPU (%.1f s CPU "
                                    "since the process started)", name, where,
                                    time.perf_counter() - t0, cpu - cpu0, cpu)


def _distributed(command: str, cfg) -> int:
    """`case.compute=dask`: the case runs whole as one job on the cluster (its own module,
    `cases.<case>.distributed`, imported only here)."""
    import importlib

    from cases.stages import guard

    if cfg.case.compute != "dask":
        raise CasebookError(f"case.compute={cfg.case.compute!r}; expected 'local' or 'dask'")
    if command != "all":
        raise CasebookError(f"case.compute=dask runs the case whole, not stage by stage: "
                            f"python -m cases all case={cfg.case.name} case.compute=dask")
    with guard.case_lock(cfg):
        importlib.import_module(f"cases.{cfg.case.name}.distributed").run_case(cfg)
    return 0


def run_stage_script(stage: str) -> None:
    """Entry point of pipelines/<stage>.py: `python pipelines/train.py case=flights ...`."""
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(f"usage: python pipelines/{stage}.py [override ...]\n\n{get(stage).help}"
              f"\n\nOverrides are Hydra's, e.g. case=flights case.data.sample_rows=20000.")
        sys.exit(0)
    exit_process(main([stage, *sys.argv[1:]]))


def exit_process(code: int) -> NoReturn:
    """End the process (`python -m cases`, `pipelines/<stage>.py`) once the work is done and
    published, without the interpreter's teardown: freeing module by module the ~2,600 modules
    a tracked stage loads (MLflow, SQLAlchemy, scikit-learn) took 0.8 s of CPU and 1-2 s of
    wall per stage, after its last output was written. Everything an orderly exit does for
    the outside world still happens: every `atexit` handler runs (logging's flush, MLflow's,
    finalizers of temporary folders, coverage's data), then stdout and stderr are flushed.
    The ordinary exit is taken instead after a failure (fit workers may still run: Python's
    exit stops them), while a thread Python would wait for still runs, or when a profiler or
    tracer is attached (it writes its results after the program returns)."""
    import atexit
    import threading

    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if code or others or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # what the interpreter runs first on its own exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed or replaced stream
            pass
    os._exit(code)
