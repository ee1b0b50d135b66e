"""The housing interview story: which fill under which mechanism, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Story


def _row(a: Mapping, mech: str, strategy: str) -> Mapping | None:
    return next((r for r in a["strategies"] if r["mechanism"] == mech
                 and r["strategy"] == strategy), None)


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a, e = measured["metrics"], measured["analysis"], measured["eda"]
    rate = float(cfg["data"]["mask"]["rate"])
    by = a["by_mechanism"]
    primary = m["primary"]["view"]
    lines = []
    for mech, b in by.items():
        mean = _row(a, mech, "mean")
        knn = _row(a, mech, "knn")
        lines.append(
            f"{mech}: best `{b['best']}` RMSE {b['best_rmse']:.4f} ({b['best_gap_pct']:+.2f}% vs "
            f"the oracle's {b['oracle_rmse']:.4f}), worst `{b['worst']}` "
            f"({b['worst_gap_pct']:+.2f}%)"
            + (f"; mean fill misses the true size by {mean['sqft_mape']:.1f}% (bias "
               f"{mean['sqft_bias']:+.0f} sqft), KNN by {knn['sqft_mape']:.1f}%"
               if mean and knn else ""))
    p = a["plateau"]
    prim = by.get(primary, next(iter(by.values())))
    mnar = by.get("mnar")
    points = [
        f"This is an experiment, not a list of options: {e['homes']:,} homes whose size is "
        f"known, {100 * rate:.0f}% hidden three ways (completely at random, at random given age "
        f"and zipcode, not at random: larger homes), every fill fitted inside the CV folds, and "
        f"the same price model behind each, scored against the model that had nothing missing.",
        *lines,
        f"Dropping incomplete listings: the learning curve says {p['complete_listings']:,} "
        f"complete listings reach RMSE {p['complete_rmse']:.4f} against {p['all_rmse']:.4f} with "
        f"all {p['all_listings']:,} ({p['cost_of_dropping_pct']:+.2f}%), so fewer rows barely "
        f"hurt; but a listing without a size still needs a price at serving time, and under a "
        f"non-random mechanism the complete rows are a biased sample.",
        f"CV picked `{prim['selected_by_cv']}` for the {primary} mask, and test agrees on "
        f"`{prim['best']}` being best." if prim["selected_by_cv"] == prim["best"] else
        f"CV picked `{prim['selected_by_cv']}` for the {primary} mask; on test `{prim['best']}` "
        f"was best: the strategies are close, so pick the cheapest that is within noise.",
    ]
    if mnar:
        fills = [r for r in a["strategies"] if r["mechanism"] == "mnar"
                 and r["strategy"] in ("knn", "iterative", "lgbm_imputer")]
        if fills:
            f = min(fills, key=lambda r: abs(r["sqft_bias"]))
            points.append(
                f"Not at random is the case no fill can fix from the listing alone: even the "
                f"least biased model-based fill (`{f['strategy']}`) puts the hidden homes "
                f"{f['sqft_bias']:+.0f} sqft off on average ({f['sqft_mape']:.1f}% error), "
                f"because nothing observed says a home is larger than it looks. The price model "
                f"ends {mnar['best_gap_pct']:+.2f}% behind the oracle; to do better, a missing "
                f"indicator lets it learn that hidden means large, or outside data (permits, tax "
                f"records) supplies the size.")
    rollout = [
        ("Recommendation", (
            f"Ship `{prim['best']}` (selected by CV: `{prim['selected_by_cv']}`) for the "
            f"{primary} mechanism. Per mechanism, best on test: "
            + "; ".join(f"{mech}: `{b['best']}` ({b['best_gap_pct']:+.2f}% vs oracle)"
                        for mech, b in by.items())
            + ". A model-based fill (KNN, LightGBM imputer, iterative) or LightGBM's native "
              "missing values with an indicator beat constant fills whenever the mask is not "
              "completely at random; the constant fills bias every imputed home toward the "
              "median size.")),
        ("Monitoring", (
            f"Log per day: the share of listings without a size (today {100 * rate:.0f}%), the "
            f"share of served predictions that used a filled size, the mean filled size against "
            f"the mean known size of similar listings, and the price error on listings whose "
            f"size arrives later (sold homes: county records), split by filled and known.")),
        ("When the missing rate drifts", (
            "Alert when the daily missing share leaves its 30-day band (a listing form or a "
            "partner feed changed). Then check who goes missing: compare the filled homes' "
            "observed columns (age, zipcode, grade) with last month's. If the mix changed, the "
            "mechanism changed: refit the fill on recent complete listings and rerun this "
            "experiment (`dvc repro`) with the new rate (`case.data.mask.rate`); if the rate "
            "passes about 40%, stop trusting any fill and ask for the field at listing time.")),
    ]
    return Story(rollout=rollout, talking_points=points)
