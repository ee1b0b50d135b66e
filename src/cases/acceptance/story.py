"""The acceptance interview story, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Story
from cases.lifecycle.report import difference, gate_note, versus


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a = measured["metrics"], measured["analysis"]
    r = m["tasks"]["accept"][m["primary"]["view"]]
    rows = ", ".join(
        f"{name} AUC {t.get('auc', float('nan')):.3f} / log loss {t['log_loss']:.4f} / Brier "
        f"{t['brier']:.4f} / ECE {t['ece']:.4f}" for name, t in r["test"].items())
    s = measured["timing"]["analysis"]["serving"]
    worst = max(a["coefficients"], key=lambda c: abs(c["error"]))
    sel = r["selected"]
    noise = []
    for name in r["test"]:
        word = versus(r, name, sel, "log_loss") if name not in (sel, "baseline") else ""
        if word:
            noise.append(f"`{name}` {word} `{sel}` on log loss"
                         f"{difference(r, name, sel, 'log_loss', 4)}")
    pc, lift_km = a["pickup_curve"], a.get("trip_lift_km")
    lift = a["trip_5_to_25km_lift"]
    points = [
        "There is no public data of driver decisions: the case runs on a simulator with a known "
        "rule, which is what lets us grade the model against the truth.",
        f"Test week, every model on the same offers: {rows}. Selected by CV split by time and "
        f"by driver: `{sel}`; gate against the driver's recent acceptance rate: "
        f"{gate_note(r)} on log loss."
        + (" " + "; ".join(noise) + "." if noise else ""),
        f"The logistic model recovers the true linear coefficients only roughly (largest miss: "
        f"{worst['input']} {worst['recovered']:.3f} against {worst['true']:.3f}): the driver's "
        f"latent taste and two non-linear terms are outside its form.",
        f"What the trees found: past {pc['far_km']:g} km of pickup distance the logistic curve "
        f"is off the truth by {pc['far_gap_logistic']:.3f}, LightGBM by "
        f"{pc['far_gap_lgbm']:.3f}; long trips"
        + (f" ({lift_km[0]:g} km to {lift_km[1]:g} km)" if lift_km else "")
        + f" at night lift LightGBM's acceptance by "
        f"{lift.get('lgbm_night', float('nan')):+.3f} against "
        f"{lift.get('lgbm_day', float('nan')):+.3f} by day.",
    ]
    trade = a.get("tradeoffs") or []
    if trade:
        points.append(
            "The trade-offs a dispatcher weighs (test week; fit time, latency and size in "
            "timing.md): " + "; ".join(
                f"`{t['model']}` log loss {t['log_loss']:.4f}, AUC {t['auc']:.3f}, ECE "
                f"{t['ece']:.4f}, readable as {t['readable']}" for t in trade) + ".")
    timing = [
        f"Serving: {s['drivers']} drivers per request scored by the model loaded from MLflow in "
        f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms: "
        f"{'inside' if s['fits'] else 'outside'} the {s['budget_ms']:.0f} ms budget.",
    ]
    tt = measured["timing"]["analysis"].get("tradeoffs") or {}
    for name, t in (tt.get("models") or {}).items():
        timing.append(f"`{name}`: fit {t['fit_s']:.1f} s on the training offers; "
                      f"{tt['drivers']} drivers scored in p99 {t['p99_ms']:.1f} ms "
                      f"(p50 {t['p50_ms']:.1f} ms); {t['size_kb']:,.0f} KB on disk.")
    sb = a.get("switchback")
    test_words = (
        "Randomise by market and time window, not per request: requests share one pool of "
        "drivers, so a per-request split lets the arms take drivers from each other. A "
        f"switchback gives every request of a market the same policy for "
        f"{sb['window_hours']} h, then tosses again; window means are compared after the "
        f"hour of day. From this test week's variance one market-week detects "
        f"{sb['mde_switchback_pp']:.2f} points of acceptance ({sb['windows']} windows; "
        f"{sb['mde_per_request_pp']:.2f} if its offers were independent requests, a figure "
        f"the shared drivers bias); {sb['target_lift_pp']:.1f} point needs "
        f"{sb['market_weeks_for_target']:.1f} market-weeks. " if sb else
        "Randomise by market and time window (a switchback), not per request: requests share "
        "one pool of drivers. ")
    rollout = [
        ("Online test", (
            test_words + "Metric to move: the share of requests accepted by the first driver "
            "asked; secondary: time to pickup and requests with no driver found. "
            "Guardrails: rider cancellation rate, driver earnings per online hour, the p99 of "
            f"dispatch latency (model budget {float(cfg['analysis']['budget_ms']):.0f} ms; "
            "this run's p99 is in timing.md).")),
        ("Monitoring", (
            f"Calibration drift: weekly expected calibration error and Brier on answered offers "
            f"(today ECE {r['test'][r['selected']]['ece']:.4f}); the acceptance rate by hour and "
            f"surge band; the share of offers with no recent-acceptance history (new drivers).")),
    ]
    return Story(rollout=rollout, talking_points=points, timing=timing)
