"""The flights case's own analyses, from the fitted models (nothing heavy is retrained):

1. the information effect with the model held fixed: each task's candidate scored on the booking
   and the pre-departure views, with the paired bootstrap interval of the difference;
2. the buckets framing made useful: per-bucket PR-AUC, the calibration of P(2 h or more late),
   and what an operations desk does with it (an alert threshold set by its capacity);
3. the tail: no candidate predicts it, and what does move it on the same split (a high quantile,
   a two-stage P(2 h+) x conditional delay);
4. selection against test: candidates the test set ranks above the CV selection."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cases.flights.evaluation import segments
from cases.lifecycle import bootstrap as bs
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table
from cases.lifecycle.models import lgbm_pipeline
from cases.lifecycle.report import signed_bounds
from cases.lifecycle.selection import predict_for

INFO_METRICS = {"regression": ["mae", "rmse", "tail_mae", "tail_bias"],
                "delayed": ["auc", "average_precision", "log_loss"],
                "buckets": ["log_loss", "auc_ovr"]}


def analyze(ctx: AnalysisContext) -> EdaResult:
    cfg = ctx.cfg
    sections: list[tuple[str, str]] = []
    figures: dict = {}
    facts: dict = {}
    views = list(ctx.meta["views"])
    pv = cfg["primary"]["view"]
    resamples: dict[str, tuple] = {}  # task -> (rows, Resamples): the evaluate stage's draws

    def draws(task: str):
        if task not in resamples:
            rows = ctx.rows("test", ctx.tasks[task].target)
            e = cfg["evaluate"]
            _, units = bs.unit_ids(rows, dict(e["bootstrap_unit"]))
            resamples[task] = (rows, bs.Resamples(units, int(e["bootstrap_resamples"]),
                                                  ctx.seed, int(e["bootstrap_rowwise_resamples"])))
        return resamples[task]

    predict = TestPredictions(ctx, draws)

    if len(views) > 1:
        info, table = information_effect(ctx, views[0], views[-1], draws, predict)
        facts["information"] = info
        figures["information"] = table
        sections.append(("What the later information buys, the model held fixed", (
            f"Each task's candidate selected on `{views[-1]}` is scored on `{views[0]}` and on "
            f"`{views[-1]}` features (the same candidate, refitted on each view's columns), on "
            f"the same test flights and the same bootstrap resamples (whole days): `diff` is "
            f"{views[-1]} minus {views[0]}, with its paired 95% interval.\n\n"
            + markdown_table(table.round(4)))))
    if "buckets" in ctx.tasks and "buckets" in ctx.selection:
        bk, bsec, bfig = buckets_analysis(ctx, pv, draws, predict)
        facts["buckets"] = bk
        figures.update(bfig)
        sections += bsec
    if "regression" in ctx.tasks and "regression" in ctx.selection:
        tail, tsec, tfig = tail_analysis(ctx, pv, draws, predict, facts.get("buckets"))
        facts["tail"] = tail
        figures.update(tfig)
        sections += tsec
        facts["selection_vs_test"] = selection_vs_test(ctx, pv)
        sections.append(("Selection is on CV; test is not for choosing",
                         _selection_text(facts["selection_vs_test"])))
    return EdaResult(sections=sections, figures=figures, facts=facts)


class TestPredictions:
    """`predict(task, view, name, rows_of=None)`: a candidate's predictions on `view` for the test
    rows of task `rows_of` (default: its own), made once. The analyses read the selected models
    more than once, and flights' tasks share their test rows (every target is known for the same
    flights), so a model's predictions are shared whichever task's rows asked for them."""

    def __init__(self, ctx: AnalysisContext, draws):
        self.ctx, self.draws = ctx, draws
        self.made: dict[tuple, np.ndarray] = {}
        self.rows: dict[str, np.ndarray] = {}  # task -> which test rows it has (a mask)
        self.test: pd.DataFrame | None = None

    def __call__(self, task: str, view: str, name: str, rows_of: str | None = None) -> np.ndarray:
        rows_of = rows_of or task
        key = (task, view, name, self._same_rows(rows_of))
        if key not in self.made:
            t = self.ctx.tasks[task]
            X = self.draws(rows_of)[0].frame[self.ctx.meta["views"][view]]
            self.made[key] = predict_for(t.kind, self.ctx.model(task, view, name), X,
                                         len(t.classes) if t.classes else None)
        return self.made[key]

    def _same_rows(self, task: str) -> str:
        """The first task asked for whose test rows are `task`'s."""
        if task not in self.rows:
            if self.test is None:
                self.test = self.ctx.test
            self.rows[task] = self.test[self.ctx.tasks[task].target].notna().to_numpy()
        return next(other for other, mask in self.rows.items()
                    if np.array_equal(mask, self.rows[task]))


