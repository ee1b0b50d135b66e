"""The Airbnb interview story: why the forest beat the linear model, which to ship, and how to
encode a many-level categorical, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Story


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a, e = measured["metrics"], measured["analysis"], measured["eda"]
    view = m["primary"]["view"]
    r = m["tasks"]["price"][view]
    table = {f"{t['model']}-{t['encoding']}": t for t in a["table"]}
    best = r["selected"]
    lin = table.get("linear-onehot")
    forest = min((t for k, t in table.items() if k.startswith("forest")),
                 key=lambda t: t["cv_rmse"], default=None)
    enc = {t["encoding"]: t for t in a["table"] if t["model"] == "lgbm"}
    c, inter = a["linear_checks"], a["interaction"]
    rob = {x["model"]: x for x in a["robustness"]}
    sel_t = r["test"][best]
    points = [
        f"Data: {e['listings']:,} listings ({e['schema']} schema), cleaned by counted rules: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in e["removed"].items()) + ".",
    ]
    tree = table.get(a["best_tree"])
    if lin and tree and forest:
        if tree["cv_rmse"] < lin["cv_rmse"]:
            points.append(
                f"Why the trees beat the linear model: CV RMSE of log price `{a['best_tree']}` "
                f"{tree['cv_rmse']:.4f}, the best forest {forest['cv_rmse']:.4f}, linear "
                f"{lin['cv_rmse']:.4f}. The price has interactions and thresholds: the strongest "
                f"LightGBM found is {inter['pair'][0]} x {inter['pair'][1]}; the linear model's "
                f"residuals by room type and neighbourhood show the one slope it forces on all.")
        else:
            points.append(
                f"Here the linear model held its own: CV RMSE {lin['cv_rmse']:.4f} against "
                f"`{a['best_tree']}` {tree['cv_rmse']:.4f} and the best forest "
                f"{forest['cv_rmse']:.4f}. A forest wins when interactions and thresholds carry "
                f"more signal than the rows can pin down for it; with this data they do not.")
    points.append(
        f"Which to ship: `{best}` (test RMSE {sel_t['rmse']:.4f}, R² {sel_t['r2']:.3f}, MAE "
        f"${sel_t['mae_dollars']:.0f} a night, against the neighbourhood-and-room-type "
        f"baseline's ${r['test']['baseline']['mae_dollars']:.0f}) for the price suggestion"
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
        f"The linear model's assumptions, checked: residual skew {c['skew']:.2f} and kurtosis "
        f"{c['excess_kurtosis']:.2f}; Breusch-Pagan p = {c['breusch_pagan_p']:.2g}; a nominal "
        f"95% interval covers {c['interval_coverage_pct']:.1f}% of test listings; the largest "
        f"VIF is {max(c['vif'].values()):.1f}.")
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
            f"Host-facing price suggestion: `{best}` behind the listing editor, shown as a range "
            f"(the test MAE is ${sel_t['mae_dollars']:.0f}), with the top SHAP reasons "
            f"(\"entire home for {int(cfg['analysis']['extrapolate_guests'])} guests\", "
            f"\"neighbourhood\"). A/B test on hosts (not listings: hosts own several): "
            f"booking rate and revenue per available night, guardrail on cancellations.")),
        ("Monitoring", (
            "Seasonality: prices move with events and summer; compare the suggestion with "
            "booked prices by month and retrain monthly. New neighbourhoods: an unseen level "
            "falls back to the global mean (target encoding) or to 'other' (one-hot); track the "
            "share of listings in levels with fewer than 10 training listings. Drift: the "
            "distribution of room types, capacity and the amenity vocabulary (Inside Airbnb "
            "renames amenities between years).")),
    ]
    fits = measured["timing"]["analysis"].get("timing", {})
    timing = ["Fit time of each model on the training listings: " + ", ".join(
        f"`{k}` {v['fit_s']:.2f} s" for k, v in fits.items() if "fit_s" in v) + "."] if fits else []
    return Story(rollout=rollout, talking_points=points, timing=timing)
