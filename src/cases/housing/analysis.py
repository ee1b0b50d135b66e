"""The experiment with a ground truth: for every mechanism and strategy, how far the fill is from
the true square footage on the masked test homes, what the price model lost against the oracle
(nothing missing), and what the fill costs to fit; then a learning curve that says whether
dropping the incomplete listings is a fair answer."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from cases.housing.data import MECHANISMS
from cases.housing.imputers import fill_of, make_fill, masked_columns
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table
from cases.lifecycle.parallel import Job, predict, run_fits
from cases.lifecycle.plots import count_ticks


def _rmse(y, pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(y)) ** 2)))


def fill_error(truth: pd.Series, filled: pd.Series) -> dict[str, float]:
    err = filled.to_numpy(float) - truth.to_numpy(float)
    return {"sqft_mae": float(np.mean(np.abs(err))),
            "sqft_mape": float(100 * np.mean(np.abs(err) / truth.to_numpy(float))),
            "sqft_bias": float(np.mean(err))}


def strategy_table(ctx: AnalysisContext) -> pd.DataFrame:
    """One row per mechanism and strategy (plus the oracle), all on the same test homes."""
    test = ctx.test
    tasks = ctx.metrics["tasks"]["price"]
    oracle = tasks["oracle"]["test"]["lgbm"]
    oracle_model = ctx.model("price", "oracle", "lgbm")
    oracle_pred = oracle_model.predict(test[ctx.meta["views"]["oracle"]])
    t = ctx.cfg["train"]
    everything = pd.concat([ctx.train, test], ignore_index=True)
    timing_rows = min(int(ctx.cfg["analysis"]["timing_rows"]), len(everything))
    timing = (everything.sample(timing_rows, random_state=ctx.seed)
              if timing_rows < len(everything) else everything)
    rows = []
    for mech in MECHANISMS:
        if mech not in tasks:
            continue
        cols = ctx.meta["views"][mech]
        living, basement = masked_columns(cols)
        masked = test[living].isna().to_numpy()
        oracle_masked = _rmse(test["log_price"][masked], oracle_pred[masked])
        for name, m in tasks[mech]["test"].items():
            # the masked views' baseline is the `drop` strategy (housing.tasks)
            strategy = "drop" if name == "baseline" else name
            row = {"mechanism": mech, "strategy": strategy,
                   "cv_rmse": ctx.selection["price"][mech]["candidates"][name]["cv"]["rmse"]["mean"],
                   "rmse": m["rmse"], "masked_rmse": m.get("masked_rmse", float("nan")),
                   "mae_dollars": m["mae_dollars"], "r2": m["r2"],
                   "gap_rmse": m["rmse"] - oracle["rmse"],
                   "gap_pct": 100 * (m["rmse"] / oracle["rmse"] - 1),
                   "gap_masked_rmse": m.get("masked_rmse", float("nan")) - oracle_masked,
                   "sqft_mae": float("nan"), "sqft_mape": float("nan"), "sqft_bias": float("nan"),
                   "fill_seconds": float("nan")}
            fill = fill_of(ctx.model("price", mech, name))
            if fill is not None and masked.any():
                filled = fill.fill(test[cols])
                row.update(fill_error(test.loc[masked, "sqft_living"], filled[living]))
            if strategy not in ("drop", "native"):
                fresh = make_fill(strategy, living, basement, t, ctx.seed)
                t0 = time.perf_counter()
                fresh.fit(timing[cols]).transform(timing[cols])
                row["fill_seconds"] = time.perf_counter() - t0
            rows.append(row)
        rows.append({"mechanism": mech, "strategy": "oracle", "cv_rmse":
                     ctx.selection["price"]["oracle"]["candidates"]["lgbm"]["cv"]["rmse"]["mean"],
                     "rmse": oracle["rmse"], "masked_rmse": oracle_masked,
                     "mae_dollars": oracle["mae_dollars"], "r2": oracle["r2"], "gap_rmse": 0.0,
                     "gap_pct": 0.0, "gap_masked_rmse": 0.0, "sqft_mae": 0.0, "sqft_mape": 0.0,
                     "sqft_bias": 0.0, "fill_seconds": 0.0})
    return pd.DataFrame(rows)


def learning_curve(ctx: AnalysisContext) -> pd.DataFrame:
    """The oracle model trained on n complete training listings, scored on the full test set:
    where adding listings stops paying. Each size below all of them is fitted on `curve_seeds`
    seeded subsets (mean and sd), so a bump is told from the draw's luck; `monotone` says
    whether each step's mean stays within two standard errors of the last (or improves)."""
    cols = ctx.meta["views"]["oracle"]
    train, test = ctx.train, ctx.test
    sizes = sorted({int(s) for s in ctx.cfg["analysis"]["learning_curve"] if int(s) < len(train)}
                   | {len(train)})
    # the oracle view's LightGBM candidate: at all listings it is the model train fitted on
    # every training listing (loaded, not fitted again); below, the same candidate on subsets
    oracle = {c.name: c for c in ctx.tasks["price"].candidates("oracle", cols)}["lgbm"]
    # the fits side by side on the cores (`parallel.run_fits`), each returning its predictions
    # on its own training listings, then on the test
    train = train.reset_index(drop=True)  # positions: the seeded samples pick the same rows
    frame = pd.concat([train[cols], test[cols]], ignore_index=True)
    y = pd.concat([train["log_price"], test["log_price"]], ignore_index=True)
    test_idx = np.arange(len(train), len(frame))
    jobs, subs = [], []
    for n in sizes[:-1]:
        for k in range(int(ctx.cfg["analysis"]["curve_seeds"])):
            sub = train.sample(n, random_state=ctx.seed + k)
            jobs.append(Job(oracle.build(), sub.index.to_numpy(),
                            np.concatenate([sub.index.to_numpy(), test_idx]), predict))
            subs.append((n, sub["log_price"]))
    done = [pred for pred, _ in run_fits(jobs, frame, y)]
    subs.append((len(train), train["log_price"]))
    done.append(predict(ctx.model("price", "oracle", "lgbm"), frame))
    rows = []
    for (n, sub_y), pred in zip(subs, done):
        rows.append({"listings": n, "train_rmse": _rmse(sub_y, pred[:len(sub_y)]),
                     "test_rmse": _rmse(test["log_price"], pred[len(sub_y):])})
    g = pd.DataFrame(rows).groupby("listings")
    curve = pd.DataFrame({"train_rmse": g["train_rmse"].mean(), "test_rmse": g["test_rmse"].mean(),
                          "test_rmse_sd": g["test_rmse"].std(ddof=1), "seeds": g.size()}
                         ).reset_index()
    se = (curve["test_rmse_sd"].fillna(0) ** 2 / curve["seeds"]) ** 0.5
    step_se = (se ** 2 + se.shift(1) ** 2) ** 0.5
    curve["monotone"] = (curve["test_rmse"] <= curve["test_rmse"].shift(1) + 2 * step_se) | (
        curve.index == 0)
    return curve