# ---- 1. the information effect ------------------------------------------------------------------

def _stats(task, y, pred, rows: pd.DataFrame, cfg, names: list[str]) -> dict:
    kind = task.kind
    if kind == "regression":
        out = bs.regression_statistics(y, pred, segments(y, rows, cfg))
    elif kind == "binary":
        out = bs.binary_statistics(y, pred)
    else:
        out = bs.multiclass_statistics(y, pred, task.classes)
    return {m: out[m] for m in names if m in out}


def information_effect(ctx: AnalysisContext, a: str, b: str, draws,
                       predict) -> tuple[dict, pd.DataFrame]:
    out, rows_out = {}, []
    for tname, metrics in INFO_METRICS.items():
        if tname not in ctx.selection or a not in ctx.selection[tname] \
                or b not in ctx.selection[tname]:
            continue
        task = ctx.tasks[tname]
        name = ctx.selection[tname][b]["selected"]
        rows, rs = draws(tname)
        y = rows.frame[task.target].to_numpy()
        stats, points = {}, {}
        for view in (a, b):
            pred = predict(tname, view, name)
            stats[view] = _stats(task, y, pred, rows.frame, ctx.cfg, metrics)
            points[view] = {m: s.point() for m, s in stats[view].items()}
        boot = bs.resample_all(stats, rs)
        pair = bs.paired(points[b], points[a], boot[b], boot[a])
        out[tname] = {"candidate": name, a: points[a], b: points[b], "paired": pair}
        for m in metrics:
            if m in pair:
                rows_out.append({"task": tname, "candidate": name, "metric": m, a: points[a][m],
                                 b: points[b][m], "diff": pair[m]["diff"], "lo": pair[m]["lo"],
                                 "hi": pair[m]["hi"], "within_noise": pair[m]["within_noise"]})
    return out, pd.DataFrame(rows_out)


# ---- 2. the buckets framing ---------------------------------------------------------------------

def _long_classes(task, tail_min: float, edges) -> list[int]:
    """Positions of the buckets that start at `tail_min` or later (2 h+ with the default edges)."""
    starts = [-np.inf, *edges]
    return [i for i, s in enumerate(starts[: len(task.classes)]) if s >= tail_min]


