"""Why the forest wins, in numbers, and what the linear model keeps.

- the model-by-encoding table on the same host-grouped folds;
- the linear model's assumptions checked on its residuals (Q-Q plot, residuals against fitted,
  a Breusch-Pagan test, variance inflation) with what each finding costs (interval coverage,
  coefficient instability across folds);
- the forest's claimed robustness to outliers and to many categories, tested on the same folds;
- the linear model's residuals by room type and neighbourhood, the interaction the trees found
  (SHAP interaction values), and what the linear model keeps (readable coefficients, speed,
  extrapolation)."""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import pandas as pd

from cases.airbnb.story import plain_text
from cases.airbnb.tasks import build_model, own_columns
from cases.lifecycle import bootstrap as bs
from cases.lifecycle.contract import PLAIN, AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table, number, pyplot
from cases.lifecycle.parallel import Job, map_rows, predict, run_fits
from cases.lifecycle.selection import group_folds


def _rmse(y, p) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def encoding_table(ctx: AnalysisContext) -> pd.DataFrame:
    view = ctx.cfg["primary"]["view"]
    sel = ctx.selection["price"][view]["candidates"]
    test = ctx.metrics["tasks"]["price"][view]["test"]
    rows = []
    for name, c in sel.items():
        if name == "baseline":
            continue
        rows.append({"candidate": name, "model": c["params"]["model"],
                     "encoding": c["params"]["encoding"],
                     "cv_rmse": c["cv"]["rmse"]["mean"], "cv_rmse_sd": c["cv"]["rmse"]["std"],
                     "test_rmse": test[name]["rmse"], "test_r2": test[name]["r2"],
                     "test_mae_dollars": test[name]["mae_dollars"]})
    return pd.DataFrame(rows).sort_values("cv_rmse").reset_index(drop=True)


def plain_reference(ctx: AnalysisContext) -> dict:
    """The selected model against `lgbm-plain` (LightGBM's defaults on the file's own columns),
    from the run's own figures: CV RMSE of both on the same host-grouped folds with the
    fold-by-fold difference from the best candidate and its standard error (as selection states
    it), and the test RMSE of both with the paired host-bootstrap interval of selected − plain
    (negative: the selected model is better). Empty when the run has no plain reference."""
    view = ctx.cfg["primary"]["view"]
    sel = ctx.selection["price"][view]
    if PLAIN not in sel["candidates"]:
        return {}
    r = ctx.metrics["tasks"]["price"][view]
    chosen, metric = sel["selected"], "rmse"
    cv = {n: sel["candidates"][n]["cv"][metric]["mean"] for n in (chosen, PLAIN)}
    out = {"selected": chosen, "best_cv": sel["best"],
           "cv": {"selected": cv[chosen], "plain": cv[PLAIN],
                  "selected_minus_plain": cv[chosen] - cv[PLAIN],
                  "plain_vs_best": sel["vs_best"][PLAIN]},
           "test": {"selected": r["test"][chosen][metric], "plain": r["test"][PLAIN][metric]}}
    if chosen != PLAIN:
        d = r["paired"][PLAIN]["vs_selected"][metric]  # plain − selected on the same resamples
        out["test"].update({"selected_minus_plain": -d["diff"], "lo": -d["hi"], "hi": -d["lo"],
                            "verdict": ("within noise" if d["within_noise"] else
                                        "better" if d["diff"] > 0 else "worse")})
    return out


def linear_folds(ctx: AnalysisContext, train: pd.DataFrame,
                 cols: list[str]) -> dict[str, list[tuple[pd.Series, float]]]:
    """`linear-onehot` fitted on each fold of two K-fold splits of the training listings: the
    CV's own folds, which hold whole hosts out, and shuffled folds that split a host's listings.
    Per fold: its coefficients of the numeric inputs (`linear_coefficients`) and its validation
    RMSE. One `parallel.run_fits` call shares the fits across the cores; the assumption checks
    (coefficient spread) and the independence test (CV with and without whole hosts) both read
    these fits."""
    from sklearn.model_selection import KFold

    k = int(ctx.cfg["train"]["cv_folds"])
    splits = {"hosts held out": group_folds(ctx.rows("train").group, k, ctx.seed),
              "hosts split": list(KFold(k, shuffle=True, random_state=ctx.seed).split(train))}
    X, y = train[cols].reset_index(drop=True), train["log_price"].reset_index(drop=True)
    jobs = [Job(build_model("linear", "onehot", cols, ctx.cfg, ctx.seed), tr, va,
                partial(_coefficients_and_prediction, cols))
            for folds in splits.values() for tr, va in folds]
    done = iter(run_fits(jobs, X, y))
    out = {}
    for name, folds in splits.items():
        out[name] = []
        for _, va in folds:
            (coefs, pred), _ = next(done)
            out[name].append((coefs, _rmse(y.to_numpy()[va], pred)))
    return out


