"""The housing interview story: which fill under which mechanism, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Story
from cases.lifecycle.report import difference, selection_note, versus

CONSTANT_FILLS = ("mean", "median")  # one global value for every hidden size
MODEL_FILLS = ("knn", "iterative", "lgbm_imputer", "native")  # a fill (or split) per home


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
    sel_entry = m["tasks"]["price"][primary]
    sel = sel_entry["selected"]
    if prim["best"] == sel:
        cv_vs_test = (f"CV picked `{sel}` for the {primary} mask, and it is also the best on "
                      f"test.")
    else:
        cv_vs_test = (f"CV picked `{sel}` for the {primary} mask; on test `{prim['best']}` "
                      f"{versus(sel_entry, prim['best'], sel, 'rmse') or 'against'} `{sel}`"
                      f"{difference(sel_entry, prim['best'], sel, 'rmse', 4)}.")
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
        cv_vs_test,
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
    rollout = [("Recommendation", " ".join([
        _ship(measured.get("champions", {}).get("price"), m, measured.get("selection")),
        "Per mechanism, best on test: " + "; ".join(
            f"{mech}: `{b['best']}` ({b['best_gap_pct']:+.2f}% vs oracle)"
            for mech, b in by.items()) + ".",
        *_fill_kinds(m),
        "A constant fill puts every hidden home at the same size; its bias and error against "
        "the true sizes are in the talking points."]))]
    band, limit = int(cfg["report"]["alert_band_days"]), float(cfg["report"]["max_missing_rate"])
    rollout += [
        ("Monitoring", (
            f"Log per day: the share of listings without a size (today {100 * rate:.0f}%), the "
            f"share of served predictions that used a filled size, the mean filled size against "
            f"the mean known size of similar listings, and the price error on listings whose "
            f"size arrives later (sold homes: county records), split by filled and known.")),
        ("When the missing rate drifts", (
            f"Alert when the daily missing share leaves its {band}-day band (a listing form or a "
            f"partner feed changed). Then check who goes missing: compare the filled homes' "
            f"observed columns (age, zipcode, grade) with last month's. If the mix changed, the "
            f"mechanism changed: refit the fill on recent complete listings and rerun this "
            f"experiment (`dvc repro`) with the new rate (`case.data.mask.rate`). This run "
            f"measured only today's rate; past {100 * limit:.0f}% missing "
            f"(`case.report.max_missing_rate`, a policy, not a measurement) stop trusting any "
            f"fill until the experiment is rerun at that rate, and ask for the field at "
            f"listing time.")),
    ]
    return Story(rollout=rollout, talking_points=points)


def _ship(champ: Mapping | None, m: Mapping, selection: Mapping | None) -> str:
    """The registered champion and why it was picked; or why nothing ships."""
    if not champ:
        return "No model was registered for the price task."
    view, name = champ["view"], champ["candidate"]
    note = selection_note(((selection or {}).get("tasks", {}).get("price") or {}).get(view))
    if not champ["registered"]:
        return (f"`{name}` (selected for the {view} mechanism) failed its gate against the "
                f"baseline, so it is not registered as champion and nothing ships.")
    return (f"Ship `{name}` for the {view} mechanism: the registered champion"
            + (f", {note}" if note else ", selected by CV") + ".")


def _fill_kinds(m: Mapping) -> list[str]:
    """Per mechanism, the best fill per home against the best constant fill on test, in the
    words the paired interval allows (no winner named without one)."""
    out = []
    for mech, r in m["tasks"]["price"].items():
        test = r["test"]
        consts = [s for s in CONSTANT_FILLS if s in test]
        models = [s for s in MODEL_FILLS if s in test]
        if not consts or not models:
            continue
        c = min(consts, key=lambda s: test[s]["rmse"])
        f = min(models, key=lambda s: test[s]["rmse"])
        out.append(f"{mech}: the best per-home fill `{f}` (RMSE {test[f]['rmse']:.4f}) "
                   f"{versus(r, f, c, 'rmse') or 'against'} the best constant fill `{c}` "
                   f"({test[c]['rmse']:.4f}){difference(r, f, c, 'rmse', 4)}.")
    return out
