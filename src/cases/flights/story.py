"""The flights interview story, written from the run's own numbers: which outlier strategy costs
what, which framing serves which user, and what weather two hours out buys."""

from __future__ import annotations

from collections.abc import Mapping

from cases.flights.evaluation import strategy_table
from cases.lifecycle.contract import Story
from cases.lifecycle.eda import markdown_table
from cases.lifecycle.report import difference, gate_note, interval, selection_note, versus


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
        f"The tail is small but loud: {100 * eda['tail_share']:.2f}% of {eda['arrived']:,} "
        f"arrived flights were {eda['tail_min']}+ min late (longest "
        f"{eda['max_delay'] / 60:.1f} h), yet they carry "
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
        def vs_sel(name: str, metric: str) -> str:
            word = versus(reg, name, sel, metric)
            return ("" if name == sel or not word else
                    f", and {word} the selected `{sel}`{difference(reg, name, sel, metric, 2)}")

        points.append(
            f"Outlier strategy is a choice of loss, and the run shows the trade: the lowest MAE "
            f"on all test flights is `{best_mae}` ({_fmt(table.loc[best_mae, 'mae'])} min, tail "
            f"MAE {_fmt(table.loc[best_mae, 'tail_mae'])}{vs_sel(best_mae, 'mae')}); the lowest "
            f"RMSE is `{best_rmse}` ({_fmt(table.loc[best_rmse, 'rmse'])} min"
            f"{vs_sel(best_rmse, 'rmse')}); the lowest tail MAE is `{best_tail}` "
            f"({_fmt(table.loc[best_tail, 'tail_mae'])} min, overall MAE "
            f"{_fmt(table.loc[best_tail, 'mae'])}{vs_sel(best_tail, 'tail_mae')})."
            + (f" Filtering the tail out of training gives a tail bias of "
               f"{_fmt(table.loc['lgbm-filter_tail', 'tail_bias'])} min against "
               f"{_fmt(table.loc['lgbm-squared', 'tail_bias'])} for plain squared loss."
               if "lgbm-filter_tail" in table.index and "lgbm-squared" in table.index else ""))
        note = selection_note(_sel_entry(measured, "regression", pv))
        points.append(
            f"Selected by time-ordered CV on {reg['gate']['metric'].upper()}"
            + (f" ({note})" if note else "") + f": `{sel}`, test MAE "
            f"{_fmt(table.loc[sel, 'mae'])} min{interval(reg, sel, 'mae', 1)} against "
            f"{_fmt(base['mae'])} for the historical mean per carrier, route and hour "
            f"({gate_note(reg)}); median absolute error {_fmt(table.loc[sel, 'medae'])} min "
            f"against {_fmt(base['medae'])}.")
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
        points.append(_information(tasks, views[0], views[-1], cfg))
    rec = []
    if "regression" in tasks:
        champ = measured.get("champions", {}).get("regression")
        tail_h = f"{tail_min / 60:g}"
        if champ and champ["registered"]:
            ship = (f"ship the registered champion `{champ['candidate']}` ({champ['view']} "
                    f"features) for the headline minutes")
        else:
            ship = ("no regression model is registered (its gate failed), so show the "
                    "historical mean for the headline minutes")
        word = versus(reg, best_mae, sel, "mae")
        alt = ("" if best_mae == sel else
               f"; `{best_mae}` has the lowest test MAE ({_fmt(table.loc[best_mae, 'mae'])} "
               f"min" + (f") and {word} `{sel}`{difference(reg, best_mae, sel, 'mae', 2)}"
                         if word else ", no paired interval to judge the gap by)")
               + ": a reason to compare, not to switch without a rerun")
        rec.append(
            f"- **Passenger app** (wants a typical, honest number): {ship}{alt}; together with "
            f"the probability of a {cfg['features']['delayed_min']}+ min delay from the "
            f"classifier, because a mean pulled up by the longest delays (up to "
            f"{eda['max_delay'] / 60:.1f} h) overstates the delay for the typical traveller.")
        rec.append(
            f"- **Operations desk** (crews, gates, connections; the tail is the cost): "
            f"`{best_tail}` has the lowest tail MAE ({_fmt(table.loc[best_tail, 'tail_mae'])} "
            f"min" + ("" if best_tail == sel or not versus(reg, best_tail, sel, "tail_mae") else
                      f"; it {versus(reg, best_tail, sel, 'tail_mae')} `{sel}` on the "
                      f"tail{difference(reg, best_tail, sel, 'tail_mae', 1)}")
            + f"), a candidate for a second, tail-focused model (not registered: the registry "
            f"holds one champion per task); the bucket probabilities flag flights likely to "
            f"run {tail_h} h+. Do not filter the tail out of training for this user: it "
            f"removes exactly the flights the desk is paid to anticipate.")
        guard = _guardrails(reg)
        if guard:
            rec.append(f"- **Guardrail** on the tail: {guard}")
    rollout.append(("Recommendation: which framing and strategy for which user", "\n".join(rec)))
    if cls_lines:
        rollout.append(("Classification framing", "\n\n".join(cls_lines)))
    rollout.append(("Monitoring plan", "\n".join([
        f"- Weekly MAE and tail MAE against the baseline on landed flights (today "
        f"{_fmt(m['test'].get('mae', float('nan')))} vs {_fmt(m['baseline'].get('mae', float('nan')))} "
        f"min); alert if the model loses its margin two weeks running.",
        f"- The share of flights {eda['tail_min']}+ min late (in this data "
        f"{100 * eda['tail_share']:.2f}%) and the cancellation rate: a storm "
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


def _sel_entry(measured: Mapping, task: str, view: str) -> Mapping | None:
    return ((measured.get("selection") or {}).get("tasks", {}).get(task) or {}).get(view)


def _information(tasks: Mapping, a: str, b: str, cfg: Mapping) -> str:
    """What the later view's information adds, like with like: the same candidate (the one
    selected on the later view) scored on both views."""
    parts = []
    for task, metric, unit in (("regression", "mae", " min"), ("regression", "tail_mae", ""),
                               ("delayed", "auc", "")):
        if task not in tasks or a not in tasks[task] or b not in tasks[task]:
            continue
        name = tasks[task][b]["selected"]
        ta, tb = tasks[task][a]["test"].get(name, {}), tasks[task][b]["test"][name]
        if metric in ta and metric in tb:
            fmt = (lambda x: f"{x:.3f}") if metric == "auc" else _fmt
            label = {"mae": "MAE", "tail_mae": "tail MAE", "auc": "delayed AUC"}[metric]
            parts.append(f"`{name}` {label} {fmt(ta[metric])} -> {fmt(tb[metric])}{unit}")
    return (f"What information adds, each model against itself: from `{a}` to `{b}` features "
            f"(the origin weather {cfg['features']['weather_lag_hours']} h before departure), "
            + "; ".join(parts) + ". The departure delay itself is never a feature: a guard "
            "refuses any view that lists it.")


def _guardrails(entry: Mapping) -> str:
    """The gate's guardrails (e.g. the tail must not be worse than the baseline), in words."""
    out = []
    for g in entry["gate"].get("guardrails") or []:
        lo, hi = g["diff_interval"]
        state = ("breached: " + ("the gate fails" if g["action"] == "fail" else "flagged")
                 if g["breached"] else "not breached")
        out.append(f"`{g['model']}` {g['metric']} against the baseline's, difference interval "
                   f"[{lo:+.1f}, {hi:+.1f}] with a tolerance of {g['tolerance']:g}: {state}.")
    return " ".join(out)
