"""The Airbnb interview story: why the forest beat the linear model, which to ship, and how to
encode a many-level categorical, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import PLAIN, Story
from cases.lifecycle.eda import number
from cases.lifecycle.report import difference, gate_note, interval, plain_reference, versus


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a, e = measured["metrics"], measured["analysis"], measured["eda"]
    view = m["primary"]["view"]
    r = m["tasks"]["price"][view]
    table = {t["candidate"]: t for t in a["table"]}
    best = r["selected"]
    lin = table.get("linear-onehot")
    forest = min((t for k, t in table.items() if k.startswith("forest")),
                 key=lambda t: t["cv_rmse"], default=None)
    enc = {t["encoding"]: t for t in a["table"]
           if t["model"] == "lgbm" and t["candidate"] == f"lgbm-{t['encoding']}"}
    c, inter = a["linear_checks"], a["interaction"]
    rob = {x["model"]: x for x in a["robustness"]}
    sel_t = r["test"][best]
    points = [
        f"Data: {e['listings']:,} listings ({e['schema']} schema), cleaned by counted rules: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in e["removed"].items()) + ".",
    ]
    tree = table.get(a["best_tree"])
    if lin and tree and forest:
        cv = (f"CV RMSE of log price: `{a['best_tree']}` {tree['cv_rmse']:.4f}, the best forest "
              f"{forest['cv_rmse']:.4f}, `linear-onehot` {lin['cv_rmse']:.4f}.")
        word = versus(r, a["best_tree"], "linear-onehot", "rmse")
        test = (f"on test `{a['best_tree']}` {word} `linear-onehot` on RMSE"
                f"{difference(r, a['best_tree'], 'linear-onehot', 'rmse', 4)}" if word else "")
        sel_entry = ((measured.get("selection") or {}).get("tasks", {}).get("price") or {}).get(
            view) or {}
        cv_noise = "linear-onehot" in sel_entry.get("within_noise", [])
        if word == "is better than" and not cv_noise:
            points.append(
                f"Why the trees beat the linear model {test}. {cv} The price has interactions "
                f"and thresholds: the strongest LightGBM found is {inter['pair'][0]} x "
                f"{inter['pair'][1]}; the linear model's residuals by room type and "
                f"neighbourhood show the one slope it forces on all.")
        else:
            points.append(
                f"Trees against the linear model: {cv}" + (f" On test, {test[8:]}." if test else "")
                + (" On CV the linear model is within one SE of the best." if cv_noise else "")
                + f" The strongest interaction LightGBM found is {inter['pair'][0]} x "
                f"{inter['pair'][1]}; a forest wins when interactions and thresholds carry more "
                f"signal than the rows can pin down for it.")
    not_better = [x for x in a.get("against_linear") or []
                  if x.get("verdict") in ("worse", "within noise")
                  and not x["model"].startswith("linear")]
    if not_better:
        points.append(
            "The trees' limits, candidates whose test RMSE is not clearly below "
            "`linear-onehot`'s (RMSE, then the paired difference from it with its 95% "
            "interval over hosts): "
            + "; ".join(
                f"`{x['model']}` {x['rmse']:.4f}, {x['minus_linear']:+.4f} "
                f"[{x['lo']:+.4f}, {x['hi']:+.4f}]" for x in not_better)
            + f". One indicator per {cfg['features']['high_cardinality']} level starves a "
              f"forest's splits of an additive premium the linear model fits in one "
              f"coefficient each; trees win where interactions and thresholds carry the signal.")
    if a.get("plain_reference"):
        points.append(plain_text(r, measured["selection"]["tasks"]["price"][view],
                                 a["plain_reference"]))
    lv = a.get("many_levels") or {}
    if lv.get("column"):
        res = lv["results"]
        points.append(
            f"A categorical with thousands of levels, {lv['column']}: {lv['levels']:,} levels "
            f"in training, {100 * lv['unseen_share']:.1f}% of test listings on a level "
            f"training never saw. Test RMSE of log price with it encoded each way (change "
            f"from the same model without it, 95% interval over hosts): " + "; ".join(
                f"{k} {v['rmse']:.4f} ({v['vs_without']:+.4f} [{v['vs_without_lo']:+.4f}, "
                f"{v['vs_without_hi']:+.4f}])" for k, v in res.items() if "vs_without" in v)
            + ". Target encoding must be cross-fitted inside the training rows, or a listing's "
              "own price leaks into its level's value.")
    ind = a.get("independence") or {}
    if ind:
        lin_icc = ind["icc"].get("linear-onehot") or next(iter(ind["icc"].values()))
        cv = ind["linear_cv_rmse"]
        points.append(
            f"Independence, the linear assumption nobody checks: residuals of one host's "
            f"listings {'correlate' if (lin_icc['interval'][0] or 0) > 0 else 'show no clear correlation'} "
            f"(intra-class correlation {lin_icc['icc']:.3f} "
            f"[{lin_icc['interval'][0]:.3f}, {lin_icc['interval'][1]:.3f}] over "
            f"{lin_icc['hosts']:,} test hosts with several listings), which is why CV folds "
            f"and the test intervals hold whole hosts out. The linear model cannot memorise a "
            f"host, so splitting hosts {ind['cv_split_verdict']} (CV RMSE "
            f"{cv['hosts split']:.4f} against {cv['hosts held out']:.4f} with hosts held out, "
            f"{ind['cv_split_change_pct']:+.2f}%); a tree that can recognise a host from its "
            f"columns (years, response rate, listings count) is the model the grouping "
            f"protects.")
    champ = measured.get("champions", {}).get("price") or {}
    ship = champ.get("candidate", best) if champ.get("registered") else None
    points.append(
        (f"Which to ship: `{ship}`, the registered champion" if ship else
         f"Nothing to ship: `{best}` failed its gate, so it is not registered")
        + f" (test RMSE {sel_t['rmse']:.4f}{interval(r, best, 'rmse', 4)}, R² "
        f"{sel_t['r2']:.3f}, MAE ${sel_t['mae_dollars']:.0f} a night, against the "
        f"neighbourhood-and-room-type baseline's ${r['test']['baseline']['mae_dollars']:.0f}; "
        f"{gate_note(r)})"
        + (", with SHAP reasons for hosts; keep the linear model as the readable explanation "
           "and the fallback." if not best.startswith("linear") else
           ": its coefficients are the explanation hosts can read."))
    if enc:
        points.append(
            "Encoding the many-level neighbourhood, LightGBM on the same folds: "
            + ", ".join(f"{k} {v['cv_rmse']:.4f}" for k, v in enc.items())
            + ". Target encoding must be fitted inside the folds (cross-fitted even within the "
              "training rows) or the listing's own price leaks into its neighbourhood's value.")
    points.append(
        f"The linear model's assumptions, checked: residual skew {number(c['skew'], '.2f')} "
        f"and kurtosis {c['excess_kurtosis']:.2f}; Breusch-Pagan p = "
        f"{c['breusch_pagan_p']:.2g}; a nominal {100 * c['interval_level']:.0f}% interval "
        f"covers {c['interval_coverage_pct']:.1f}% of test listings; the largest VIF is "
        f"{max(c['vif'].values()):.1f}.")
    if rob:
        points.append(
            f"Robustness on the same folds, cost of "
            f"{100 * float(cfg['analysis']['outlier_share']):.0f}% outlier prices in training: "
            + ", ".join(f"{k} {v['outlier_cost_pct']:+.1f}%" for k, v in rob.items())
            + f"; of a junk {int(cfg['analysis']['junk_levels']):,}-level category: "
            + ", ".join(f"{k} {v['junk_cost_pct']:+.1f}%" for k, v in rob.items()) + ".")
    ex = a.get("extrapolation") or {}
    if ex:
        last = ex["prices"][-1]
        points.append(
            f"What linear keeps: readable coefficients, a fit in seconds (timing.md), and "
            f"extrapolation: for {last['guests']} guests (training max "
            f"{ex['max_guests_in_training']}) it says ${last['linear']:.0f}, `{a['best_tree']}` "
            f"${last[a['best_tree']]:.0f}.")
    rollout = [
        ("Ship", (
            (f"Host-facing price suggestion: the champion `{ship}`" if ship else
             f"Host-facing price suggestion, once a model passes its gate (`{best}` is not "
             f"registered)") + f" behind the listing editor, shown as a range "
            f"(the test MAE is ${sel_t['mae_dollars']:.0f}), with the top SHAP reasons "
            f"(\"entire home for {int(cfg['analysis']['extrapolate_guests'])} guests\", "
            f"\"neighbourhood\"). A/B test on hosts (not listings: hosts own several): "
            f"booking rate and revenue per available night, guardrail on cancellations.")),
        ("Monitoring", (
            "Seasonality: prices move with events and summer; compare the suggestion with "
            "booked prices by month and retrain monthly. New neighbourhoods: an unseen level "
            "falls back to the global mean (target encoding) or to 'other' (one-hot); track the "
            f"share of listings in levels with fewer than {int(cfg['eda']['rare_level_listings'])} "
            "training listings. Drift: the "
            "distribution of room types, capacity and the amenity vocabulary (Inside Airbnb "
            "renames amenities between years).")),
    ]
    fits = measured["timing"]["analysis"].get("timing", {})
    timing = ["Fit time of each model on the training listings: " + ", ".join(
        f"`{k}` {v['fit_s']:.2f} s" for k, v in fits.items() if "fit_s" in v) + "."] if fits else []
    return Story(rollout=rollout, talking_points=points, timing=timing)


PLAIN_READS = ("LightGBM with the library's defaults on the file's own columns, no word "
               "indicators, no neighbour prices")


def plain_text(entry: Mapping, selection: Mapping, p: Mapping) -> str:
    """The plain reference's sentence (`report.plain_reference`) and the CV gap to the best
    candidate fold by fold, as selection states it; `p` is the analysis' `plain_reference`."""
    if not p:
        return "No plain reference in this run (`case.train.references` has no `plain`)."
    cv = {n: c["cv"]["rmse"]["mean"] for n, c in selection["candidates"].items()}
    gap = p["cv"]["plain_vs_best"]
    return (plain_reference(entry, "rmse", "RMSE of log price", PLAIN_READS, cv, 4)
            + f" On CV, fold by fold, `{PLAIN}` − best `{p['best_cv']}` "
              f"{gap['difference']:+.4f} (standard error {gap['standard_error']:.4f}).")
