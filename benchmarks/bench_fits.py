"""One task and view of a case's train stage, the way it fits now (every fit on one thread, the
fits shared by worker processes: `parallel.run_fits`) against the way it fitted before (LightGBM
and forests on their configured threads, one after another in the stage's process), on the
features a full run wrote: wall and CPU seconds (this process and its workers), each candidate's
fit seconds and mean CV selection metric. Needs `data/<case>/features.parquet` under --root:
`python benchmarks/bench_fits.py flights delayed booking --root .`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def measure(case_name: str, task_name: str, view: str, root: str, before: bool) -> dict:
    import psutil

    import cases.lifecycle.parallel as par
    from cases.config import compose
    from cases.lifecycle.contract import Candidate, get_case
    from cases.lifecycle.evaluate import scorer
    from cases.lifecycle.selection import choose_folds, cross_validate_and_fit
    from cases.stages.paths import Paths

    cfg = compose([f"case={case_name}", f"paths.root={root}"])
    if before:  # the configured thread counts: LightGBM then fits here, one after another
        par.one_thread = lambda estimator: estimator
    case = get_case(case_name)
    data = Paths(cfg).feature_data()
    task = next(t for t in case.tasks(cfg.case, int(cfg.seed)) if t.name == task_name)
    rows = data.rows("train", task.target)
    y = rows.frame[task.target]
    folds = choose_folds(data.time_ordered, rows.period, rows.group if data.grouped else None,
                         int(cfg.case.train.cv_folds), int(cfg.seed),
                         y if task.kind != "regression" else None)
    score = scorer(task.kind, task.classes, case.segments, case.extra_metrics, cfg.case)
    cols = list(data.views[view])
    cands = [Candidate("baseline", task.baseline_for(view, cols), {}),
             *task.candidates(view, cols)]
    me = psutil.Process()
    t0, c0 = time.perf_counter(), sum(me.cpu_times()[:2])
    results, fitted = cross_validate_and_fit(
        cands, rows.frame[cols], y, folds, task.kind, score,
        n_classes=len(task.classes) if task.classes else None)
    wall = time.perf_counter() - t0
    workers = sum(sum(c.cpu_times()[:2]) for c in me.children(recursive=True))
    return {"mode": "before" if before else "now", "wall_s": round(wall, 1),
            "cpu_s": round(sum(me.cpu_times()[:2]) - c0 + workers, 1),
            "fit_s": {c.name: round(s, 2) for c, (_, s) in zip(cands, fitted)},
            f"cv_{task.selection_metric}": {r.name: r.summary()[task.selection_metric]["mean"]
                                            for r in results}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case")
    parser.add_argument("task")
    parser.add_argument("view")
    parser.add_argument("--root", default=".", help="paths.root holding data/<case>/")
    parser.add_argument("--before", action="store_true",
                        help="fit the way train did before (run it in a process of its own)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.case, args.task, args.view, args.root, args.before)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
