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

import numpy as np
import pandas as pd

from cases.airbnb.tasks import build_model
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table, plt
from cases.lifecycle.parallel import Job, predict, run_fits
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
        rows.append({"model": c["params"]["model"], "encoding": c["params"]["encoding"],
                     "cv_rmse": c["cv"]["rmse"]["mean"], "cv_rmse_sd": c["cv"]["rmse"]["std"],
                     "test_rmse": test[name]["rmse"], "test_r2": test[name]["r2"],
                     "test_mae_dollars": test[name]["mae_dollars"]})
    return pd.DataFrame(rows).sort_values("cv_rmse").reset_index(drop=True)


def linear_checks(ctx: AnalysisContext, train: pd.DataFrame, test: pd.DataFrame,
                  cols: list[str]) -> tuple[dict, dict]:
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
    folds = group_folds(ctx.rows("train").group, int(ctx.cfg["train"]["cv_folds"]), ctx.seed)
    coefs = []
    for tr, _ in folds:
        m = build_model("linear", "onehot", cols, ctx.cfg, ctx.seed).fit(
            train.iloc[tr][cols], train["log_price"].iloc[tr])
        coefs.append(linear_coefficients(m, cols).reindex(num))
    spread = pd.concat(coefs, axis=1)
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
    # every fit side by side on the cores (`parallel.run_fits`): per model and fold the clean
    # target, the target with outliers (drawn in this order), and the junk category
    plain, junked = [], []
    for model, enc in models:
        for tr, va in folds:
            y_dirty = y.to_numpy()[tr].copy()
            hit = rng.uniform(size=len(tr)) < float(a["outlier_share"])
            y_dirty[hit] += np.log(10)
            for target in (None, y_dirty):
                plain.append(Job(build_model(model, enc, cols, ctx.cfg, ctx.seed), tr, va,
                                 predict, target=target))
            junked.append(Job(build_model(model, enc, jcols, cfg_junk, ctx.seed), tr, va,
                              predict))
    fitted = run_fits(plain, train[cols].reset_index(drop=True), y)
    fitted_junk = run_fits(junked, trial[jcols].reset_index(drop=True), y)
    rows = []
    for k, (model, enc) in enumerate(models):
        clean, dirty, noisy = [], [], []
        for f, (_, va) in enumerate(folds):
            j = k * len(folds) + f
            clean.append(_rmse(y.to_numpy()[va], fitted[2 * j][0]))
            dirty.append(_rmse(y.to_numpy()[va], fitted[2 * j + 1][0]))
            noisy.append(_rmse(y.to_numpy()[va], fitted_junk[j][0]))
        c, d, n = np.mean(clean), np.mean(dirty), np.mean(noisy)
        rows.append({"model": f"{model}-{enc}", "cv_rmse": c, "with_outliers": d,
                     "outlier_cost_pct": 100 * (d / c - 1), "with_junk_category": n,
                     "junk_cost_pct": 100 * (n / c - 1)})
    return pd.DataFrame(rows)


def interaction(ctx: AnalysisContext, test: pd.DataFrame, cols: list[str]) -> tuple[dict, dict]:
    """The strongest pairwise interaction in LightGBM (native categories), from SHAP
    interaction values, and its dependence plot."""
    import shap

    model = ctx.model("price", ctx.cfg["primary"]["view"], "lgbm-native")
    sample = test.sample(min(int(ctx.cfg["analysis"]["shap_rows"]), len(test)),
                         random_state=ctx.seed)
    X = model.named_steps["model"].named_steps["cast"].transform(
        model.named_steps["encode"].transform(sample[cols]))
    booster = model.named_steps["model"].named_steps["model"]
    # categories as their codes: LightGBM's categorical splits are on those codes
    codes = X.apply(lambda s: s.cat.codes.replace(-1, np.nan).astype(float)
                    if isinstance(s.dtype, pd.CategoricalDtype) else s.astype(float))
    inter = shap.TreeExplainer(booster).shap_interaction_values(codes)
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
        palette = plt.get_cmap("tab10").colors
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


def analyze(ctx: AnalysisContext) -> EdaResult:
    view = ctx.cfg["primary"]["view"]
    cols = ctx.meta["views"][view]
    train, test = ctx.train, ctx.test
    table = encoding_table(ctx)
    checks, figures = linear_checks(ctx, train, test, cols)
    robust = robustness(ctx, train, cols)
    inter, fig_inter = interaction(ctx, test, cols)
    figures.update(fig_inter)
    figures["encodings_table"] = table.round(6)
    fig, ax = figure("CV RMSE of log price: model x encoding", "CV RMSE (log price)", "")
    labels = [f"{r.model}-{r.encoding}" for r in table.itertuples()]
    ax.barh(labels, table["cv_rmse"], xerr=table["cv_rmse_sd"], color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlim(table["cv_rmse"].min() * 0.9, table["cv_rmse"].max() * 1.05)
    figures["encodings"] = fig
    # the linear model's residuals where the trees do better
    lin = ctx.model("price", view, "linear-onehot")
    # the best tree model by CV (the selected model may be the linear one)
    trees = table[table["model"] != "linear"]
    best = f"{trees.iloc[0]['model']}-{trees.iloc[0]['encoding']}"
    tree = ctx.model("price", view, best)
    res = test.assign(linear=test["log_price"] - lin.predict(test[cols]),
                      best=test["log_price"] - tree.predict(test[cols]))
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
             "extrapolation": extra}
    c = checks
    spread = (max(c["coverage_by_fitted_quintile_pct"]) - min(c["coverage_by_fitted_quintile_pct"]))
    sections = [
        ("Model x encoding, same host-grouped folds", (
            markdown_table(table.round(4)) + "\n\n![encodings](analysis/encodings.png)")),
        ("The linear model's assumptions, checked", (
            f"- Normality of residuals: skew {c['skew']:.2f}, excess kurtosis "
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
