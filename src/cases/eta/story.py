"""The ETA interview story: the answer to "is one million enough", with the run's numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import PLAIN, Story
from cases.lifecycle.report import gate_note, interval, plain_reference


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a, e = measured["metrics"], measured["analysis"], measured["eda"]
    view = m["primary"]["view"]
    r = m["tasks"]["duration"][view]
    sel, base = r["test"][r["selected"]], r["test"]["baseline"]
    s = a["plateau"][a["selected"]]
    f, sv, routes = a["features"], measured["timing"]["analysis"]["serving"], a["routes"]
    if s["stops_paying_at"]:
        answer = (f"Yes, for this feature set: `{a['selected']}` stops gaining "
                  f"{float(cfg['analysis']['plateau_gain_pct']):.0f}% per doubling at about "
                  f"{s['stops_paying_at']:,} trips; validation RMSLE {s['val_rmsle_largest']:.4f} "
                  f"with {s['largest']:,}.")
    else:
        answer = (f"Not yet: `{a['selected']}` still gains more than "
                  f"{float(cfg['analysis']['plateau_gain_pct']):.0f}% per doubling at "
                  f"{s['largest']:,} trips (validation RMSLE {s['val_rmsle_largest']:.4f}); more "
                  f"trips would still pay.")
    points = [
        f"Is one million enough? {answer} Gain per doubling: "
        + ", ".join(f"{g:.1f}%" for g in s["gain_per_doubling_pct"]) + ".",
        f"{f['inputs']} inputs against {f['training_trips']:,} training trips "
        f"({f['trips_per_input']:,.0f} per input): "
        + ("variance is not the problem; what is left is noise the inputs cannot see (traffic "
           "right now, the route taken, waits)." if s["stops_paying_at"] else
           "plenty of trips per input, yet the curve still falls: the tree model keeps finding "
           "finer structure (places, hours, pairs) as trips are added."),
        f"Test weeks: `{r['selected']}` MAE {sel['mae']:.0f} s, RMSLE {sel['rmsle']:.4f}"
        f"{interval(r, r['selected'], 'rmsle', 4)}, "
        f"APE p50 {sel['ape_p50']:.1f}% / p90 {sel['ape_p90']:.1f}%, against the "
        + ("zone pair's median duration" if "gc_km" in f["unavailable"]
           else "median speed by hour times distance")
        + f" (baseline): MAE {base['mae']:.0f} s, RMSLE {base['rmsle']:.4f}, APE p50 "
        f"{base['ape_p50']:.1f}% / p90 {base['ape_p90']:.1f}% ({gate_note(r)} on RMSLE).",
        *plain_sentences(r, measured["selection"]["tasks"]["duration"][view], cfg),
        f"Cleaning removed {e['removed_trips']:,} of {e['raw_trips']:,} trips: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in e["removed"].items()) + ".",
    ]
    floor = a["curve"].get("floor_val_rmsle")
    last = [c for c in a.get("curve_summary", []) if c["model"] == a["selected"]][-1:]
    if floor is not None and last and last[0].get("gap_closed_per_doubling_pct") is not None:
        c = last[0]
        points.append(
            f"The floor: the best RMSLE any model could reach on the validation trips (the "
            f"simulator's noise-free durations) is {floor:.4f}; `{a['selected']}` with "
            f"{c['trips']:,} trips is {c['gap_to_floor']:.4f} above it, and the last step "
            f"closed {c['gap_closed_per_doubling_pct']:.1f}% of the remaining gap per doubling. "
            "Enough data means that gap stops closing; what is left above the floor is then "
            "the model and its features, not the number of trips.")
    by_source = a.get("importance", {}).get("by_source", [])
    if by_source:
        points.append(
            f"What the model uses (RMSLE rise when a source's inputs are shuffled, "
            f"`{a['selected']}` on test trips): "
            + ", ".join(f"{g['source']} {g['rmsle_rise']:+.4f}" for g in by_source) + ".")
    if routes.get("rmsle_rare") is not None and routes.get("rmsle_common") is not None:
        worse = routes["rmsle_rare"] > routes["rmsle_common"]
        points.append(
            f"What would change the answer: rare routes ({routes['test_share_rare_pct']:.1f}% of "
            f"test trips ride a pair seen under {routes['rare_threshold']} times) score RMSLE "
            f"{routes['rmsle_rare']:.4f} against {routes['rmsle_common']:.4f} on common pairs"
            + ("; a larger city or finer zones means more rare pairs, and more data needed. "
               if worse else
               ": no worse here, because the pair statistic is shrunk toward the pickup zone and "
               "distance carries the rest; a larger city with finer zones would test that. ")
            + "New features (live traffic, the planned route) would lift the plateau more than "
              "more trips.")
    timing = [
        f"Serving: p50 {sv['p50_ms']:.2f} ms, p99 {sv['p99_ms']:.2f} ms for one trip, model "
        f"{sv['model_mb']:.2f} MB: {'inside' if sv['fits'] else 'outside'} the "
        f"{sv['budget_ms']:.0f} ms model budget."]
    rep = cfg["report"]
    rollout = [
        ("Rollout plan", "\n".join([
            f"1. Shadow mode for {int(rep['shadow_weeks'])} weeks: the model predicts every "
            f"request next to the current ETA, riders still see the old one; compare MAE, RMSLE "
            f"and APE p90 by hour and zone.",
            f"2. Canary {100 * float(rep['canary_share']):.0f}% of requests with a kill switch, "
            f"guardrails: p99 latency under {float(cfg['analysis']['budget_ms']):.0f} ms (this "
            f"run's p99: timing.md), ride cancellations after the ETA is shown, complaints.",
            "3. Ramp when the canary holds for a week of rush hours."])),
        ("Monitoring", (
            "Daily: APE p50/p90 on completed trips by hour and by pickup zone; the share of "
            "trips on rare or unseen zone pairs; the cleaning-rule counts (a jump in clock "
            "errors or zero-distance trips is a data bug, not traffic); the median speed by "
            "hour against the training weeks (a new road, a closed bridge, the season). "
            "Retrain weekly on a rolling window; the learning curve says the window does not "
            "need to be longer than the plateau.")),
    ]
    return Story(rollout=rollout, talking_points=points, timing=timing)


def plain_sentences(r: Mapping, sel_entry: Mapping, cfg: Mapping) -> list[str]:
    """The selected model against the plain reference (`lgbm-plain`: LightGBM with the library's
    defaults on the raw places and times) on the same rows and split (`report.plain_reference`)."""
    if PLAIN not in sel_entry["candidates"]:
        return []
    cv = {n: c["cv"]["rmsle"]["mean"] for n, c in sel_entry["candidates"].items()
          if "rmsle" in c["cv"]}
    cols = [c for c in cfg["train"]["plain_columns"]
            if c in sel_entry["candidates"][PLAIN]["params"].get("columns", "").split(",")]
    what = (f"LightGBM with the library's default settings on the raw {', '.join(cols)}; no "
            f"engineered feature, no tuning")
    return [plain_reference(r, "rmsle", "RMSLE", what, cv, 4)]
