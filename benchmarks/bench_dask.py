"""The ETA case on Dask past one machine's memory: the learning curve from 1M to 50M trips on a
2-worker LocalCluster (case.dask), every size scored on the same test weeks, with its wall time,
peak memory per worker and rows per second per worker. `make bench` runs it; one size or a short
curve: `python benchmarks/bench_dask.py --sizes 1000000,3000000`.

The world is written once, chunk by chunk, to --world (reused by later runs: chunk i is the same
in every world) and never sits whole in one process."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None,
                        help="comma-separated trip counts (default: case.dask.learning_curve)")
    parser.add_argument("--world", default=str(ROOT / "data/eta/dask_world"),
                        help="folder of the partitioned world (parquet)")
    parser.add_argument("--out", default=str(ROOT / "reports/eta/dask_bench.json"))
    parser.add_argument("--mlflow", default=None,
                        help="tracking URI to log each size's model to (default: none)")
    parser.add_argument("overrides", nargs="*", help="config overrides (case.dask.workers=2 ...)")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from cases.config import compose
    from cases.eta.distributed import learning_curve

    cfg = compose(["case=eta", *args.overrides])
    case = OmegaConf.to_container(cfg.case, resolve=True)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else \
        [int(s) for s in case["dask"]["learning_curve"]]
    start = time.perf_counter()
    result = learning_curve(case, int(cfg.seed), Path(args.world), sizes, uri=args.mlflow)
    result["total_wall_s"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\neta-dask world written in {result['world_write_s']:.0f} s "
          f"({sizes[-1]:,} trips, {case['dask']['partition_trips']:,} a chunk)")
    print(f"{'trips':>12} {'test RMSLE':>10} {'wall s':>8} {'rows/s/worker':>14} "
          f"{'peak GB/worker':>16}")
    for r in result["curve"]:
        peaks = ", ".join(f"{v:.2f}" for v in r["peak_worker_gb"].values())
        print(f"{r['trips']:>12,} {r['metrics']['rmsle']:>10.4f} {r['wall_s']:>8.0f} "
              f"{r['rows_per_s_per_worker']:>14,} {peaks:>16}")
    for g in result["per_doubling"]:
        print(f"{g['from']:,} -> {g['to']:,} trips: RMSLE {g['rmsle_gain_pct']:+.2f}% "
              f"({g['per_doubling_pct']:+.2f}% per doubling), {g['extra_wall_s']:+.0f} s")
    print(f"total {result['total_wall_s']:.0f} s; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