def floor_rmse(ctx: AnalysisContext) -> float | None:
    """The Bayes floor on the test homes (the simulator's noise-free log price), None on real
    data: the line the learning curve can approach and never cross."""
    from cases.lifecycle.floor import truth_columns

    column = truth_columns(ctx.cfg).get("price")
    test = ctx.test
    if column is None or column not in test:
        return None
    return _rmse(test["log_price"], test[column])


def analyze(ctx: AnalysisContext) -> EdaResult:
    table = strategy_table(ctx)
    # fill times depend on the machine: kept apart (analysis_timing.json), the rest reproduces
    fill_seconds = table[["mechanism", "strategy", "fill_seconds"]].to_dict(orient="records")
    table = table.drop(columns="fill_seconds")
    curve = learning_curve(ctx)
    train = ctx.train
    n_timing = min(int(ctx.cfg["analysis"]["timing_rows"]), len(train) + len(ctx.test))
    figures: dict = {"strategies": table.round(6), "learning_curve": curve.round(6)}
    facts: dict = {"strategies": table.to_dict(orient="records"),
                   "learning_curve": curve.astype(object).where(curve.notna(), None).to_dict(
                       orient="records"), "by_mechanism": {}}
    for mech, part in table.groupby("mechanism", sort=False):
        strategies = part[part["strategy"] != "oracle"].sort_values("rmse")
        oracle = float(part.loc[part["strategy"] == "oracle", "rmse"].iloc[0])
        fig, ax = figure(f"{mech}: test RMSE of log price by strategy", "RMSE (log price)", "")
        ax.barh(strategies["strategy"], strategies["rmse"], color="#4c72b0")
        ax.axvline(oracle, c="k", ls="--", lw=1, label=f"oracle {oracle:.4f}")
        baseline = ctx.metrics["tasks"]["price"][mech]["test"]["baseline"]["rmse"]
        # the axis starts at zero (a cut axis magnifies differences of a few thousandths);
        # each bar carries its value and its gap to the oracle
        ax.set_xlim(0, max(strategies["rmse"].max(), oracle) * 1.25)
        for y, row in enumerate(strategies.itertuples(index=False)):
            ax.text(row.rmse, y, f" {row.rmse:.4f} ({row.gap_pct:+.1f}%)", va="center",
                    fontsize=7)
        ax.invert_yaxis()
        ax.legend(fontsize=8, title=f"baseline {baseline:.4f}", title_fontsize=8)
        figures[f"downstream_{mech}"] = fig
        complete = int((~train[f"missing_{mech}"]).sum())
        best, worst = strategies.iloc[0], strategies.iloc[-1]
        drop = strategies[strategies["strategy"] == "drop"]
        facts["by_mechanism"][mech] = {
            "best": best["strategy"], "best_rmse": float(best["rmse"]),
            "best_gap_pct": float(best["gap_pct"]), "worst": worst["strategy"],
            "worst_rmse": float(worst["rmse"]), "worst_gap_pct": float(worst["gap_pct"]),
            "oracle_rmse": oracle, "complete_train_listings": complete,
            "drop_gap_pct": float(drop["gap_pct"].iloc[0]) if len(drop) else None,
            "selected_by_cv": ctx.selection["price"][mech]["selected"],
        }
    full = curve.iloc[-1]
    mech0 = next(iter(facts["by_mechanism"]), None)
    complete = facts["by_mechanism"][mech0]["complete_train_listings"] if mech0 else len(train)
    # the curve at the complete-listing count, interpolated on log(listings)
    at_complete = float(np.interp(np.log(complete), np.log(curve["listings"]), curve["test_rmse"]))
    half = curve[curve["listings"] <= len(train) / 2].iloc[-1] if (
        curve["listings"] <= len(train) / 2).any() else curve.iloc[0]
    floor = floor_rmse(ctx)
    facts["curve_monotone_within_noise"] = bool(curve["monotone"].all())
    facts["floor_test_rmse"] = floor
    facts["plateau"] = {"all_listings": int(full["listings"]), "all_rmse": float(full["test_rmse"]),
                        "complete_listings": complete, "complete_rmse": at_complete,
                        "cost_of_dropping_pct": 100 * (at_complete / float(full["test_rmse"]) - 1),
                        "half_listings": int(half["listings"]),
                        "half_rmse": float(half["test_rmse"])}
    fig, ax = figure("Learning curve: the oracle price model by training listings",
                     "complete training listings (log scale)", "RMSE of log price")
    ax.errorbar(curve["listings"], curve["test_rmse"], yerr=curve["test_rmse_sd"].fillna(0),
                marker="o", capsize=3, label="test (mean of seeds, sd)")
    ax.plot(curve["listings"], curve["train_rmse"], marker="o", ls=":", label="train")
    ax.axvline(complete, c="grey", ls="--", lw=1, label=f"{complete:,} complete (after a mask)")
    if floor is not None:
        ax.axhline(floor, c="black", lw=1.2, label="Bayes floor (test homes)")
    ax.set_xscale("log")
    count_ticks(ax, curve["listings"])
    ax.legend(fontsize=8)
    figures["learning_curve_plot"] = fig
    show = table[["mechanism", "strategy", "cv_rmse", "rmse", "gap_pct", "masked_rmse",
                  "gap_masked_rmse", "mae_dollars", "r2", "sqft_mae", "sqft_mape", "sqft_bias"]]
    p = facts["plateau"]
    sections = [
        ("Every strategy under every mechanism", (
            f"Test set: the latest sales; the price model is the same LightGBM everywhere, so "
            f"only the fill differs. `rmse` is on log price over all test homes, `masked_rmse` "
            f"only over those whose size was hidden, `gap` against the oracle (the same model "
            f"with nothing missing). `sqft_*` compare the fill with the true living area on the "
            f"masked test homes (fitted on training rows only); each fill's fit and transform "
            f"time on {n_timing:,} rows is in `analysis_timing.json` (it depends on the "
            f"machine). `drop` serves incomplete listings with the "
            f"training median; `native` fills "
            f"nothing.\n\n" + markdown_table(show.round(4))
            + "\n\n" + "\n\n".join(f"![{m}](analysis/downstream_{m}.png)"
                                   for m in facts["by_mechanism"]))),
        ("Is dropping the incomplete listings fair?", (
            markdown_table(curve.round(4))
            + f"\n\nWith all {p['all_listings']:,} training listings the oracle model reaches "
              f"RMSE {p['all_rmse']:.4f}; with the {p['complete_listings']:,} that stay complete "
              f"it would reach about {p['complete_rmse']:.4f} ({p['cost_of_dropping_pct']:+.2f}%)"
              f", and with {p['half_listings']:,} {p['half_rmse']:.4f}. That is the cost of "
              f"fewer rows alone; under a mechanism that is not completely at random, dropping "
              f"also trains on a biased sample (see `drop` above).\n\n"
              f"Each size below all listings is the mean of "
              f"{int(ctx.cfg['analysis']['curve_seeds'])} seeded subsets; the curve is "
              + ("monotone within noise (no step rises by more than two standard errors)"
                 if facts["curve_monotone_within_noise"] else
                 "not monotone within noise at some step (see `monotone`)")
              + (f". The Bayes floor, the RMSE of the simulator's noise-free log price on the "
                 f"test homes, is {floor:.4f}." if floor is not None else
                 ". No floor (truth unknown).")
              + "\n\n![learning curve](analysis/learning_curve_plot.png)")),
    ]
    return EdaResult(sections=sections, figures=figures, facts=facts,
                     timings={"fill_seconds": fill_seconds})
