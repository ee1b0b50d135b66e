"""The flights interview story, written from the run's own numbers: which outlier strategy costs
what, which framing serves which user, what the weather and the delays seen two hours out buy,
and how the selected model stands against a plain LightGBM on the same split."""

from __future__ import annotations

from collections.abc import Mapping

from cases.flights.evaluation import strategy_table
from cases.lifecycle.contract import Story
from cases.lifecycle.eda import markdown_table
from cases.lifecycle.report import (
    difference,
    gate_note,
    interval,
    plain_reference,
    selection_note,
    signed_bounds,
    versus,
)


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
               f"{_fmt(table.loc['lgbm-squared', 'tail_bias'])} for squared loss on every flight."
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
    plain = _plain(tasks, views)
    if plain:
        points.append(plain)
        rollout.append(("The plain reference", plain))
    an = measured.get("analysis") or {}
    if len(views) > 1 and an.get("information"):
        points.append(_information(an["information"], views[0], views[-1], cfg))
    if an.get("tail"):
        points.append(_tail(an["tail"]))
    if an.get("buckets"):
        points.append(_buckets(an["buckets"], cfg))
    sv = an.get("selection_vs_test") or {}
    if sv.get("test_better"):
        points.append(
            "Selection is on CV, and test is not for choosing: "
            + "; ".join(f"`{b['candidate']}` has test {sv['metric'].upper()} {_fmt(b['test'])} "
                        f"against {_fmt(sv['selected_test'])} for the selected `{sv['selected']}`"
                        f" (paired difference {b['diff']:+.2f} min, interval "
                        f"{signed_bounds(b['lo'], b['hi'], 2)}) although its CV mean was "
                        f"{_fmt(b['cv_mean'])} against {_fmt(sv['selected_cv_mean'])}"
                        for b in sv["test_better"])
            + ". Switching on the test months would make the reported figure optimistic: note "
              "it, and settle it with the next season's selection.")
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
            f"run {tail_h} h+" + _desk(an.get("buckets"), tail_h)
            + ". Do not filter the tail out of training for this user: it removes exactly the "
              "flights the desk is paid to anticipate.")
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
        "share of flights with missing weather, plane data or observed departures at the "
        "origin (feeds break silently; an empty departures feed reads as a quiet airport).",
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


def _plain(tasks: Mapping, views: list[str]) -> str:
    """The selected model against the plain reference (`lgbm-plain`) on the same rows and split,
    per task and view, from the run's metrics (`report.plain_reference`)."""
    what = ("LightGBM with the library's defaults on the tables' own columns, the schedule, "
            "plane and weather, without the delays observed by the prediction time")
    return " ".join(s for task, metric, label in (("regression", "mae", "MAE (min)"),
                                                  ("delayed", "auc", "AUC"))
                    for view in views
                    if (s := plain_reference((tasks.get(task) or {}).get(view) or {}, metric,
                                             f"{task} ({view}), {label}", what, name=label)))


def _sel_entry(measured: Mapping, task: str, view: str) -> Mapping | None:
    return ((measured.get("selection") or {}).get("tasks", {}).get(task) or {}).get(view)


def _information(info: Mapping, a: str, b: str, cfg: Mapping) -> str:
    """What the later view's information adds, the model held fixed: each task's candidate
    selected on the later view, scored on both views, with the paired interval (analysis)."""
    labels = {"mae": ("MAE", " min", _fmt), "tail_mae": ("tail MAE", " min", _fmt),
              "auc": ("AUC", "", lambda x: f"{x:.3f}"),
              "log_loss": ("log loss", "", lambda x: f"{x:.4f}")}
    parts = []
    for task, metrics in (("regression", ("mae", "tail_mae")), ("delayed", ("auc",)),
                          ("buckets", ("log_loss",))):
        t = info.get(task)
        if not t:
            continue
        for metric in metrics:
            x = t["paired"].get(metric)
            if not x:
                continue
            label, unit, fmt = labels[metric]
            noise = "within noise" if x["within_noise"] else "outside noise"
            parts.append(f"{task} `{t['candidate']}` {label} {fmt(t[a][metric])} -> "
                         f"{fmt(t[b][metric])}{unit} (difference interval [{fmt(x['lo'])}, "
                         f"{fmt(x['hi'])}], {noise})")
    return (f"What information adds, the model held fixed (the same candidate refitted on each "
            f"view, the same test flights and day resamples): from `{a}` to `{b}` features (the "
            f"origin weather and the delays observed there {cfg['features']['lead_hours']:g} h before "
            f"departure), "
            + "; ".join(parts) + ". The departure delay itself is never a feature: a guard "
            "refuses any view that lists it.")


