"""Is one million enough? A learning curve from 10,000 trips to all of them, on training and
validation error, the point where adding data stops paying, the ratio of features to samples,
how rare routes fare, and what serving the model costs (latency against the budget, size)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cases.eta.features import METER
from cases.eta.tasks import ZoneGeometry, duration_metrics, pair_of
from cases.lifecycle.contract import PLAIN, AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table
from cases.lifecycle.parallel import Job, predict, run_fits
from cases.lifecycle.plots import count_ticks


def _rmsle(y, pred) -> float:
    return duration_metrics(y, pred, None, None)["rmsle"]


def plateau(curve: pd.DataFrame, model: str, gain_pct: float) -> dict:
    """The size from which every further doubling of the trips improves validation RMSLE by
    less than `gain_pct` percent (None: the last step still paid). On the mean over the seeded
    subsets of each size."""
    c = curve[curve["model"] == model].groupby("trips")["val_rmsle"].mean().sort_index()
    n, v = c.index.to_numpy(float), c.to_numpy(float)
    gains = [100 * (v[i] - v[i + 1]) / v[i] / np.log2(n[i + 1] / n[i]) for i in range(len(n) - 1)]
    paying = [i for i, g in enumerate(gains) if g >= gain_pct]
    stop = None if paying and paying[-1] == len(gains) - 1 else (paying[-1] + 1 if paying else 0)
    return {"gain_per_doubling_pct": [float(g) for g in gains],
            "stops_paying_at": int(n[stop]) if stop is not None else None,
            "largest": int(n[-1]), "val_rmsle_largest": float(v[-1]),
            "val_rmsle_smallest": float(v[0]), "smallest": int(n[0])}


def learning_curve(ctx: AnalysisContext) -> tuple[pd.DataFrame, dict]:
    """Validation RMSLE by training trips. Sizes up to `curve_seeds_up_to` are fitted on
    `curve_seeds` seeded subsets (a flat stretch must be more than one draw's luck); the larger
    ones, which barely vary from subset to subset, once (run time)."""
    a = ctx.cfg["analysis"]
    cols = ctx.meta["views"][ctx.cfg["primary"]["view"]]
    pool_rows, val_rows = ctx.validation(int(a["validation_weeks"]))
    pool, val, val_from = pool_rows.frame, val_rows.frame, val_rows.period.min()
    sizes = sorted({int(s) for s in a["learning_curve"] if int(s) < len(pool)} | {len(pool)})
    n_seeds, up_to = int(a["curve_seeds"]), int(a["curve_seeds_up_to"])
    task = ctx.tasks["duration"]
    # every fit on its own subset, side by side on the cores (`parallel.run_fits`): each returns
    # its predictions on a probe of its training trips, then on the validation weeks
    pool = pool.reset_index(drop=True)  # positions: the seeded samples below pick the same rows
    frame = pd.concat([pool[cols], val[cols]], ignore_index=True)
    y = pd.concat([pool["trip_duration"], val["trip_duration"]], ignore_index=True)
    val_idx = np.arange(len(pool), len(frame))
    jobs, keys = [], []
    selected = ctx.selection["duration"][ctx.cfg["primary"]["view"]]["selected"]
    for cand in task.candidates(ctx.cfg["primary"]["view"], cols):
        if cand.name == PLAIN != selected:  # the reference is scored by evaluate; no curve
            continue
        for n in sizes:
            seeds = range(n_seeds) if n < len(pool) and n <= up_to else range(1)
            for k in seeds:
                sub = pool.sample(n, random_state=ctx.seed + k) if n < len(pool) else pool
                probe = sub.sample(min(len(sub), 50_000), random_state=ctx.seed)
                jobs.append(Job(cand.build(), sub.index.to_numpy(),
                                np.concatenate([probe.index.to_numpy(), val_idx]), predict))
                keys.append((cand.name, n, ctx.seed + k, probe["trip_duration"]))
    rows = []
    for (name, n, seed, probe_y), (pred, _) in zip(keys, run_fits(jobs, frame, y)):
        rows.append({"model": name, "trips": n, "seed": seed,
                     "train_rmsle": _rmsle(probe_y, pred[:len(probe_y)]),
                     "val_rmsle": _rmsle(val["trip_duration"], pred[len(probe_y):])})
    info = {"validation_trips": int(len(val)), "pool_trips": int(len(pool)),
            "validation_from_week": int(val_from), "seeds": n_seeds, "seeds_up_to": up_to}
    floor = _floor(val, ctx.cfg)
    if floor is not None:
        info["floor_val_rmsle"] = floor
    return pd.DataFrame(rows), info


def _floor(rows: pd.DataFrame, cfg) -> float | None:
    """The Bayes floor's RMSLE on these rows (the simulator's truth), None on real data."""
    from cases.lifecycle.floor import truth_columns

    column = truth_columns(cfg).get("duration")
    if column is None or column not in rows:
        return None
    return _rmsle(rows["trip_duration"], rows[column])


def curve_summary(curve: pd.DataFrame, floor: float | None) -> pd.DataFrame:
    """Per model and size: the mean validation RMSLE over the seeds, its spread (sd, None with
    one seed), and the gap to the floor with the share of it each doubling closes."""
    g = curve.groupby(["model", "trips"])["val_rmsle"]
    out = pd.DataFrame({"val_rmsle_mean": g.mean(), "val_rmsle_sd": g.std(ddof=1),
                        "seeds": g.size()}).reset_index()
    if floor is not None:
        out["gap_to_floor"] = out["val_rmsle_mean"] - floor
        prev = out.groupby("model")["gap_to_floor"].shift(1)
        doublings = np.log2(out["trips"] / out.groupby("model")["trips"].shift(1))
        out["gap_closed_per_doubling_pct"] = 100 * (prev - out["gap_to_floor"]) / prev / doublings
    return out


# where each input comes from: what an interviewer asks of "which features"
SOURCES = {
    "distance and direction": ("gc_km", "manhattan_km", "grid_km", "log_gc_km", "bearing",
                               "trip_distance_km"),
    "places": ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude",
               "pickup_x", "pickup_y", "dropoff_x", "dropoff_y", "pickup_cluster",
               "dropoff_cluster", "pu_zone", "do_zone", "pu_borough", "do_borough"),
    "time": ("hour", "weekday", "hour_of_week", "minute_of_day", "holiday"),
    "weather": ("precip_mm",),
    "the booking": ("passenger_count", "vendor_id"),
}


def importance(ctx: AnalysisContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Permutation importance of the selected model on a seeded sample of test trips: how much
    RMSLE rises when one input (or one source's inputs together, shuffled by the same row
    order) no longer matches its trip. The zone-pair statistics (and on TLC files the zones'
    geometry) are computed inside the model from the pickup and dropoff places, so they move with
    "places"."""
    view = ctx.cfg["primary"]["view"]
    # the meter is read only when the model is fitted (tasks.ZoneGeometry), never an input
    cols = [c for c in ctx.meta["views"][view] if c != METER]
    test = ctx.test
    sample = test.sample(min(len(test), int(ctx.cfg["analysis"]["importance_rows"])),
                         random_state=ctx.seed).reset_index(drop=True)
    model = ctx.model("duration", view)
    y = sample["trip_duration"]
    X = sample[cols]
    base = _rmsle(y, model.predict(X))
    order = np.random.default_rng(ctx.seed).permutation(len(X))

    def rise(columns) -> float:
        shuffled = X.copy()
        shuffled[list(columns)] = X[list(columns)].iloc[order].to_numpy()
        return _rmsle(y, model.predict(shuffled)) - base

    source_of = {c: s for s, members in SOURCES.items() for c in members}
    unknown = [c for c in cols if c not in source_of]
    features = pd.DataFrame([{"feature": c, "source": source_of.get(c, "other"),
                              "rmsle_rise": rise([c])} for c in cols])
    groups = {s: [c for c in cols if source_of.get(c) == s] for s in SOURCES}
    if unknown:
        groups["other"] = unknown
    by_source = pd.DataFrame([{"source": s, "inputs": len(members), "rmsle_rise": rise(members),
                               "sum_of_single_rises": float(features.loc[
                                   features["source"] == s, "rmsle_rise"].sum())}
                              for s, members in groups.items() if members])
    return (features.sort_values("rmsle_rise", ascending=False).reset_index(drop=True),
            by_source.sort_values("rmsle_rise", ascending=False).reset_index(drop=True))


