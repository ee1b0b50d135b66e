"""What the simulator's truth lets us check: the logistic model's coefficients against the true
ones, what the trees found that the linear model missed, and serving inside the budget."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cases.acceptance.data import true_logit
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table
from cases.lifecycle.evaluate import latency_ms, partial_dependence
from cases.lifecycle.selection import predict_for


def recovered_coefficients(logistic, cols: list[str]) -> dict[str, float]:
    """The logistic pipeline's coefficients on the inputs' own scale (per km, per dollar...)."""
    scale = logistic["pre"].named_transformers_["num"]["scale"].scale_
    coef = logistic["model"].coef_[0][: len(cols)] / scale
    return dict(zip(cols, map(float, coef)))


def analyze(ctx: AnalysisContext) -> EdaResult:
    acfg, w = ctx.cfg["analysis"], ctx.cfg["data"]["world"]
    view = ctx.cfg["primary"]["view"]
    cols = list(ctx.meta["views"][view])
    test = ctx.test
    logistic = ctx.model("accept", view, "logistic")
    lgbm = ctx.model("accept", view, "lgbm")
    rec = recovered_coefficients(logistic, cols)
    coef_rows = [{"input": k, "true": float(v), "recovered": rec.get(k, float("nan")),
                  "error": rec.get(k, float("nan")) - float(v)} for k, v in w["coef"].items()]
    coef_table = pd.DataFrame(coef_rows)
    facts: dict = {"coefficients": coef_rows,
                   "recent_acceptance_rate_coef": rec.get("recent_acceptance_rate")}
    # what the trees found: far pickups (a squared penalty past 4 km) and long trips at night
    sample = test.sample(min(3000, len(test)), random_state=ctx.seed)
    grid = np.linspace(0.5, 10, 20)

    def proba(m):
        return lambda X: predict_for("binary", m, X[cols])

    truth = partial_dependence(lambda X: 1 / (1 + np.exp(-true_logit(X, w))), sample, "pickup_km",
                               grid)
    pd_lin = partial_dependence(proba(logistic), sample, "pickup_km", grid)
    pd_gbm = partial_dependence(proba(lgbm), sample, "pickup_km", grid)
    fig, ax = figure("Acceptance against distance to pickup", "pickup distance (km)",
                     "average acceptance probability")
    ax.plot(grid, truth, "k--", label="true rule (no driver taste)")
    ax.plot(grid, pd_lin, label="logistic")
    ax.plot(grid, pd_gbm, label="LightGBM")
    ax.legend(fontsize=8)
    trip_km = np.array([float(x) for x in acfg["trip_lift_km"]])
    night = sample[sample["hour"] < 5]
    day = sample[sample["hour"] >= 5]
    lift = {}
    for name, m in (("logistic", logistic), ("lgbm", lgbm)):
        for label, rows in (("night", night), ("day", day)):
            if len(rows):
                v = partial_dependence(proba(m), rows, "trip_km", trip_km)
                lift[f"{name}_{label}"] = float(v[1] - v[0])
    far_km = float(acfg["far_pickup_km"])
    far = grid >= far_km
    facts["pickup_curve"] = {"grid": grid.tolist(), "true": truth.tolist(), "far_km": far_km,
                             "logistic": pd_lin.tolist(), "lgbm": pd_gbm.tolist(),
                             "far_gap_logistic": float(np.mean(np.abs(pd_lin - truth)[far])),
                             "far_gap_lgbm": float(np.mean(np.abs(pd_gbm - truth)[far]))}
    facts["trip_5_to_25km_lift"] = lift
    facts["trip_lift_km"] = trip_km.tolist()
    # serving: score the nearest drivers for one request, the model loaded as a service would
    serving = _serving(ctx, test[cols], int(acfg["nearest_drivers"]), int(acfg["requests"]),
                       float(acfg["budget_ms"]))
    trade, trade_timing = tradeoffs(ctx, test[cols], rec)
    facts["tradeoffs"] = trade
    sb = switchback(ctx)
    facts["switchback"] = sb
    sections = [
        ("Recovered against true coefficients", (
            "The logistic candidate's coefficients on each input's own scale, against the "
            "simulator's rule. They cannot match exactly: the rule also has a latent per-driver "
            "taste (the model sees only the driver's recent acceptance rate, coefficient "
            f"{rec.get('recent_acceptance_rate', float('nan')):.2f}) and two non-linear terms a "
            "linear model cannot express.\n\n" + markdown_table(coef_table.round(4)))),
        ("What the trees found that the linear model missed", (
            f"Past 4 km the true rule penalises pickup distance quadratically. From {far_km:g} km on, "
            f"the logistic curve is off the truth by {facts['pickup_curve']['far_gap_logistic']:.3f} "
            f"in acceptance probability on average and LightGBM by "
            f"{facts['pickup_curve']['far_gap_lgbm']:.3f}. Long trips at night are prized: going "
            f"from a {trip_km[0]:g} km to a {trip_km[1]:g} km trip changes LightGBM's acceptance by "
            f"{lift.get('lgbm_night', float('nan')):+.3f} at night and "
            f"{lift.get('lgbm_day', float('nan')):+.3f} by day; the logistic model, with no "
            f"interaction, by {lift.get('logistic_night', float('nan')):+.3f} and "
            f"{lift.get('logistic_day', float('nan')):+.3f}.\n\n"
            "![pickup curve](analysis/pickup_curve.png)")),
        ("Serving within the budget", (
            f"{serving['requests']} requests, each scoring the {serving['drivers']} nearest "
            f"drivers with the model loaded from MLflow, against the {serving['budget_ms']:.0f} "
            "ms budget: this run's p50 and p99 are in `analysis_timing.json` and timing.md "
            "(they depend on the machine). If it did not fit: precompute the driver features "
            "(recent acceptance rate, hours online) so a request only joins them, use fewer "
            "trees or a smaller model, or score fewer drivers.")),
        ("Which classifier: the trade-offs", (
            "Every candidate on the test week (95% bootstrap intervals over drivers), and what "
            "a dispatcher can read from it. Fit seconds, the p99 latency of scoring "
            f"{trade_timing['drivers']} drivers for one request and the model's size depend on "
            "the machine: they are in `analysis_timing.json` (`tradeoffs`) and timing.md.\n\n"
            + markdown_table(pd.DataFrame([
                {"model": t["model"], "log_loss": _with_interval(t, "log_loss"),
                 "auc": _with_interval(t, "auc"), "ece": _with_interval(t, "ece"),
                 "dispatcher reads": t["readable"]} for t in trade])))),
        ("The online test: switchback, not per request", (
            "Randomising each request between the old ranking and the model's splits one pool "
            "of drivers between the arms: a driver the model sends on a trip is missing from "
            "the control's next request, so the two arms interfere and the difference is "
            "biased. Randomise the market and the time window instead (a switchback): for "
            f"{sb['window_hours']} h every request of a market gets the same policy, then the "
            "coin is tossed again; analyse window means, adjusting for the hour of day. What "
            "to measure: acceptance by the first driver asked (primary), time to pickup and "
            "requests that find no driver (secondary), rider cancellations and driver earnings "
            "per online hour (guardrails).\n\n"
            f"The power of one market-week, from the test week's own variance: "
            f"{sb['windows']} windows of {sb['window_hours']} h; acceptance varies between "
            f"windows by {sb['window_sd']:.4f} (sd, after the hour of day). A week of "
            f"switchbacks detects a change of {sb['mde_switchback_pp']:.2f} points in "
            f"acceptance ({100 * sb['alpha']:.0f}% two-sided test, {100 * sb['power']:.0f}% "
            f"power); randomising its {sb['offers']:,} offers one by one would detect "
            f"{sb['mde_per_request_pp']:.2f} points if the offers were independent, "
            + ("so windows cost power: each window's offers move together. "
               if sb["mde_switchback_pp"] > sb["mde_per_request_pp"] else
               "no better: after the hour of day, windows vary no more than their offers' "
               "own binomial noise, because the simulator has no shared-supply shocks (a real "
               "market's surges and shortages would widen the windows' spread, and the "
               "per-request figure would still be biased by the arms sharing drivers). ")
            + f"Detecting {sb['target_lift_pp']:.1f} points takes "
            f"{sb['market_weeks_for_target']:.1f} market-weeks (markets run in parallel "
            "count as weeks).")),
    ]
    return EdaResult(sections=sections, figures={"pickup_curve": fig,
                                                 "coefficients": coef_table.round(6),
                                                 "tradeoffs": pd.DataFrame(trade).drop(
                                                     columns=["readable"]).round(6)},
                     facts=facts, timings={"serving": serving, "tradeoffs": trade_timing})


def _with_interval(t: dict, metric: str) -> str:
    lo, hi = t.get(f"{metric}_interval") or (None, None)
    return f"{t[metric]:.4f}" + (f" [{lo:.4f}, {hi:.4f}]" if lo is not None else "")


def readable(name: str, model, rec: dict[str, float]) -> tuple[str, dict]:
    """What a dispatcher can read from a fitted candidate: the logistic model's odds per unit
    of its strongest inputs, or the size of a tree ensemble (read through feature effects)."""
    est = model[-1] if hasattr(model, "steps") else model
    if hasattr(est, "coef_"):
        top = sorted(rec, key=lambda k: -abs(rec[k]))[:2]
        odds = {k: float(np.exp(rec[k])) for k in top}
        return ("coefficients: odds \u00d7" + ", \u00d7".join(f"{v:.2f} per unit of {k}"
                                                    for k, v in odds.items()),
                {"odds_per_unit": odds})
    if hasattr(est, "booster_"):
        info = est.booster_.dump_model()["tree_info"]
        trees, leaves = len(info), int(sum(t["num_leaves"] for t in info))
        return (f"feature effects only (partial dependence, SHAP): {trees} trees, {leaves:,} "
                "leaves", {"trees": trees, "leaves": leaves})
    if hasattr(est, "estimators_"):
        trees = len(est.estimators_)
        leaves = int(sum(t.get_n_leaves() for t in est.estimators_))
        return (f"feature effects only (partial dependence, SHAP): {trees} trees, {leaves:,} "
                "leaves", {"trees": trees, "leaves": leaves})
    return "feature effects only", {}


def tradeoffs(ctx: AnalysisContext, X: pd.DataFrame, rec: dict[str, float]
              ) -> tuple[list[dict], dict]:
    """Every candidate: test log loss, AUC and calibration error (with their intervals) and
    what a dispatcher reads from it; apart (the machine's): fit seconds, p99 latency of one
    request's nearest drivers, size on disk."""
    acfg, view = ctx.cfg["analysis"], ctx.cfg["primary"]["view"]
    task = ctx.cfg["primary"]["task"]
    entry = ctx.metrics["tasks"][task][view]
    drivers, requests = int(acfg["nearest_drivers"]), int(acfg["tradeoff_requests"])
    rows, timing = [], {"drivers": drivers, "requests": requests, "models": {}}
    for name, t in entry["test"].items():
        if name == "baseline":
            continue
        model = ctx.model(task, view, name)
        words, detail = readable(name, model, rec)
        row = {"model": name, **{m: float(t[m]) for m in ("log_loss", "auc", "ece")},
               "readable": words, **detail}
        for m in ("log_loss", "auc", "ece"):
            lohi = ((entry.get("intervals") or {}).get(name) or {}).get(m)
            if lohi:
                row[f"{m}_interval"] = [float(v) for v in lohi]
        rows.append(row)
        lat = latency_ms(lambda b, m=model: predict_for("binary", m, b),
                         nearest_driver_batches(X, drivers, requests, ctx.seed),
                         warmup=X.iloc[:drivers])
        timing["models"][name] = {"fit_s": ctx.fit_time(task, view, name),
                                  "p50_ms": lat["p50"], "p99_ms": lat["p99"],
                                  "size_kb": ctx.model_size(task, view, name) / 1e3}
    return rows, timing


def switchback(ctx: AnalysisContext) -> dict:
    """The power of a switchback test (market x time window) from the test week's variance:
    window acceptance rates after the hour of day, the minimum detectable change of one
    market-week, what per-request randomisation would (wrongly) claim, and the market-weeks a
    target lift needs."""
    from scipy.stats import norm

    s = ctx.cfg["analysis"]["switchback"]
    test = ctx.test
    width = int(s["window_hours"])
    hours = test["day"].astype(int) * 24 + test["hour"].astype(int)
    per = test.assign(window=(hours // width).astype(int)).groupby("window").agg(
        rate=("accepted", "mean"), slot=("hour", "first"))
    slot = (per["slot"] // width).astype(int)
    resid = per["rate"] - per.groupby(slot)["rate"].transform("mean")
    n_w, n_slots = len(per), int(slot.nunique())
    sd = float(np.sqrt((resid**2).sum() / max(n_w - n_slots, 1)))
    alpha, power = float(s["alpha"]), float(s["power"])
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    mde = z * sd * np.sqrt(4 / n_w)  # two arms of n_w / 2 windows
    p = float(test["accepted"].mean())
    naive = z * np.sqrt(p * (1 - p) * 4 / len(test))
    target = float(s["target_lift_pp"])
    return {"window_hours": width, "windows": n_w, "window_sd": sd, "alpha": alpha,
            "power": power, "mde_switchback_pp": float(100 * mde), "offers": int(len(test)),
            "acceptance": p, "mde_per_request_pp": float(100 * naive), "target_lift_pp": target,
            "market_weeks_for_target": float((100 * mde / target) ** 2)}


def nearest_driver_batches(X: pd.DataFrame, drivers: int, requests: int, seed: int):
    """One batch of `drivers` offers per dispatch request (the candidates scored together)."""
    rng = np.random.default_rng(seed)
    for _ in range(requests):
        yield X.iloc[rng.choice(len(X), drivers, replace=False)]


def _serving(ctx: AnalysisContext, X: pd.DataFrame, drivers: int, requests: int,
             budget_ms: float) -> dict:
    entry = ctx.serving["models"][ctx.cfg["primary"]["task"]]
    model = ctx.logged_model(ctx.cfg["primary"]["task"])
    lat = latency_ms(model.predict, nearest_driver_batches(X, drivers, requests, ctx.seed),
                     warmup=X.iloc[:drivers])
    p50, p99 = lat["p50"], lat["p99"]
    return {"model_uri": entry["model_uri"], "selected": entry["candidate"], "drivers": drivers,
            "requests": requests, "p50_ms": p50, "p99_ms": p99, "budget_ms": budget_ms,
            "fits": bool(p99 <= budget_ms)}
