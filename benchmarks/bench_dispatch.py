"""Dispatch latency (acceptance): score the 20 nearest drivers for one request with each
candidate model, logged to MLflow and loaded back the way a service loads it
(`mlflow.pyfunc.load_model("models:/<id>")`), and print p50/p99 against the 100 ms budget.
Uses a temporary MLflow store: `python benchmarks/bench_dispatch.py`."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offers", type=int, default=150_000, help="offers to train on")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--drivers", type=int, default=20)
    args = parser.parse_args(argv)
    from cases.acceptance.analysis import nearest_driver_batches
    from cases.acceptance.data import simulate
    from cases.acceptance.tasks import make_tasks
    from cases.config import compose
    from cases.lifecycle import tracking
    from cases.lifecycle.evaluate import latency_ms

    cfg = compose(["case=acceptance"]).case
    budget = float(cfg.analysis.budget_ms)
    frame = simulate({**cfg.data.world, "offers": args.offers})
    cols = list(cfg.features.views.offer)
    task = make_tasks(cfg, 0)[0]
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        with tracking.stage_run(uri, "bench-dispatch", "bench", "bench", {}) as run:
            for cand in task.candidates("offer", cols):
                model = cand.build().fit(frame[cols], frame["accepted"])
                info = run.log_model(model, cand.name, frame[cols].head(5))
                served = tracking.load_model(uri, info["model_uri"])
                lat = latency_ms(served.predict, nearest_driver_batches(
                    frame[cols], args.drivers, args.requests, 0),
                    warmup=frame[cols].head(args.drivers))
                p50, p99 = lat["p50"], lat["p99"]
                print(f"acceptance dispatch_{cand.name}_p50_ms {p50:.2f}")
                print(f"acceptance dispatch_{cand.name}_p99_ms {p99:.2f} "
                      f"({'inside' if p99 <= budget else 'OVER'} the {budget:.0f} ms budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