def route_rarity(ctx: AnalysisContext) -> dict:
    """Error on test trips whose pickup-dropoff pair was rare in training, against common ones."""
    cols = ctx.meta["views"][ctx.cfg["primary"]["view"]]
    pair = pair_of(cols)
    if pair is None:
        return {}
    train, test = ctx.train, ctx.test
    counts = train.groupby(list(pair)).size()
    idx = pd.MultiIndex.from_frame(test[list(pair)])
    seen = counts.reindex(idx).fillna(0).to_numpy()
    pred = ctx.model("duration", ctx.cfg["primary"]["view"]).predict(test[cols])
    y = test["trip_duration"].to_numpy()
    rare = seen < 20
    out = {"pairs_in_training": int(len(counts)), "rare_threshold": 20,
           "test_share_rare_pct": 100 * float(rare.mean())}
    if rare.any():
        out["rmsle_rare"] = _rmsle(y[rare], pred[rare])
    if (~rare).any():
        out["rmsle_common"] = _rmsle(y[~rare], pred[~rare])
    return out


def analyze(ctx: AnalysisContext) -> EdaResult:
    a = ctx.cfg["analysis"]
    curve, info = learning_curve(ctx)
    view = ctx.cfg["primary"]["view"]
    cols = ctx.meta["views"][view]
    selected = ctx.selection["duration"][view]["selected"]
    stop = {m: plateau(curve, m, float(a["plateau_gain_pct"])) for m in curve["model"].unique()}
    floor = info.get("floor_val_rmsle")
    summary = curve_summary(curve, floor)
    feats, by_source = importance(ctx)
    train_rows = len(ctx.rows("train"))
    cat = [c for c in ctx.cfg["features"]["categorical"] if c in cols]
    levels = int(sum(pd.concat([ctx.train[c], ctx.test[c]]).nunique() for c in cat))
    # what the model reads: the view (less the fit-only meter), the zone-pair statistics and, on
    # TLC files, the zones' geometry the meter was used to fit
    geo = ZoneGeometry(dims=int(ctx.cfg["features"]["zone_geometry"]["dims"])).columns() \
        if METER in cols else []
    n_inputs = len([c for c in cols if c != METER]) + (2 if pair_of(cols) else 0) + len(geo)
    lat = ctx.serving.get("latency_ms", {})
    facts = {
        "learning_curve": curve.to_dict("records"), "curve": info, "plateau": stop,
        "selected": selected,
        "features": {"inputs": n_inputs, "categorical_levels": levels,
                     "linear_columns": n_inputs - len(cat) + levels + 24 + 7,
                     "training_trips": train_rows,
                     "trips_per_input": train_rows / max(n_inputs, 1),
                     "unavailable": ctx.meta["split"].get("unavailable_features", [])},
        "routes": route_rarity(ctx),
        "curve_summary": summary.astype(object).where(summary.notna(), None).to_dict("records"),
        "importance": {"features": feats.to_dict("records"),
                       "by_source": by_source.to_dict("records"),
                       "rows": int(ctx.cfg["analysis"]["importance_rows"])},
    }
    fig, ax = figure("Learning curve: RMSLE by training trips", "training trips (log scale)",
                     "RMSLE")
    for name, part in summary.groupby("model"):
        line, = ax.plot(part["trips"], part["val_rmsle_mean"], marker="o",
                        label=f"{name} validation (mean of seeds)")
        ax.errorbar(part["trips"], part["val_rmsle_mean"], yerr=part["val_rmsle_sd"].fillna(0),
                    fmt="none", ecolor=line.get_color(), capsize=3)
        train = curve[curve["model"] == name].groupby("trips")["train_rmsle"].mean()
        ax.plot(train.index, train.to_numpy(), ls=":", marker=".", c=line.get_color(),
                label=f"{name} train")
        s = stop[name]["stops_paying_at"]
        if s:
            ax.axvline(s, ls="--", lw=1, color=line.get_color(),
                       label=f"{name}: more trips stop paying at {s:,}")
    if floor is not None:
        ax.axhline(floor, c="black", lw=1.2, label="Bayes floor (validation trips)")
    ax.set_xscale("log")
    count_ticks(ax, curve["trips"])
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    figures = {"learning_curve": fig, "learning_curve_data": curve.round(6),
               "feature_importance": feats.round(6), "importance_by_source": by_source.round(6)}
    lines = []
    for name, s in stop.items():
        where = (f"stops paying at about {s['stops_paying_at']:,} trips" if s["stops_paying_at"]
                 else "still pays at the largest size")
        lines.append(f"- `{name}`: validation RMSLE {s['val_rmsle_smallest']:.4f} at "
                     f"{s['smallest']:,} trips, {s['val_rmsle_largest']:.4f} at "
                     f"{s['largest']:,}; gain per doubling "
                     + ", ".join(f"{g:.1f}%" for g in s["gain_per_doubling_pct"])
                     + f"; {where} (threshold {float(a['plateau_gain_pct']):.1f}% per doubling).")
    sv = {"p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "budget_ms": float(a["budget_ms"]),
          "fits": bool(lat.get("p99", np.inf) <= float(a["budget_ms"])),
          "model_mb": ctx.model_size("duration", view) / 1e6}
    f, r = facts["features"], facts["routes"]
    sections = [
        ("Is one million enough? The learning curve", (
            f"Trained on seeded subsets of the training weeks before week "
            f"{info['validation_from_week']} ({info['pool_trips']:,} trips), validated on the "
            f"last {int(a['validation_weeks'])} training weeks ({info['validation_trips']:,} "
            f"trips); the test weeks stay untouched. Sizes up to {info['seeds_up_to']:,} trips "
            f"are fitted on {info['seeds']} seeded subsets (mean and sd below)"
            + (f"; the Bayes floor, the RMSLE of the simulator's noise-free duration on the "
               f"validation trips, is {floor:.4f}: 'enough data' means the gap to it stops "
               f"closing." if floor is not None else "; no floor (truth unknown).")
            + "\n\n" + markdown_table(summary.round(4)) + "\n\n" + "\n".join(lines)
            + "\n\n![learning curve](analysis/learning_curve.png)")),
        ("Which features, from where", (
            f"Permutation importance of `{selected}` on a seeded sample of test trips: the rise "
            f"in RMSLE when an input (or all of one source's inputs at once) is shuffled across "
            f"trips. The zone-pair statistics are computed from the places inside the model.\n\n"
            + markdown_table(by_source.round(4)) + "\n\n" + markdown_table(feats.round(4)))),
        ("Features against samples", (
            f"{f['inputs']} model inputs ({f['categorical_levels']} categorical levels; about "
            f"{f['linear_columns']} columns once one-hot encoded for the linear model) against "
            f"{f['training_trips']:,} training trips: {f['trips_per_input']:,.0f} trips per input."
            + (f" Not in this file, so not used: {', '.join(f['unavailable'])}."
               if f["unavailable"] else ""))),
    ]
    if r:
        sections.append(("Rare routes", (
            f"{r['pairs_in_training']:,} pickup-dropoff pairs seen in training; "
            f"{r['test_share_rare_pct']:.1f}% of test trips ride a pair seen fewer than "
            f"{r['rare_threshold']} times"
            + (f", with RMSLE {r['rmsle_rare']:.4f} against {r['rmsle_common']:.4f} on common "
               f"pairs." if "rmsle_rare" in r and "rmsle_common" in r else ".")
            + " A larger city or finer zones multiply the pairs, and with them the trips a "
              "pair statistic rests on.")))
    sections.append(("Serving", (
        f"Selected `{selected}`: the single-trip latency of the model loaded back from MLflow, "
        f"against a {sv['budget_ms']:.0f} ms budget, is in `analysis_timing.json` and "
        f"timing.md (it depends on the machine).")))
    return EdaResult(sections=sections, figures=figures, facts=facts, timings={"serving": sv})
