"""Calibration figures of the housing simulator against the real King County sales, as the
README table: `python benchmarks/calibrate_housing.py [--kc ../shared/data/kc_house_data.csv]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kc", default=str(ROOT.parent / "shared/data/kc_house_data.csv"),
                        help="the King County sales file (Kaggle schema)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from cases.config import compose
    from cases.errors import CasebookError
    from cases.housing import data as hd

    cfg = compose(["case=housing"]).case
    try:
        real = hd.calibration_stats(hd.read_kc(args.kc))
    except CasebookError as exc:
        raise SystemExit(f"calibrate_housing: {exc}") from None
    sim = hd.calibration_stats(hd.simulate(cfg.data.world))
    print(f"| figure | King County (real) | simulator ({int(cfg.data.world.listings):,}) |")
    print("| --- | --- | --- |")
    for key in real:
        print(f"| {key} | {real[key]:,.3f} | {sim[key]:,.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