def buckets_analysis(ctx: AnalysisContext, view: str, draws, predict):
    acfg, cfg = ctx.cfg["analysis"], ctx.cfg
    task = ctx.tasks["buckets"]
    name = ctx.selection["buckets"][view]["selected"]
    tail_min = float(cfg["metrics"]["tail_min"])
    long = _long_classes(task, tail_min, cfg["features"]["bucket_edges"])
    rows, rs = draws("buckets")
    test = rows.frame
    y = test[task.target].to_numpy().astype(int)
    model = ctx.model("buckets", view, name)
    proba = predict("buckets", view, name)
    # per bucket: PR-AUC (average precision, one against the rest) against its base rate; the
    # bootstrap (row-wise, the costly kind) only for P(2 h+), the figure the desk acts on
    per_bucket, stats = [], {}
    p_long = proba[:, long].sum(axis=1)
    is_long = np.isin(y, long).astype(int)
    stats["long"] = {"average_precision": bs.AveragePrecision(is_long, p_long),
                     "auc": bs.AUC(is_long, p_long),
                     "ece": bs.calibration_error_of(is_long, p_long,
                                                    int(acfg["calibration_bins"]))}
    boot = bs.resample_all(stats, rs)
    for c, label in enumerate(task.classes):
        hit = (y == c).astype(int)
        if 0 < hit.sum() < len(hit):
            ap = bs.AveragePrecision(hit, proba[:, c]).point()
            per_bucket.append({"bucket": label, "flights": int(hit.sum()),
                               "base_rate": float(hit.mean()), "pr_auc": ap,
                               "lift": ap / float(hit.mean()),
                               "argmax_recall": float((proba[y == c].argmax(axis=1) == c).mean())})
    per_bucket = pd.DataFrame(per_bucket)
    long_label = f"{tail_min / 60:g}h_plus"
    long_facts = {name_: {"value": stats["long"][name_].point(),
                          "interval": bs.interval(boot["long"][name_])}
                  for name_ in ("average_precision", "auc", "ece")}
    # calibration of P(2 h+): equal-count bins (equal-width bins put almost all in the first)
    calib = _calibration(is_long, p_long, int(acfg["calibration_bins"]))
    # the ops desk: a threshold set by its capacity (flagged flights per day), read from the
    # score distribution of the last training month (no labels used, nothing from test)
    tz = cfg["evaluate"]["bootstrap_unit"].get("timezone")
    days_test = _days(test["scheduled_departure"], tz)
    _, val = ctx.validation(1)
    val_X = val.frame[ctx.meta["views"][view]]
    p_val = predict_for("multiclass", model, val_X, len(task.classes))[:, long].sum(axis=1)
    days_val = _days(val.frame["scheduled_departure"], tz)
    alerts = []
    for cap in acfg["alerts_per_day"]:
        share = min(float(cap) * days_val / len(p_val), 1.0)
        t = float(np.quantile(p_val, 1 - share)) if share > 0 else np.inf
        alerts.append({"rule": f"capacity {cap:g}/day", "capacity": float(cap), "threshold": t,
                       **_alert(is_long, p_long, t, days_test)})
    for t in acfg["alert_thresholds"]:
        alerts.append({"rule": f"P >= {t:g}", "threshold": float(t),
                       **_alert(is_long, p_long, float(t), days_test)})
    argmax = np.isin(proba.argmax(axis=1), long)
    alerts.append({"rule": "argmax bucket", "threshold": float("nan"),
                   **_alert(is_long, argmax.astype(float), 0.5, days_test)})
    alerts = pd.DataFrame(alerts)
    facts = {"candidate": name, "view": view, "long_buckets": [task.classes[i] for i in long],
             "long_label": long_label, "test_days": days_test,
             "long_share": float(is_long.mean()), "long_flights": int(is_long.sum()),
             "per_bucket": per_bucket.to_dict("records"), "long": long_facts,
             "calibration": calib.to_dict("records"),
             "mean_predicted": float(p_long.mean()),
             "alerts": alerts.to_dict("records")}
    fig, ax = figure(f"Calibration of P({tail_min / 60:g} h or more late), test months ({name}, "
                     f"{view})", "mean predicted probability", "observed share",
                     size=(6, 5))
    hi = float(max(calib["mean_predicted"].max(), calib["observed_rate"].max())) * 1.05
    ax.plot([0, hi], [0, hi], ls=":", c="grey", lw=1)
    ax.plot(calib["mean_predicted"], calib["observed_rate"], marker="o")
    figs = {"buckets_pr_auc": per_bucket.round(5), "long_calibration_data": calib.round(6),
            "long_calibration": fig, "long_alerts": alerts.round(5)}
    cap_rows = alerts[alerts["rule"].str.startswith("capacity")]
    sections = [(f"Buckets: which are worth predicting ({name}, {view})", (
        "Argmax labels say \"on time\" almost always; the probabilities carry the signal. "
        "PR-AUC (average precision, one bucket against the rest) against its base rate "
        "(`lift` = PR-AUC / base rate; `argmax_recall`: how often the bucket is the most "
        "likely class when it happens):\n\n"
        + markdown_table(per_bucket.round(4)))),
        (f"P({tail_min / 60:g} h or more late): calibrated, and what an ops desk does with it", (
            f"P = the sum of the {', '.join(facts['long_buckets'])} bucket probabilities. "
            f"{facts['long_flights']:,} of the test flights ({100 * facts['long_share']:.2f}%) "
            f"arrived {tail_min / 60:g} h+ late; the mean P is "
            f"{100 * facts['mean_predicted']:.2f}%. PR-AUC "
            f"{long_facts['average_precision']['value']:.3f} "
            f"{_iv(long_facts['average_precision']['interval'], 3)}, AUC "
            f"{long_facts['auc']['value']:.3f} {_iv(long_facts['auc']['interval'], 3)}, "
            f"calibration error {long_facts['ece']['value']:.4f} "
            f"{_iv(long_facts['ece']['interval'], 4)}.\n\n"
            "![calibration](analysis/long_calibration.png)\n\n"
            + markdown_table(calib.round(4)) + "\n\n"
            "Alerts: a desk that can chase a fixed number of flights a day sets the threshold "
            "from that capacity on the last training month's scores (no labels, nothing from "
            "the test months); fixed thresholds are shown for comparison only (read on test, "
            "not chosen on it). `argmax bucket` is the classifier's label:\n\n"
            + markdown_table(alerts.round(4))
            + ("\n\n" + " ".join(
                f"Sized for {r['capacity']:g} alerts a day, the desk gets {r['flagged_per_day']:.1f} "
                f"a day on the test months (winter scores run higher than the last training "
                f"month's) and catches {100 * r['recall']:.0f}% of the {tail_min / 60:g} h+ "
                f"flights, {r['caught_per_day']:.1f} a day, with {100 * r['precision']:.0f}% of "
                f"its alerts right." for r in cap_rows.to_dict("records")) if len(cap_rows)
               else "")))]
    return facts, sections, figs


