"""Reason-code throughput (loans): reasons per second for 10,000 applicants, with exact TreeSHAP
on the LightGBM model and with the model-agnostic permutation explainer (timed on a slice and
reported per applicant). Trains its own models on the scenario world, so it needs no pipeline
run: `python benchmarks/bench_reasons.py`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applicants", type=int, default=10_000)
    parser.add_argument("--agnostic-slice", type=int, default=300,
                        help="applicants timed with the permutation explainer")
    args = parser.parse_args()
    from cases.config import compose
    from cases.lifecycle.models import lgbm_pipeline, linear_pipeline
    from cases.loans import explain as ex
    from cases.loans.data import simulate

    cfg = compose(["case=loans"]).case
    cols = list(cfg.features.views.scenario)
    texts = dict(cfg.analysis.reason_texts)
    train = simulate({**cfg.data.scenario, "rows": 20_000}, seed=1)
    apps = simulate({**cfg.data.scenario, "rows": args.applicants}, seed=2)[cols]
    lgbm = lgbm_pipeline("binary", [], params=dict(cfg.train.lgbm), seed=0).fit(
        train[cols], train["approve"])
    logistic = linear_pipeline("binary", cols, [], max_iter=2000).fit(train[cols], train["approve"])
    background = train[cols].sample(int(cfg.analysis.background_rows), random_state=0)

    t0 = time.perf_counter()
    ex.reason_codes(ex.tree_shap(lgbm, apps), cols, texts)
    tree_s = time.perf_counter() - t0
    print(f"loans reasons_treeshap_per_s {args.applicants / tree_s:,.0f} "
          f"({args.applicants:,} applicants in {tree_s:.2f} s)")
    for name, model in (("lgbm", lgbm), ("logistic", logistic)):
        part = apps.head(args.agnostic_slice)
        t0 = time.perf_counter()
        ex.reason_codes(ex.agnostic_shap(model, part, background, seed=0), cols, texts)
        s = time.perf_counter() - t0
        rate = len(part) / s
        print(f"loans reasons_agnostic_{name}_per_s {rate:,.1f} "
              f"({len(part)} timed; {args.applicants:,} would take {args.applicants / rate:,.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