def _coefficients_and_prediction(cols, model, X: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """A `Job.then`: the fitted linear model's coefficients and its predictions on `X`."""
    return linear_coefficients(model, cols), np.asarray(model.predict(X))


def linear_checks(ctx: AnalysisContext, train: pd.DataFrame, test: pd.DataFrame,
                  cols: list[str], fold_coefs: list[pd.Series]) -> tuple[dict, dict]:
    """The linear model's assumptions on its residuals, and what each finding costs;
    `fold_coefs`: its coefficients fitted on each CV fold (`linear_folds`)."""
    from scipy import stats

    lin = ctx.model("price", ctx.cfg["primary"]["view"], "linear-onehot")
    fitted = lin.predict(train[cols])
    resid = train["log_price"].to_numpy() - fitted
    # normality
    skew, kurt = float(stats.skew(resid)), float(stats.kurtosis(resid))
    # constant variance: Breusch-Pagan (n R^2 of squared residuals on the fitted values)
    r2 = float(np.corrcoef(resid**2, fitted)[0, 1] ** 2)
    bp = len(resid) * r2
    bp_p = float(stats.chi2.sf(bp, 1))
    # the cost: a nominal 95% interval (fitted +- 1.96 sd) on test listings, by fitted quintile
    sd = resid.std()
    t_pred = lin.predict(test[cols])
    t_res = test["log_price"].to_numpy() - t_pred
    level, z = 0.95, 1.96  # the nominal level and its normal quantile (stored with the result)
    inside = np.abs(t_res) <= z * sd
    q = pd.qcut(t_pred, 5, labels=False, duplicates="drop")
    coverage = pd.Series(inside).groupby(q).mean()
    # correlated predictors: variance inflation of the numeric inputs
    num = [c for c in cols if c not in ctx.cfg["features"]["categorical"]
           and train[c].notna().mean() > 0.5 and train[c].std() > 0]
    Z = train[num].fillna(train[num].median())
    Z = (Z - Z.mean()) / Z.std()
    corr = np.corrcoef(Z.to_numpy(), rowvar=False)
    vif = pd.Series(np.diag(np.linalg.pinv(corr)), index=num).sort_values(ascending=False)
    # what high VIF costs: the coefficient's spread across the folds
    spread = pd.concat([c.reindex(num) for c in fold_coefs], axis=1)
    instab = (spread.std(axis=1) / spread.mean(axis=1).abs().clip(lower=1e-6)).reindex(vif.index)
    figs = {}
    fig, ax = figure("Linear model: Q-Q plot of training residuals", "normal quantile",
                     "residual quantile")
    (osm, osr), (slope, icpt, _) = stats.probplot(resid, dist="norm")
    ax.scatter(osm[::max(len(osm) // 2000, 1)], osr[::max(len(osr) // 2000, 1)], s=3)
    ax.plot(osm, slope * osm + icpt, c="k", lw=1)
    figs["linear_qq"] = fig
    fig, ax = figure("Linear model: residuals against fitted", "fitted log price", "residual")
    step = max(len(fitted) // 3000, 1)
    ax.scatter(fitted[::step], resid[::step], s=3, alpha=0.4)
    ax.axhline(0, c="k", lw=1)
    figs["linear_residuals"] = fig
    facts = {
        "skew": skew, "excess_kurtosis": kurt, "breusch_pagan": bp, "breusch_pagan_p": bp_p,
        "interval_level": level, "interval_z": z,
        "interval_coverage_pct": 100 * float(inside.mean()),
        "coverage_by_fitted_quintile_pct": [100 * float(v) for v in coverage.to_numpy()],
        "vif": {k: float(v) for k, v in vif.head(8).items()},
        "coef_relative_sd_across_folds": {k: float(v) for k, v in instab.head(8).items()},
    }
    return facts, figs


def linear_coefficients(model, cols) -> pd.Series:
    """Coefficients of the numeric inputs on their own scale (log price per unit)."""
    lin = model.named_steps["model"]
    pre = lin.named_steps["pre"]
    # the imputer drops a column that is empty in the fitted rows: name what it kept
    num_cols = list(pre.named_transformers_["num"].get_feature_names_out(pre.transformers_[0][2]))
    scale = pre.named_transformers_["num"].named_steps["scale"].scale_
    coef = lin.named_steps["model"].coef_[: len(num_cols)] / scale
    return pd.Series(coef, index=num_cols)


def robustness(ctx: AnalysisContext, train: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Same folds: price outliers in the training rows, and a junk category with many levels."""
    a = ctx.cfg["analysis"]
    rng = np.random.default_rng(ctx.seed)
    folds = group_folds(ctx.rows("train").group, int(ctx.cfg["train"]["cv_folds"]), ctx.seed)
    folds = folds[: int(a["robustness_folds"])]
    junk = pd.Series(rng.integers(0, int(a["junk_levels"]), len(train))).astype(str).to_numpy()
    trial = train.assign(junk=junk)
    cfg_junk = {**ctx.cfg, "features": {**ctx.cfg["features"],
                                        "categorical": [*ctx.cfg["features"]["categorical"],
                                                        "junk"]}}
    y = train["log_price"].reset_index(drop=True)
    jcols = [*cols, "junk"]
    models = (("linear", "onehot"), ("forest", "onehot"), ("lgbm", "native"))
    # the clean target's scores: train's own fits of these candidates on the same folds
    # (selection.json, fold by fold); fitted here only when train did not run the candidate
    trained = ctx.selection["price"][ctx.cfg["primary"]["view"]]["candidates"]
    scores = {f"{m}-{e}": [f["rmse"] for f in trained[f"{m}-{e}"]["folds"][:len(folds)]]
              for m, e in models if len(trained.get(f"{m}-{e}", {}).get("folds", [])) >=
              len(folds)}
    # every other fit side by side on the cores (`parallel.run_fits`): per model and fold the
    # clean target (when not trained), the target with outliers (drawn in this order), and the
    # junk category
    plain, junked, plain_keys, junk_keys = [], [], [], []
    for model, enc in models:
        for tr, va in folds:
            y_dirty = y.to_numpy()[tr].copy()
            hit = rng.uniform(size=len(tr)) < float(a["outlier_share"])
            y_dirty[hit] += np.log(10)
            for label, target in (("clean", None), ("dirty", y_dirty)):
                if label == "clean" and f"{model}-{enc}" in scores:
                    continue
                plain.append(Job(build_model(model, enc, cols, ctx.cfg, ctx.seed), tr, va,
                                 predict, target=target))
                plain_keys.append((model, label, va))
            junked.append(Job(build_model(model, enc, jcols, cfg_junk, ctx.seed), tr, va,
                              predict))
            junk_keys.append((model, "junk", va))
    fitted = run_fits(plain, train[cols].reset_index(drop=True), y)
    fitted_junk = run_fits(junked, trial[jcols].reset_index(drop=True), y)
    rmse: dict = {}
    for (model, label, va), (pred, _) in zip(plain_keys + junk_keys, fitted + fitted_junk):
        rmse.setdefault((model, label), []).append(_rmse(y.to_numpy()[va], pred))
    rows = []
    for model, enc in models:
        clean = scores.get(f"{model}-{enc}") or rmse[(model, "clean")]
        c, d, n = np.mean(clean), np.mean(rmse[(model, "dirty")]), np.mean(rmse[(model, "junk")])
        rows.append({"model": f"{model}-{enc}", "cv_rmse": c, "with_outliers": d,
                     "outlier_cost_pct": 100 * (d / c - 1), "with_junk_category": n,
                     "junk_cost_pct": 100 * (n / c - 1)})
    return pd.DataFrame(rows)


def interaction(ctx: AnalysisContext, test: pd.DataFrame, cols: list[str]) -> tuple[dict, dict]:
    """The strongest pairwise interaction in LightGBM (native categories), from SHAP
    interaction values, and its dependence plot."""
    model = ctx.model("price", ctx.cfg["primary"]["view"], "lgbm-native")
    sample = test.sample(min(int(ctx.cfg["analysis"]["shap_rows"]), len(test)),
                         random_state=ctx.seed)
    X = model.named_steps["model"].named_steps["cast"].transform(
        model.named_steps["encode"].transform(sample[cols]))
    booster = model.named_steps["model"].named_steps["model"]
    # categories as their codes: LightGBM's categorical splits are on those codes
    codes = X.apply(lambda s: s.cat.codes.replace(-1, np.nan).astype(float)
                    if isinstance(s.dtype, pd.CategoricalDtype) else s.astype(float))
    # row by row, so the rows' blocks go side by side on the cores (`parallel.map_rows`)
    inter = map_rows(partial(_interaction_values, booster), codes)
    strength = np.abs(inter).mean(axis=0)
    np.fill_diagonal(strength, 0)
    i, j = np.unravel_index(np.argmax(strength), strength.shape)
    names = list(X.columns)
    a, b = names[i], names[j]
    top = sorted(((strength[p, q], names[p], names[q]) for p in range(len(names))
                  for q in range(p + 1, len(names))), reverse=True)[:5]
    fig, ax = figure(f"SHAP interaction: {a} x {b}", a, f"interaction value ({a}, {b})")
    few = {c for c in (a, b) if isinstance(X[c].dtype, pd.CategoricalDtype)
           and len(X[c].cat.categories) <= 12}
    if b in few:  # a category colours by a colour of its own each, named in a legend
        palette = pyplot().get_cmap("tab10").colors
        for k, cat in enumerate(X[b].cat.categories):
            on = (codes[b] == k).to_numpy()
            if on.any():
                ax.scatter(codes[a][on], inter[on, i, j] * 2, s=8, color=palette[k % 10],
                           label=str(cat))
        ax.legend(fontsize=7, title=b, title_fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.01, 1), borderaxespad=0, markerscale=2)
    else:
        sc = ax.scatter(codes[a], inter[:, i, j] * 2, c=codes[b], s=8, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=b)
    if a in few:
        cats = list(X[a].cat.categories)
        ax.xaxis.set_ticks(range(len(cats)), cats, fontsize=7)
    return ({"pair": [a, b], "strength": float(strength[i, j]),
             "top": [{"a": p, "b": q, "strength": float(s)} for s, p, q in top]},
            {"interaction": fig})


def _interaction_values(booster, X: pd.DataFrame) -> np.ndarray:
    import shap

    return shap.TreeExplainer(booster).shap_interaction_values(X)


def analyze(ctx: AnalysisContext) -> EdaResult:
    view = ctx.cfg["primary"]["view"]
    cols = ctx.meta["views"][view]
    own = own_columns(cols)  # what every candidate but lgbm-tuned reads
    train, test = ctx.train, ctx.test
    table = encoding_table(ctx)
    linear_cv = linear_folds(ctx, train, own)
    checks, figures = linear_checks(ctx, train, test, own,
                                    [coefs for coefs, _ in linear_cv["hosts held out"]])
    robust = robustness(ctx, train, own)
    inter, fig_inter = interaction(ctx, test, cols)
    figures.update(fig_inter)
    figures["encodings_table"] = table.round(6)
    units = bs.unit_ids(ctx.rows("test"), ctx.cfg["evaluate"]["bootstrap_unit"])[1]
    levels, levels_table = many_levels(ctx, train, test, own, units)
    if len(levels_table):
        figures["many_levels_table"] = levels_table.round(6)
        figures["many_levels"] = many_levels_plot(levels, levels_table)
    pred = test_predictions(ctx, test, cols)
    vs_linear = against_linear(ctx, test, pred, units)
    plain = plain_reference(ctx)
    figures["against_linear"] = pd.DataFrame(vs_linear).round(6)
    selected = ctx.selection["price"][view]["selected"]
    indep = independence(ctx, test, {n: pred[n] for n in dict.fromkeys(
        ["linear-onehot", selected])}, linear_cv)
    fig, ax = figure("CV RMSE of log price: model x encoding", "CV RMSE (log price)", "")
    labels = list(table["candidate"])
    ax.barh(labels, table["cv_rmse"], xerr=table["cv_rmse_sd"], color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlim(table["cv_rmse"].min() * 0.9, table["cv_rmse"].max() * 1.05)
    figures["encodings"] = fig
    # the linear model's residuals where the trees do better
    lin = ctx.model("price", view, "linear-onehot")
    # the best tree model by CV (the selected model may be the linear one)
    trees = table[table["model"] != "linear"]
    best = str(trees.iloc[0]["candidate"])
    tree = ctx.model("price", view, best)
    res = test.assign(linear=test["log_price"] - pred["linear-onehot"],
                      best=test["log_price"] - pred[best])
    by_room = res.groupby("room_type")[["linear", "best"]].agg(["mean", lambda s: np.sqrt(
        np.mean(s**2))])
    by_room.columns = ["linear_mean_resid", "linear_rmse", "best_mean_resid", "best_rmse"]
    by_room = by_room.reset_index()
    hood = res.groupby("neighbourhood").agg(listings=("linear", "size"),
                                            linear_mean_resid=("linear", "mean"),
                                            best_mean_resid=("best", "mean"))
    hood = hood[hood["listings"] >= 10].reindex(
        hood["linear_mean_resid"].abs().sort_values(ascending=False).index).dropna().head(6)
    # what the linear model keeps: speed, readable coefficients, extrapolation
    timing = {}
    for name in ("linear-onehot", best):
        m = ctx.model("price", view, name)
        one = test[cols].iloc[[0]]
        t0 = time.perf_counter()
        for _ in range(50):
            m.predict(one)
        timing[name] = {"fit_s": ctx.fit_time("price", view, name),
                        "predict_ms": 1000 * (time.perf_counter() - t0) / 50}
    coefs = linear_coefficients(lin, cols)
    readable = coefs.reindex(coefs.abs().sort_values(ascending=False).index).head(8)
    extra = {}
    if "accommodates" in cols:
        entire = test[test["room_type"] == "Entire home/apt"]
        base = entire[cols].median(numeric_only=True)
        probe = entire[cols].iloc[[0]].copy()
        for c, v in base.items():
            probe[c] = v
        guests = [2, 4, 8, int(train["accommodates"].max()),
                  int(ctx.cfg["analysis"]["extrapolate_guests"])]
        rows = []
        for g in guests:
            p = probe.assign(accommodates=float(g), bedrooms=float(max(g // 2, 1)),
                             beds=float(max(g // 2, 1)))
            rows.append({"guests": g, "linear": float(np.exp(lin.predict(p)[0])),
                         best: float(np.exp(tree.predict(p)[0]))})
        extra = {"max_guests_in_training": int(train["accommodates"].max()), "prices": rows}
    facts = {"table": table.to_dict("records"), "best_tree": best, "linear_checks": checks,
             "robustness": robust.to_dict("records"), "interaction": inter,
             "residuals_by_room": by_room.to_dict("records"),
             "worst_neighbourhoods": hood.reset_index().to_dict("records"),
             "coefficients": {k: float(v) for k, v in readable.items()},
             "extrapolation": extra, "many_levels": levels, "against_linear": vs_linear,
             "independence": indep, "plain_reference": plain}
    c = checks
    spread = (max(c["coverage_by_fitted_quintile_pct"]) - min(c["coverage_by_fitted_quintile_pct"]))
    sections = [
        ("Model x encoding, same host-grouped folds", (
            markdown_table(table.round(4)) + "\n\n![encodings](analysis/encodings.png)")),
        ("The linear model's assumptions, checked", (
            f"- Normality of residuals: skew {number(c['skew'], '.2f')}, excess kurtosis "
            f"{c['excess_kurtosis']:.2f} (Q-Q plot below). Cost: a nominal "
            f"{100 * c['interval_level']:.0f}% interval (fitted ± {c['interval_z']} sd) covers "
            f"{c['interval_coverage_pct']:.1f}% of test listings.\n"
            f"- Constant variance: Breusch-Pagan statistic {c['breusch_pagan']:.1f} "
            f"(p = {c['breusch_pagan_p']:.2g}). Cost: coverage by fitted-price quintile "
            + ", ".join(f"{v:.0f}%" for v in c["coverage_by_fitted_quintile_pct"])
            + (": intervals too narrow at one end, too wide at the other. Point predictions "
               "are not biased by it.\n" if spread > 5 else
               ": no practical cost here.\n")
            + "- Correlated predictors (variance inflation): "
            + ", ".join(f"{k} {v:.1f}" for k, v in list(c["vif"].items())[:5])
            + ". Cost: the coefficient's spread across folds relative to its size: "
            + ", ".join(f"{k} {v:.2f}" for k, v in list(
                c["coef_relative_sd_across_folds"].items())[:5])
            + ": read those coefficients together, not one by one."
            + "\n\n![qq](analysis/linear_qq.png)\n\n![resid](analysis/linear_residuals.png)")),
        ("Robustness, tested on the same folds", (
            f"On the first {int(ctx.cfg['analysis']['robustness_folds'])} of the CV folds: "
            f"{100 * float(ctx.cfg['analysis']['outlier_share']):.0f}% of training prices "
            f"multiplied by 10 (validation untouched), and a junk categorical with "
            f"{int(ctx.cfg['analysis']['junk_levels']):,} random levels added:\n\n"
            + markdown_table(robust.round(4)))),
        ("Against a plain LightGBM", plain_text(ctx.metrics["tasks"]["price"][view],
                                                ctx.selection["price"][view], plain)),
        ("A categorical with thousands of levels", _levels_text(levels, levels_table)),
        ("Independence: residuals within a host", _independence_text(indep)),
        ("When the trees do not beat linear", _against_linear_text(
            vs_linear, ctx.cfg["features"]["high_cardinality"])),
        ("Why the trees win, in numbers", (
            f"Residuals of the linear model and of the best tree model by CV, `{best}`, by room "
            f"type (test listings):\n\n"
            + markdown_table(by_room.round(4))
            + "\n\nNeighbourhoods where the linear model is most off on average:\n\n"
            + markdown_table(hood.reset_index().round(4))
            + f"\n\nThe strongest interaction LightGBM found (SHAP interaction values on "
              f"{int(ctx.cfg['analysis']['shap_rows'])} test listings): **{inter['pair'][0]} x "
              f"{inter['pair'][1]}**; next: "
            + ", ".join(f"{t['a']} x {t['b']}" for t in inter["top"][1:4])
            + ".\n\n![interaction](analysis/interaction.png)")),
        ("What the linear model keeps", (
            "Coefficients a host can read (log price per unit; ×100 ≈ % per unit):\n\n"
            + markdown_table(pd.DataFrame({"input": readable.index,
                                           "coefficient": readable.to_numpy()}).round(4))
            + "\n\nSpeed: the fit and one-prediction times of "
            + " and ".join(f"`{k}`" for k in timing)
            + " on this machine are in `analysis_timing.json` and timing.md."
            + (("\n\nExtrapolation (an entire home at the median listing, more guests than "
                f"training ever saw: max {extra['max_guests_in_training']}):\n\n"
                + markdown_table(pd.DataFrame(extra["prices"]).round(0))
                + "\n\nThe trees stay flat past the largest home they saw; the linear model keeps "
                  "climbing, right or wrong.") if extra else ""))),
    ]
    return EdaResult(sections=sections, figures=figures, facts=facts, timings={"timing": timing})


# ---------------------------------------------------------------- the many-level categorical

def _encoding_variants(models) -> list[tuple[str, str]]:
    return [(m, e) for m in models for e in ("onehot", "target", "tree", "native")
            if e != "native" or m == "lgbm"]


def informative_levels(ctx: AnalysisContext, train: pd.DataFrame) -> tuple[str | None, list]:
    """The many-level column the test runs on: among `features.many_levels` the file has, the
    one with the most training levels whose cross-fitted target encoding correlates with log
    price at least `analysis.many_levels_min_r`."""
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import TargetEncoder

    min_r = float(ctx.cfg["analysis"]["many_levels_min_r"])
    y = train["log_price"].to_numpy()
    rows = []
    for c in ctx.cfg["features"]["many_levels"]:
        if c not in train:
            continue
        enc = TargetEncoder(target_type="continuous",
                            cv=KFold(5, shuffle=True, random_state=ctx.seed))
        te = enc.fit_transform(train[[c]].astype(str), y)[:, 0]
        r = float(np.corrcoef(te, y)[0, 1]) if np.std(te) > 0 else 0.0
        counts = train[c].value_counts()
        rows.append({"column": c, "levels": int(len(counts)),
                     "rare_levels": int((counts < int(ctx.cfg["eda"]["rare_level_listings"])).sum()),
                     "target_encoding_r": r, "informative": bool(abs(r) >= min_r)})
    ok = [r for r in rows if r["informative"]]
    return (max(ok, key=lambda r: r["levels"])["column"] if ok else None), rows


def many_levels(ctx: AnalysisContext, train: pd.DataFrame, test: pd.DataFrame,
                cols: list[str], units: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """One-hot, in-fold target encoding, tree bucketing and native handling of the many-level
    column, each added to the listing view of the same model, fitted on the training listings
    and scored on the test listings (intervals over hosts), against the same model without the
    column: on every test listing, and on those whose level training never saw."""
    a, f = ctx.cfg["analysis"], ctx.cfg["features"]
    column, candidates = informative_levels(ctx, train)
    if column is None:
        return {"column": None, "candidates": candidates}, pd.DataFrame()
    base = [c for c in cols if c != column]
    with_col = [*base, column]
    cfg = {**ctx.cfg, "features": {**f, "high_cardinality": column,
                                   "categorical": [*[c for c in f["categorical"]
                                                     if c != column], column]}}
    y = test["log_price"].to_numpy()
    seen = set(train[column].astype(str))
    counts = train[column].astype(str).value_counts()
    level_n = test[column].astype(str).map(counts).fillna(0).to_numpy()
    unseen = level_n == 0
    rare = (level_n > 0) & (level_n < int(ctx.cfg["eda"]["rare_level_listings"]))
    e = ctx.cfg["evaluate"]
    out, rows = {}, []
    view = ctx.cfg["primary"]["view"]
    # every fit on the training listings, side by side on the cores (`parallel.run_fits`, one
    # thread each: a two-thread LightGBM on a busy machine waits on its threads, 27x slower on
    # New York with 15 processes on 2 cores), each returning its test predictions; without the
    # column, the trained candidate itself when the view never had it
    frame = pd.concat([train[with_col], test[with_col]], ignore_index=True)
    target = pd.concat([train["log_price"], test["log_price"]], ignore_index=True)
    on_train, on_test = np.arange(len(train)), np.arange(len(train), len(frame))
    jobs, names, pred = [], [], {}
    for model in a["many_levels_models"]:
        enc0 = "native" if model == "lgbm" else "onehot"
        if column not in cols and f"{model}-{enc0}" in ctx.selection["price"][view]["candidates"]:
            pred[f"{model} without"] = ctx.model("price", view, f"{model}-{enc0}").predict(
                test[base])
        else:
            jobs.append(Job(build_model(model, enc0, base, ctx.cfg, ctx.seed), on_train,
                            on_test, predict))
            names.append(f"{model} without")
        for m, enc in _encoding_variants([model]):
            jobs.append(Job(build_model(m, enc, with_col, cfg, ctx.seed), on_train, on_test,
                            predict))
            names.append(f"{m}-{enc}")
    pred.update({name: p for name, (p, _) in zip(names, run_fits(jobs, frame, target))})
    for model in a["many_levels_models"]:
        stats = {}
        for name in [f"{model} without", *(f"{m}-{enc}" for m, enc in
                                          _encoding_variants([model]))]:
            err2 = (y - pred[name]) ** 2
            stats[name] = {"rmse": bs.root_mean_of(err2),
                           "rmse_unseen_levels": bs.root_mean_of(err2, unseen),
                           "rmse_rare_levels": bs.root_mean_of(err2, rare)}
        ref = f"{model} without"
        cmp = bs.compare(stats, units, ref, int(e["bootstrap_resamples"]), ctx.seed)
        for name, x in cmp.items():
            row = {"model": name, **{k: float(v) for k, v in x["point"].items()},
                   "rmse_interval": x["interval"]["rmse"]}
            if f"vs_{ref}" in x:
                d = x[f"vs_{ref}"]["rmse"]
                row.update(vs_without=d["diff"], vs_without_lo=d["lo"], vs_without_hi=d["hi"],
                           within_noise=d["within_noise"])
            rows.append(row)
            out[name] = row
    table = pd.DataFrame(rows)
    facts = {"column": column, "candidates": candidates, "levels": int(len(seen)),
             "test_listings": int(len(test)), "unseen_share": float(unseen.mean()),
             "unseen_listings": int(unseen.sum()), "rare_listings": int(rare.sum()),
             "results": out,
             "best": str(table.loc[table["rmse"].idxmin(), "model"])}
    return facts, table


# ---------------------------------------------------------------- independence: hosts

def host_icc(resid: np.ndarray, host: np.ndarray, n: int, seed: int) -> dict:
    """Intra-class correlation of residuals within hosts (one-way ANOVA estimator, hosts with two
    or more listings), with a bootstrap interval over hosts: the share of residual variance
    that a host's listings share."""
    frame = pd.DataFrame({"host": host, "r": resid})
    size = frame.groupby("host")["r"].transform("size")
    frame = frame[size >= 2]
    g = frame.groupby("host")["r"].agg(n="size", s="sum", q=lambda v: float((v**2).sum()))
    per = np.column_stack([np.ones(len(g)), g["n"], g["s"], g["q"], g["s"] ** 2 / g["n"],
                           g["n"] ** 2])

    def icc(t):  # t: (resamples, 6) weighted sums over hosts
        G, N, S, Q, B, N2 = t.T
        msb = (B - S**2 / N) / (G - 1)
        msw = (Q - B) / (N - G)
        k0 = (N - N2 / N) / (G - 1)
        return (msb - msw) / (msb + (k0 - 1) * msw)

    point = float(icc(per.sum(axis=0)[None, :])[0])
    rs = bs.Resamples(np.arange(len(g)), n, seed)
    boot = icc(rs.counts.astype(float) @ per)
    return {"icc": point, "interval": bs.interval(boot), "hosts": int(len(g)),
            "listings": int(g["n"].sum())}


def independence(ctx: AnalysisContext, test: pd.DataFrame, predictions: dict[str, np.ndarray],
                 linear_cv: dict[str, list[tuple[pd.Series, float]]]) -> dict:
    """Residual correlation within a host on the test listings, for the models whose test
    `predictions` are given (the linear model and the selected one); and what ignoring it does
    to CV: the linear model's RMSE on folds that split hosts (shuffled K-fold) against folds
    that hold whole hosts out (`linear_folds`)."""
    host = ctx.rows("test").group
    n = int(ctx.cfg["evaluate"]["bootstrap_resamples"])
    out = {"icc": {name: host_icc(test["log_price"].to_numpy() - pred, host, n, ctx.seed)
                   for name, pred in predictions.items()}}
    cv = {name: float(np.mean([score for _, score in fits])) for name, fits in linear_cv.items()}
    out["linear_cv_rmse"] = cv
    # negative: folds that split hosts flatter the CV RMSE
    change = 100 * (cv["hosts split"] / cv["hosts held out"] - 1)
    out["cv_split_change_pct"] = change
    out["cv_split_verdict"] = ("does not flatter it" if change >= 0 else
                               "barely flatters it" if change > -1 else "flatters it")
    return out


# ---------------------------------------------------------------- trees against linear

def test_predictions(ctx: AnalysisContext, test: pd.DataFrame,
                     cols: list[str]) -> dict[str, np.ndarray]:
    """Every trained candidate's (not the baseline's) predictions on the test listings, made
    once for the analyses that compare them."""
    view = ctx.cfg["primary"]["view"]
    return {n: np.asarray(ctx.model("price", view, n).predict(test[cols]))
            for n in ctx.selection["price"][view]["candidates"] if n != "baseline"}


def against_linear(ctx: AnalysisContext, test: pd.DataFrame, predictions: dict[str, np.ndarray],
                   units: np.ndarray) -> list[dict]:
    """Every candidate against `linear-onehot` on the test listings (`test_predictions`): RMSE
    of log price and the paired host-bootstrap interval of the difference (negative: the
    candidate is better)."""
    y = test["log_price"].to_numpy()
    names = list(predictions)
    stats = {n: {"rmse": bs.root_mean_of((y - predictions[n]) ** 2)} for n in names}
    cmp = bs.compare(stats, units, "linear-onehot",
                     int(ctx.cfg["evaluate"]["bootstrap_resamples"]), ctx.seed)
    rows = []
    for n in names:
        d = cmp[n].get("vs_linear-onehot", {}).get("rmse")
        rows.append({"model": n, "rmse": cmp[n]["point"]["rmse"],
                     **({"minus_linear": d["diff"], "lo": d["lo"], "hi": d["hi"],
                         "verdict": ("within noise" if d["within_noise"] else
                                     "better" if d["diff"] < 0 else "worse")} if d else {})})
    return rows


def many_levels_plot(levels: dict, table: pd.DataFrame):
    fig, ax = figure(f"Test RMSE of log price with {levels['column']} encoded four ways "
                     f"(95% intervals over hosts)", "test RMSE (log price)", "")
    lo = table["rmse"] - table["rmse_interval"].map(lambda x: x[0])
    hi = table["rmse_interval"].map(lambda x: x[1]) - table["rmse"]
    ax.barh(table["model"], table["rmse"], xerr=[lo, hi], color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlim(table["rmse"].min() * 0.9, table["rmse"].max() * 1.05)
    return fig


def _levels_text(lv: dict, table: pd.DataFrame) -> str:
    cands = pd.DataFrame(lv["candidates"])
    head = ("Candidate columns (levels in the training listings; informative when the "
            "cross-fitted target encoding correlates with log price):\n\n"
            + markdown_table(cands.round(4)) + "\n\n")
    if lv["column"] is None:
        return head + "No candidate column is informative: the test is left out."
    show = table[["model", "rmse", "rmse_unseen_levels", "rmse_rare_levels", "vs_without",
                  "vs_without_lo", "vs_without_hi"]]
    return head + (
        f"The test runs on **{lv['column']}**: {lv['levels']:,} levels in training; "
        f"{lv['unseen_listings']:,} of {lv['test_listings']:,} test listings "
        f"({100 * lv['unseen_share']:.1f}%) have a level training never saw, "
        f"{lv['rare_listings']:,} one seen fewer than the rare-level count. Each model on the "
        f"listing view plus the column, encoded four ways (target encoding cross-fitted inside "
        f"the training rows; tree buckets from a shallow tree on the level means; LightGBM's "
        f"native categorical splits), fitted on the training listings; `vs_without` is the "
        f"paired difference in test RMSE from the same model without the column, with its "
        f"95% interval over hosts (negative: the column helps):\n\n"
        + markdown_table(show.round(4))
        + f"\n\nBest: `{lv['best']}`. One-hot pools levels rarer than its minimum frequency, "
          "so rare and unseen streets fall into one column; target encoding shrinks a rare "
          "level to the global mean; tree bucketing groups levels by their mean price; native "
          "splits group levels inside each tree.\n\n![many levels](analysis/many_levels.png)")


def _independence_text(ind: dict) -> str:
    lines = [f"- `{name}`: residual intra-class correlation within a host {x['icc']:.3f} "
             f"[{x['interval'][0]:.3f}, {x['interval'][1]:.3f}] ({x['hosts']:,} test hosts with "
             f"two or more listings, {x['listings']:,} listings)"
             for name, x in ind["icc"].items()]
    cv = ind["linear_cv_rmse"]
    return ("A host prices all of their listings alike (a taste no column records), so the "
            "residuals of one host's listings may correlate, against the linear model's "
            "independence assumption. Measured on the test listings (one-way ANOVA estimator, 95% "
            "interval over hosts):\n\n" + "\n".join(lines)
            + f"\n\nWhy CV and the test intervals hold whole hosts out: correlated "
              f"residuals make a split host's listings look easier than a new host's, and "
              f"naive standard errors too small. The linear model cannot memorise a host: its "
              f"CV RMSE is {cv['hosts held out']:.4f} with hosts held out and "
              f"{cv['hosts split']:.4f} when folds split a host's listings "
              f"({ind['cv_split_change_pct']:+.2f}%: splitting hosts {ind['cv_split_verdict']}); "
              f"a tree can recognise a host from its columns "
              f"(years, response rate, listings count), which is what the grouping guards.")


def _against_linear_text(rows: list[dict], column: str) -> str:
    table = pd.DataFrame(rows)
    worse = [r for r in rows if r.get("verdict") in ("worse", "within noise")
             and not r["model"].startswith("linear")]
    return ("Every candidate against `linear-onehot` on the test listings: the paired "
            "difference in RMSE of log price with its 95% interval over hosts (negative: the "
            "candidate is better).\n\n" + markdown_table(table.round(4)) + "\n\n"
            + ("Tree models not better than linear: " + ", ".join(
                f"`{r['model']}` ({r['minus_linear']:+.4f} [{r['lo']:+.4f}, {r['hi']:+.4f}])"
                for r in worse)
               + f". A forest fed one indicator per {column} level must split on one level at "
                 f"a time, and with a share of the columns tried at each split it rarely finds "
                 f"the many small indicators that together carry the {column} premium, an "
                 "additive effect the linear model gets in one coefficient each; with target "
                 "encoding or buckets the same forest sees the premium as one number. Trees "
                 "win where interactions and thresholds carry the signal and the categories "
                 "reach them in few splits; they lose where the signal is additive and spread "
                 "over many sparse columns." if worse else
               "Every tree candidate is better than the linear model here."))