def _days(times: pd.Series, timezone: str | None) -> int:
    """Distinct local calendar days among the scheduled departures."""
    t = pd.to_datetime(times)
    if t.dt.tz is not None and timezone:
        t = t.dt.tz_convert(timezone)
    return int(t.dt.date.nunique())


def _alert(y: np.ndarray, p: np.ndarray, t: float, days: int) -> dict:
    flag = p >= t
    tp = int((flag & (y == 1)).sum())
    return {"flagged": int(flag.sum()), "flagged_per_day": float(flag.sum() / max(days, 1)),
            "precision": float(tp / flag.sum()) if flag.any() else float("nan"),
            "recall": float(tp / max(int(y.sum()), 1)),
            "caught_per_day": float(tp / max(days, 1))}


def _calibration(y: np.ndarray, p: np.ndarray, n_bins: int) -> pd.DataFrame:
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.minimum(np.arange(len(p)) * n_bins // max(len(p), 1), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y})
    g = frame.groupby("bin")
    return pd.DataFrame({"p_from": g["p"].min(), "p_to": g["p"].max(),
                         "mean_predicted": g["p"].mean(), "observed_rate": g["y"].mean(),
                         "flights": g.size()}).reset_index(drop=True)


def _iv(iv, digits: int) -> str:
    lo, hi = iv
    return "" if lo is None else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


# ---- 3. the tail --------------------------------------------------------------------------------

def tail_analysis(ctx: AnalysisContext, view: str, draws, predict, buckets: Mapping | None):
    cfg, acfg = ctx.cfg, ctx.cfg["analysis"]
    tail_min = float(cfg["metrics"]["tail_min"])
    reg = ctx.metrics["tasks"]["regression"][view]
    selected = reg["selected"]
    # every candidate: the tail bias against the tail MAE (bias = -MAE: every tail flight is
    # under-predicted)
    table = pd.DataFrame([{"candidate": n, "tail_mae": m["tail_mae"], "tail_bias": m["tail_bias"],
                           "under_share_bound": -m["tail_bias"] / m["tail_mae"]}
                          for n, m in reg["test"].items() if "tail_mae" in m])
    rows, rs = draws("regression")
    test = rows.frame
    cols = ctx.meta["views"][view]
    y = test["arr_delay"].to_numpy(float)
    base_pred = predict("regression", view, selected)
    preds = {selected: base_pred}
    # what moves it: (a) a high quantile of the delay, fitted on a sample of training flights
    train = ctx.rows("train", "arr_delay").frame
    cap = acfg.get("tail_train_rows")
    n = len(train) if cap is None else min(int(cap), len(train))
    sample = train.sample(n, random_state=ctx.seed) if n < len(train) else train
    q = float(acfg["tail_quantile"])
    cats = [c for c in cols if c in cfg["features"]["categorical"]]
    # one thread: a small fit, and LightGBM's threads stall on a busy machine (the quantile
    # objective most: 0.5 s on one thread, over a minute on two at a load of 17)
    quant = lgbm_pipeline("regression", cats, loss="quantile",
                          params={**dict(cfg["train"]["lgbm"]), "n_jobs": 1},
                          quantile_alpha=q, seed=ctx.seed).fit(sample[cols], sample["arr_delay"])
    preds[f"quantile {q:g}"] = predict_for("regression", quant, test[cols])
    # (b) two-stage: P(2 h+) from the buckets model x the training tail's mean delay, plus
    # (1 - P) x the selected model's prediction; and the hard rule at the desk's threshold
    if buckets is not None:
        btask = ctx.tasks["buckets"]
        long = [btask.classes.index(c) for c in buckets["long_buckets"]]
        p = predict("buckets", view, buckets["candidate"], rows_of="regression")[:, long].sum(
            axis=1)
        tail_train = train.loc[train["arr_delay"] >= tail_min, "arr_delay"]
        cond = float(tail_train.mean())
        preds["two-stage expected"] = p * cond + (1 - p) * base_pred
        cap = next((a for a in buckets["alerts"] if a["rule"].startswith("capacity")), None)
        if cap is not None:
            preds[f"two-stage alert ({cap['rule']})"] = np.where(p >= cap["threshold"], cond,
                                                                 base_pred)
    stats = {k: {m: s for m, s in bs.regression_statistics(y, v, segments(y, test, cfg)).items()
                 if m in ("mae", "medae", "tail_mae", "tail_bias")} for k, v in preds.items()}
    points = {k: {m: s.point() for m, s in st.items()} for k, st in stats.items()}
    boot = bs.resample_all(stats, rs)
    moves = []
    for k in preds:
        pair = bs.paired(points[k], points[selected], boot[k], boot[selected]) if k != selected \
            else {}
        moves.append({"model": k, **points[k],
                      **{f"{m}_diff": pair[m]["diff"] for m in ("mae", "tail_mae") if m in pair},
                      **{f"{m}_diff_lo": pair[m]["lo"] for m in ("mae", "tail_mae") if m in pair},
                      **{f"{m}_diff_hi": pair[m]["hi"] for m in ("mae", "tail_mae") if m in pair}})
    moves = pd.DataFrame(moves)
    cand = table[table["candidate"] != "baseline"]
    facts = {"view": view, "selected": selected, "tail_min": tail_min,
             "tail_flights": int((y >= tail_min).sum()),
             "candidates": table.to_dict("records"),
             "min_under_share_bound": float(cand["under_share_bound"].min()),
             "best_tail_mae": float(cand["tail_mae"].min()),
             "tail_train_mean": float(train.loc[train["arr_delay"] >= tail_min, "arr_delay"]
                                      .mean()),
             "quantile": q, "quantile_train_rows": int(n), "moves": moves.to_dict("records")}
    fig, ax = figure(f"What moves the tail ({view}): MAE against tail MAE on the test flights",
                     "MAE on all test flights (min)",
                     f"MAE on flights {tail_min:g}+ min late (min)", size=(8, 5))
    for r in moves.itertuples(index=False):
        ax.scatter(r.mae, r.tail_mae, s=30)
        ax.annotate(r.model, (r.mae, r.tail_mae), fontsize=7)
    figs = {"tail_candidates": table.round(4), "tail_moves": moves.round(4), "tail_moves_plot": fig}
    sections = [("The tail: no candidate predicts it", (
        f"On the test flights {tail_min:g}+ min late ({facts['tail_flights']:,}), every candidate's "
        f"tail bias is close to minus its tail MAE: at least "
        f"{100 * facts['min_under_share_bound']:.0f}% of the tail error is under-prediction for "
        f"every candidate (`under_share_bound` = -bias / MAE; 1 means every tail flight is "
        f"predicted too early). A loss choice (huber, quantile at the median, filtering, "
        f"winsorizing) only moves the middle.\n\n" + markdown_table(table.round(3)))),
        ("What does move the tail, on the same split", (
            f"Against the selected `{selected}` on the same test flights and resamples (`_diff` "
            f"= model minus `{selected}`, paired 95% interval): a LightGBM quantile regression at "
            f"q = {q:g} (fitted on {n:,} sampled training flights); the two-stage expected "
            f"delay P({tail_min / 60:g} h+) x {facts['tail_train_mean']:.0f} min (the training "
            f"tail's mean) + (1 - P) x `{selected}`; and the hard two-stage rule that predicts "
            f"the tail's mean for the flights the desk flags. Each buys tail MAE with MAE on "
            f"everyone else: a second model for the desk, not a replacement for the app's.\n\n"
            + markdown_table(moves.round(3)) + "\n\n![tail](analysis/tail_moves_plot.png)"))]
    return facts, sections, figs


# ---- 4. selection against test -----------------------------------------------------------------

def selection_vs_test(ctx: AnalysisContext, view: str) -> dict:
    """Candidates whose paired test interval against the selected one excludes zero on the
    selection metric in their favour, with their CV means: the run shows it, selection stands."""
    entry = ctx.metrics["tasks"]["regression"][view]
    sel_entry = ctx.selection["regression"][view]
    metric = entry["gate"]["metric"]
    selected = entry["selected"]
    from cases.lifecycle.evaluate import greater_is_better

    better = []
    for name, p in (entry.get("paired") or {}).items():  # none: an evaluate without intervals
        x = (p.get("vs_selected") or {}).get(metric)
        if not x or x["within_noise"]:
            continue
        if (x["diff"] > 0) == greater_is_better(metric):
            better.append({"candidate": name, "test": entry["test"][name][metric],
                           "diff": x["diff"], "lo": x["lo"], "hi": x["hi"],
                           "cv_mean": sel_entry["candidates"][name]["cv"][metric]["mean"]})
    return {"metric": metric, "selected": selected, "rule": sel_entry.get("rule"),
            "selected_test": entry["test"][selected][metric],
            "selected_cv_mean": sel_entry["candidates"][selected]["cv"][metric]["mean"],
            "test_better": better}


def _selection_text(s: Mapping) -> str:
    if not s["test_better"]:
        return (f"No candidate beats the selected `{s['selected']}` on test {s['metric']} "
                f"outside the paired interval.")
    lines = [f"- `{b['candidate']}`: test {s['metric']} {b['test']:.2f} against "
             f"{s['selected_test']:.2f}, difference {b['diff']:+.2f} "
             f"{signed_bounds(b['lo'], b['hi'], 2)}; CV mean {b['cv_mean']:.2f} against "
             f"{s['selected_cv_mean']:.2f}"
             for b in s["test_better"]]
    return (f"`{s['selected']}` was picked on the training months' CV ({s['rule']}). On the "
            f"test months these beat it outside the paired interval:\n\n" + "\n".join(lines)
            + "\n\nThe test months are one season and were used once, to report; choosing on "
              "them would make the reported figure optimistic. The honest move is to note it and "
              "re-run selection (more folds, a later season), not to switch on test.")