def _tail(t: Mapping) -> str:
    """No candidate predicts the tail, and what moves it on the same split (analysis)."""
    sel = next(m for m in t["moves"] if m["model"] == t["selected"])
    moved = [m for m in t["moves"] if m["model"] != t["selected"]]
    return (f"No candidate predicts the tail: on the {t['tail_flights']:,} test flights "
            f"{t['tail_min']:.0f}+ min late the best tail MAE is {_fmt(t['best_tail_mae'])} min "
            f"and every candidate's tail bias is minus its tail MAE to at least "
            f"{100 * t['min_under_share_bound']:.0f}% (the tail is predicted too early, flight "
            f"after flight); `{t['selected']}` has tail MAE "
            f"{_fmt(sel['tail_mae'])}, bias {_fmt(sel['tail_bias'])} min. What moves it on the "
            f"same split: " + "; ".join(
                f"{m['model']} tail MAE {_fmt(m['tail_mae'])} (paired difference "
                f"{m['tail_mae_diff']:+.1f} min, [{m['tail_mae_diff_lo']:+.1f}, "
                f"{m['tail_mae_diff_hi']:+.1f}]) at an MAE of {_fmt(m['mae'])} "
                f"({m['mae_diff']:+.1f} [{m['mae_diff_lo']:+.1f}, {m['mae_diff_hi']:+.1f}])"
                for m in moved) + ". The tail is bought with error on every other flight.")


def _buckets(bk: Mapping, cfg: Mapping) -> str:
    """P(2 h+) from the bucket probabilities: ranking, calibration (analysis)."""
    lg = bk["long"]
    best = max(bk["per_bucket"], key=lambda r: r["lift"])
    return (f"The buckets as probabilities, not labels: P({cfg['metrics']['tail_min'] / 60:g} h "
            f"or more late) "
            f"(the sum of {', '.join(bk['long_buckets'])}) has PR-AUC "
            f"{lg['average_precision']['value']:.3f} against a base rate of "
            f"{100 * bk['long_share']:.2f}%, AUC {lg['auc']['value']:.3f}, calibration error "
            f"{lg['ece']['value']:.4f} (mean P {100 * bk['mean_predicted']:.2f}%); the bucket "
            f"with the most lift over its base rate is {best['bucket']} (PR-AUC "
            f"{best['pr_auc']:.3f} against {100 * best['base_rate']:.2f}%).")


def _desk(bk: Mapping | None, tail_h: str) -> str:
    """What the ops desk gets from P(2 h+) at its capacity (analysis)."""
    if not bk:
        return ""
    caps = [r for r in bk["alerts"] if r["rule"].startswith("capacity")]
    if not caps:
        return ""
    return (": with the threshold set by its capacity on the last training month's scores, "
            + "; ".join(f"{r['flagged_per_day']:.1f} flights flagged a day on the test months "
                        f"(threshold {r['threshold']:.3f}) catch {100 * r['recall']:.0f}% of the "
                        f"{tail_h} h+ flights, {100 * r['precision']:.0f}% of alerts right"
                        for r in caps))


def _guardrails(entry: Mapping) -> str:
    """The gate's guardrails (e.g. the tail must not be worse than the baseline), in words."""
    out = []
    for g in entry["gate"].get("guardrails") or []:
        lo, hi = g["diff_interval"]
        state = ("breached: " + ("the gate fails" if g["action"] == "fail" else "flagged")
                 if g["breached"] else "not breached")
        out.append(f"`{entry['selected']}` {g['metric']} {_fmt(g['model'])} against the "
                   f"baseline's {_fmt(g['baseline'])}, difference interval "
                   f"{signed_bounds(lo, hi, 1)} with a tolerance of {g['tolerance']:g}: {state}.")
    return " ".join(out)
