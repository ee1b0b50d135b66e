"""The flights interview story, written from the run's own numbers: which outlier strategy costs
what, which framing serves which user, and what weather two hours out buys."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cases.flights.evaluation import strategy_table
from cases.lifecycle.contract import Story
from cases.lifecycle.eda import markdown_table


def _fmt(x: float, unit: str = "") -> str:
    return f"{x:.1f}{unit}" if abs(x) < 100 else f"{x:.0f}{unit}"


def story(measured: Mapping, cfg: Mapping) -> Story:
    m = measured["metrics"]
    eda = measured["eda"]
    lat = measured["timing"]["latency_ms"]
    tasks = m["tasks"]
    pv = m["primary"]["view"]
    views = list(tasks["regression"].keys()) if "regression" in tasks else [pv]
    tail_min = cfg["metrics"]["tail_min"]
    rollout: list[tuple[str, str]] = []
    points: list[str] = []

    points.append(
        f"The tail is small but loud: {100 * eda['shares'].get('over_120_min', 0):.2f}% of "
        f"{eda['arrived']:,} arrived flights were over 2 h late (longest "
        f"{eda['max_delay'] / 60:.1f} h), yet flights {tail_min}+ min late carry "
        f"{100 * eda['tail_share_of_squared_error']:.0f}% of the squared error around the mean. "
        f"{eda['cancelled']:,} cancelled and {eda['diverted']:,} diverted flights have no arrival "
        f"delay and are left out of the targets, not imputed.")

    if "regression" in tasks:
        reg = tasks["regression"][pv]
        table = strategy_table(tasks, pv).set_index("candidate")
        best_mae = table["mae"].idxmin()
        best_tail = table["tail_mae"].idxmin()
        best_rmse = table["rmse"].idxmin()
        sel = reg["selected"]
        base = table.loc["baseline"]
        rollout.append(("Outlier strategies side by side (test months, " + pv + ")", (
            "Every strategy scored on the same test flights, in minutes. `tail_` columns are "
            f"flights {tail_min}+ min late; `tail_bias` is the mean of prediction minus truth "
            "there (negative: the model promises too little delay).\n\n"
            + markdown_table(table.reset_index()))))
        points.append(
            f"Outlier strategy is a choice of loss, and the run shows the trade: the lowest MAE "
            f"on all test flights is `{best_mae}` ({_fmt(table.loc[best_mae, 'mae'])} min, tail "
            f"MAE {_fmt(table.loc[best_mae, 'tail_mae'])}), the lowest RMSE is `{best_rmse}` "
            f"({_fmt(table.loc[best_rmse, 'rmse'])} min), and the best on the tail is "
            f"`{best_tail}` (tail MAE {_fmt(table.loc[best_tail, 'tail_mae'])} min, overall MAE "
            f"{_fmt(table.loc[best_tail, 'mae'])}). Filtering the tail out of training gives a "
            f"tail bias of {_fmt(table.loc['lgbm-filter_tail', 'tail_bias'])} min against "
            f"{_fmt(table.loc['lgbm-squared', 'tail_bias'])} for plain squared loss."
            if "lgbm-filter_tail" in table.index and "lgbm-squared" in table.index else
            f"Lowest MAE: `{best_mae}`; lowest tail MAE: `{best_tail}`; lowest RMSE: `{best_rmse}`.")
        points.append(
            f"Selected by time-ordered CV on {reg['gate']['metric'].upper()}: `{sel}`, test MAE "
            f"{_fmt(table.loc[sel, 'mae'])} min against {_fmt(base['mae'])} for the historical "
            f"mean per carrier, route and hour ({100 * reg['gate']['relative_improvement']:+.1f}%"
            f", gate {'passed' if reg['gate']['passed'] else 'failed'}); median absolute error "
            f"{_fmt(table.loc[sel, 'medae'])} min against {_fmt(base['medae'])}.")
    cls_lines = []
    if "delayed" in tasks:
        d = tasks["delayed"][pv]
        s, b = d["test"][d["selected"]], d["test"]["baseline"]
        cls_lines.append(
            f"Delayed {cfg['features']['delayed_min']}+ min ({pv}): `{d['selected']}` AUC "
            f"{s.get('auc', float('nan')):.3f} (baseline {b.get('auc', float('nan')):.3f}), log "
            f"loss {s['log_loss']:.4f} ({b['log_loss']:.4f}), Brier {s['brier']:.4f}, expected "
            f"calibration error {s['ece']:.4f}.")
    if "buckets" in tasks:
        bk = tasks["buckets"][pv]
        s = bk["test"][bk["selected"]]
        recalls = ", ".join(f"{k[7:]} {100 * v:.0f}%" for k, v in s.items()
                            if k.startswith("recall_"))
        cls_lines.append(
            f"Buckets ({pv}): `{bk['selected']}` log loss {s['log_loss']:.4f} (baseline "
            f"{bk['test']['baseline']['log_loss']:.4f}), recall per bucket: {recalls}. The rare "
            f"long buckets are almost never the most likely class: read them as probabilities, "
            f"not as argmax labels.")
    points += cls_lines
    if len(views) > 1 and "regression" in tasks:
        a, b = views[0], views[-1]
        ra = tasks["regression"][a]["test"][tasks["regression"][a]["selected"]]
        rb = tasks["regression"][b]["test"][tasks["regression"][b]["selected"]]
        extra = ""
        if "delayed" in tasks:
            da = tasks["delayed"][a]["test"][tasks["delayed"][a]["selected"]].get("auc", np.nan)
            db = tasks["delayed"][b]["test"][tasks["delayed"][b]["selected"]].get("auc", np.nan)
            extra = f"; delayed AUC {da:.3f} -> {db:.3f}"
        points.append(
            f"Information beats cleverness: moving from `{a}` to `{b}` (adds the origin weather "
            f"{cfg['features']['weather_lag_hours']} h before departure) changes MAE "
            f"{_fmt(ra['mae'])} -> {_fmt(rb['mae'])} min, tail MAE {_fmt(ra['tail_mae'])} -> "
            f"{_fmt(rb['tail_mae'])}{extra}. The departure delay itself is never a feature: a "
            f"guard refuses any view that lists it.")
    rec = []
    if "regression" in tasks:
        rec.append(
            f"- **Passenger app** (wants a typical, honest number): the regression model with "
            f"`{best_mae}` loss for the headline minutes (lowest MAE, "
            f"{_fmt(table.loc[best_mae, 'mae'])} min) together with the probability of a "
            f"{cfg['features']['delayed_min']}+ min delay from the classifier, because a mean "
            f"pulled up by 12-hour outliers overstates the delay for the typical traveller.")
        rec.append(
            f"- **Operations desk** (crews, gates, connections; the tail is the cost): "
            f"`{best_tail}` has the lowest tail MAE ({_fmt(table.loc[best_tail, 'tail_mae'])} "
            f"min) and the bucket probabilities flag flights likely to run 2 h+. Do not filter the "
            f"tail out of training for this user: it removes exactly the flights the desk is "
            f"paid to anticipate.")
    rollout.append(("Recommendation: which framing and strategy for which user", "\n".join(rec)))
    if cls_lines:
        rollout.append(("Classification framing", "\n\n".join(cls_lines)))
    rollout.append(("Monitoring plan", "\n".join([
        f"- Weekly MAE and tail MAE against the baseline on landed flights (today "
        f"{_fmt(m['test'].get('mae', float('nan')))} vs {_fmt(m['baseline'].get('mae', float('nan')))} "
        f"min); alert if the model loses its margin two weeks running.",
        f"- The share of flights over 2 h late (in this data "
        f"{100 * eda['shares'].get('over_120_min', 0):.2f}%) and the cancellation rate: a storm "
        f"season shifts both before the model notices.",
        "- Calibration of the delayed probability (expected calibration error per week) and the "
        "share of flights with missing weather or plane data (feeds break silently).",
        "- Latency of one prediction, p50 and p99 (this run's figures: timing.md).",
    ])))
    rollout.append(("Risks and rollback", "\n".join([
        f"- The test months are {', '.join(map(str, m['split']['test']['months']))}: one season. "
        "Retrain monthly and re-run the gate; keep the previous champion version registered.",
        "- Rollback: point the `champion` alias back at the previous version (`MlflowClient()."
        "set_registered_model_alias`); serving loads `models:/<name>@champion`, so no redeploy.",
        "- Cancelled and diverted flights are outside the model: the app must say so, not show "
        "a delay for a cancelled flight.",
    ])))
    timing = [f"Serving: one prediction from the model loaded back from MLflow takes "
              f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms on this machine."]
    return Story(rollout=rollout, talking_points=points, timing=timing)
