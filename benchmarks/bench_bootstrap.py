"""What the test intervals cost: for each case, the evaluate stage's scoring of every candidate
on the test rows, then the bootstrap on top (statistics, resamples, intervals, paired
differences, gate), timed apart. Reads a finished run's features, selection and models
(`--root`, default the repository: run `make repro` first); writes nothing.

    python benchmarks/bench_bootstrap.py [--root DIR] [case ...]
    <case> predict_and_score_s 12.3
    <case> bootstrap_s 2.1   (units, resamples)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def bench(case_name: str, root: str) -> dict:
    import joblib

    from cases.config import compose, to_container
    from cases.lifecycle import bootstrap as bs
    from cases.lifecycle import evaluate as ev
    from cases.lifecycle.contract import get_case
    from cases.lifecycle.selection import predict_for
    from cases.stages.paths import Paths

    cfg = compose([f"case={case_name}", f"paths.root={root}"])
    case, p, e = get_case(case_name), Paths(cfg), cfg.case.evaluate
    data, selection = p.feature_data(), p.json("selection")
    tasks = {t.name: t for t in case.tasks(cfg.case, int(cfg.seed))}
    scoring = booting = 0.0
    units = []
    for tname, views in selection["tasks"].items():
        task = tasks[tname]
        rows = data.rows("test", task.target)
        y = rows.frame[task.target].to_numpy()
        score = ev.scorer(task.kind, task.classes, case.segments, case.extra_metrics, cfg.case)
        stats_of = bs.statistics(task.kind, task.classes, case.segments, case.extra_statistics,
                                 cfg.case)
        t0 = time.perf_counter()
        _, ids = bs.unit_ids(rows, to_container(e.bootstrap_unit))
        rs = bs.Resamples(ids, int(e.bootstrap_resamples), int(cfg.seed),
                          int(e.bootstrap_rowwise_resamples))
        booting += time.perf_counter() - t0
        units.append(rs.n_units)
        for view, entry in views.items():
            X = rows.frame[data.views[view]]
            res, stats = {}, {}
            for name in entry["candidates"]:
                t0 = time.perf_counter()
                model = joblib.load(p.models / tname / view / f"{name}.joblib")
                pred = predict_for(task.kind, model, X, len(task.classes) if task.classes else None)
                res[name] = score(y, pred, X)
                t1 = time.perf_counter()
                stats[name] = stats_of(y, pred, X)
                booting += time.perf_counter() - t1
                scoring += t1 - t0
            t0 = time.perf_counter()
            bs.evaluate_view(res, bs.resample_all(stats, rs), entry["selected"], entry["metric"],
                             float(e.gate_min_improvement), list(e.guardrails))
            booting += time.perf_counter() - t0
    return {"predict_and_score_s": scoring, "bootstrap_s": booting, "units": units}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args(argv)
    from cases.config import known_case_configs

    for name in args.cases or known_case_configs():
        out = bench(name, args.root)
        print(f"{name} predict_and_score_s {out['predict_and_score_s']:.1f}")
        print(f"{name} bootstrap_s {out['bootstrap_s']:.1f}   (units per task: {out['units']})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
