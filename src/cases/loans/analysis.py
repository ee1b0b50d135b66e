"""The loans case's own analyses: reason codes for every rejected applicant, their agreement
with TreeSHAP and with the scorecard, Alice, Bob and Candace, the acceptance curve against debt,
counterfactuals checked by re-scoring, and the fairness audit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table
from cases.lifecycle.ingest import read_table, validate
from cases.lifecycle.parallel import predict_threads
from cases.loans import explain as ex
from cases.loans.data import SCENARIO, true_logit
from cases.loans.fairness import attributes


def named_applicants(acfg) -> pd.DataFrame:
    base = dict(acfg["applicants"]["base"])
    rows = [{"name": name, **base, **dict(over)} for name, over in acfg["applicants"]["people"].items()]
    return pd.DataFrame(rows)


def load_applicants(path: str) -> pd.DataFrame:
    """An applicants file to explain: exactly the scenario's inputs (plus an optional `name`),
    every value in range; anything else is refused by name."""
    frame = read_table(path, "applicants file")
    allowed = set(SCENARIO.names) | {"name"}
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise CasebookError(f"{path}: unknown column(s) {', '.join(unknown)}; expected "
                            f"{', '.join(SCENARIO.names)} (and optionally name)")
    valid = validate(frame, SCENARIO, path)
    valid.insert(0, "name", frame["name"].astype(str) if "name" in frame else
                 [f"applicant_{i + 1}" for i in range(len(frame))])
    return valid


def _reasons_table(ids, score, contrib, cols, texts, k) -> pd.DataFrame:
    codes = ex.reason_codes(contrib, cols, texts, k)
    rows = []
    for i, s, c in zip(ids, score, codes):
        row = {"applicant": i, "approval_score": round(float(s), 4)}
        for j in range(k):
            row[f"reason_{j + 1}"] = c[j][1] if j < len(c) else ""
            row[f"feature_{j + 1}"] = c[j][0] if j < len(c) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def analyze(ctx: AnalysisContext) -> EdaResult:
    cfg, acfg = ctx.cfg, ctx.cfg["analysis"]
    threshold, k = float(acfg["threshold"]), int(acfg["max_reasons"])
    texts = dict(acfg["reason_texts"])
    protected = [c for group in cfg["features"]["protected"].values() for c in group]
    sections: list[tuple[str, str]] = []
    figures: dict = {}
    facts: dict = {"threshold": threshold}
    for task in ctx.selection:
        view = task
        cols = list(ctx.meta["views"][view])
        ex.check_inputs_not_protected(cols, protected)
        train = ctx.rows("train", f"approve_{task}").frame
        test = ctx.rows("test", f"approve_{task}").frame
        selected = ctx.selection[task][view]["selected"]
        # the explanations score millions of masked rows: every core predicts
        model = predict_threads(ctx.model(task, view))
        lgbm = predict_threads(ctx.model(task, view, "lgbm"))
        logistic = ctx.model(task, view, "logistic")
        score = ex.approval(model, test[cols])
        cap = acfg.get("explain_rows")  # null: every rejected test applicant
        rejected = np.flatnonzero(score < threshold)[: None if cap is None else int(cap)]
        Xr = test[cols].iloc[rejected].reset_index(drop=True)
        background = train[cols].sample(min(int(acfg["background_rows"]), len(train)),
                                        random_state=ctx.seed)
        agn = ex.agnostic_shap(model, Xr, background, ctx.seed)
        # the reasons given: against the approved applicant most like each one (training
        # applicants the model approves), so only what differs from an approval can be a reason
        pool = _approved_pool(model, train[cols], threshold)
        scale = train[cols].std()
        _, ref_pos, ref_contrib = ex.reference_reasons(model, Xr, pool, scale, texts, k, ctx.seed)
        reasons = _reasons_table(rejected, score[rejected], ref_contrib, cols, texts, k)
        figures[f"reasons_{task}"] = reasons
        figures[f"reasons_vs_average_{task}"] = _reasons_table(rejected, score[rejected], agn,
                                                               cols, texts, k)
        # the checks: exact TreeSHAP of the tree model, and the logistic scorecard
        rej_l = np.flatnonzero(ex.approval(lgbm, test[cols]) < threshold)[
            : None if cap is None else int(cap)]
        Xl = test[cols].iloc[rej_l].reset_index(drop=True)
        agn_l = agn if selected == "lgbm" else ex.agnostic_shap(lgbm, Xl, background, ctx.seed)
        tree = ex.tree_shap(lgbm, Xl)
        points = ex.scorecard_points(logistic, Xr, train[cols])
        agree_tree = ex.agreement(ex.top_reason(agn_l, cols), ex.top_reason(tree, cols))
        agree_card = ex.agreement(ex.top_reason(agn, cols), ex.top_reason(points, cols))
        freq = reasons["feature_1"].value_counts()
        freq_avg = pd.Series(ex.top_reason(agn, cols)).value_counts()
        card_top = pd.Series(ex.top_reason(points, cols)).value_counts()
        facts[task] = {
            "selected": selected, "test_rows": int(len(test)),
            "rejected": int((score < threshold).sum()), "explained": int(len(rejected)),
            "agreement_top_reason_agnostic_vs_treeshap": agree_tree,
            "agreement_top_reason_agnostic_vs_scorecard": agree_card,
            "top_reason_frequency": {str(f): int(n) for f, n in freq.items() if f},
            "top_reason_frequency_vs_average": {str(f): int(n) for f, n in freq_avg.items()},
            "reference_inputs_differing_median": float(np.median(
                ex.differ(Xr.to_numpy(dtype=float),
                           pool.iloc[ref_pos].to_numpy(dtype=float)).sum(axis=1)))
            if len(Xr) else float("nan"),
            "scorecard_top_reason_frequency": {str(f): int(n) for f, n in card_top.items()},
            "max_reasons_given": int(reasons.filter(like="feature_").ne("").sum(axis=1).max())
            if len(reasons) else 0,
        }
        # counterfactuals: one actionable feature, smallest change, verified by re-scoring
        found_cf = ex.counterfactuals(model, Xr, dict(acfg["actionable"][task]), train[cols],
                                      threshold)
        cfs = [{"applicant": int(rejected[i]), **(cf or {"feature": None})}
               for i, cf in enumerate(found_cf)]
        cft = pd.DataFrame(cfs)
        figures[f"counterfactuals_{task}"] = cft
        found = cft[cft["feature"].notna()]
        facts[task]["counterfactuals"] = {
            "searched": int(len(cft)), "found": int(len(found)),
            "verified": int(found["verified"].sum()) if len(found) else 0}
        # fairness audit on the test applicants (protected attributes never seen by the model)
        attrs = attributes(test)
        table = ex.audit(test, score, test[f"approve_{task}"].to_numpy(), threshold, attrs)
        figures[f"audit_{task}"] = table.round(4)
        facts[task]["audit"] = {
            a: {"air_model": float(t["air_model"].min()), "air_actual": float(t["air_actual"].min())}
            for a, t in table.groupby("attribute")} if len(table) else {}
        sections.append((f"Reason codes: {task} ({len(rejected):,} rejected test applicants "
                         f"explained)", (
            f"Selected model `{selected}`; an applicant is approved when the approval score "
            f"reaches {threshold}. The reasons given answer \"why was I rejected and they "
            f"approved\": Shapley values of the approval score against the approved training "
            f"applicant most like each one (the fewest inputs that differ, then the nearest; "
            f"median {facts[task]['reference_inputs_differing_median']:.0f} inputs differ), "
            f"from predict calls only, no weights; an input equal to the reference's is never a "
            f"reason, and the same inputs give the same reasons in any batch. At most {k} per "
            f"applicant, only inputs that pushed toward rejection. The checks below use "
            f"permutation SHAP against the average applicant (a background of "
            f"{len(background)} training applicants).\n\n"
            f"- Top reason agrees with exact TreeSHAP of the LightGBM model for "
            f"{100 * agree_tree:.0f}% of its rejections.\n"
            f"- Top reason agrees with the logistic scorecard (points below the best value) for "
            f"{100 * agree_card:.0f}%. The two answer different questions: SHAP measures each "
            f"input against the average applicant, the scorecard against the best value seen in "
            f"training, so inputs whose best value is far from typical (the scorecard's most "
            f"frequent top reason here: `{card_top.index[0] if len(card_top) else 'none'}`) "
            f"lead its list.\n"
            f"- Counterfactuals: {len(found)} of {len(cft)} searched found a single-feature change "
            f"that turns the decision; {facts[task]['counterfactuals']['verified']} verified by "
            f"re-scoring.\n\n"
            "Most frequent top reasons (against the nearest approved applicant):\n\n"
            + markdown_table(freq.rename_axis("feature").reset_index(name="applicants").head(8))
            + "\n\n"
            "First rejected applicants:\n\n" + markdown_table(
                reasons.head(5)[["applicant", "approval_score", "reason_1", "reason_2"]]))))
        sections.append((f"Fairness audit: {task}", (
            "Protected attributes are never model inputs and never reasons; here they are used "
            "only to audit. `air` is the adverse impact ratio (group approval rate over the "
            "highest group's), for the model's decisions and for the historical ones.\n\n"
            + (markdown_table(table.round(3)) if len(table) else "No protected attributes."))))
        verdicts = [c for c in (acfg.get("verdict_inputs") or {}).get(task, []) if c in cols]
        if verdicts:
            w, wsec, wfig = without_verdict(ctx, task, cols, verdicts, model, train, test,
                                            threshold, texts, k)
            facts[task]["without_verdict"] = w
            figures.update(wfig)
            sections.append(wsec)
        if task == "scenario":
            _scenario_example(ctx, model, cols, train, test, background, threshold, k, texts,
                              acfg, sections, figures, facts)
    return EdaResult(sections=sections, figures=figures, facts=facts,
                     timings={"service": _service_latency(ctx, threshold, k, texts)})


def without_verdict(ctx: AnalysisContext, task: str, cols: list[str], verdicts: list[str],
                    model, train: pd.DataFrame, test: pd.DataFrame, threshold: float, texts,
                    k: int):
    """The selected candidate refitted on the same training rows without the inputs that are
    someone's verdict rather than a fact about the applicant (HMDA `gdlin`: the underwriter's
    "meets the guidelines"), scored on the same test rows and bootstrap resamples: AUC, log
    loss, the adverse impact ratios and the reasons it gives."""
    from cases.lifecycle import bootstrap as bs
    from cases.loans.fairness import fairness_statistics

    name = ctx.selection[task][task]["selected"]
    kept = [c for c in cols if c not in verdicts]
    cand = {c.name: c for c in ctx.tasks[task].candidates(task, kept)}[name]
    target = f"approve_{task}"
    refit = predict_threads(cand.build().fit(train[kept], train[target]))
    y = test[target].to_numpy()
    e = ctx.cfg["evaluate"]
    _, units = bs.unit_ids(ctx.rows("test", target), dict(e["bootstrap_unit"]))
    rs = bs.Resamples(units, int(e["bootstrap_resamples"]), ctx.seed,
                      int(e["bootstrap_rowwise_resamples"]))
    stats, points, scores = {}, {}, {}
    for label, m, c in (("with", model, cols), ("without", refit, kept)):
        p = ex.approval(m, test[c])
        scores[label] = p
        st = bs.binary_statistics(y, p)
        st = {x: st[x] for x in ("auc", "log_loss", "brier") if x in st}
        st.update(fairness_statistics(y, p, test, ctx.cfg))
        stats[label] = st
        points[label] = {x: v.point() for x, v in st.items()}
    boot = bs.resample_all(stats, rs)
    pair = bs.paired(points["without"], points["with"], boot["without"], boot["with"])
    table = pd.DataFrame([{"metric": x, "with": points["with"][x],
                           "without": points["without"][x], "diff": pair[x]["diff"],
                           "lo": pair[x]["lo"], "hi": pair[x]["hi"],
                           "within_noise": pair[x]["within_noise"]} for x in pair])
    rejected = np.flatnonzero(scores["without"] < threshold)
    Xr = test[kept].iloc[rejected].reset_index(drop=True)
    codes, _, _ = ex.reference_reasons(refit, Xr, _approved_pool(refit, train[kept], threshold),
                                       train[kept].std(), texts, k, ctx.seed)
    top = pd.Series([c[0][0] for c in codes if c]).value_counts()
    facts = {"inputs": verdicts, "candidate": name, "with": points["with"],
             "without": points["without"], "paired": pair,
             "rejected_with": int((scores["with"] < threshold).sum()),
             "rejected_without": int(len(rejected)),
             "top_reason_frequency": {str(f): int(n) for f, n in top.items()}}
    section = (f"Without the underwriter's verdict: {task} (`{'`, `'.join(verdicts)}` left out)", (
        f"`{'`, `'.join(verdicts)}` is the underwriter's own judgement ({texts[verdicts[0]]}), "
        f"not a fact about the applicant. `{name}` refitted on the same training applications "
        f"without it, scored on the same test applications and resamples (`diff` = without "
        f"minus with, paired 95% interval; `air_*`: adverse impact ratios at {threshold}):\n\n"
        + markdown_table(table.round(4))
        + f"\n\nRejected test applications: {facts['rejected_with']} with it, "
          f"{facts['rejected_without']} without. Top reasons without it (against the nearest "
          f"approved applicant):\n\n"
        + markdown_table(top.rename_axis("feature").reset_index(name="applicants").head(6))
        + "\n\nWhich a lender can use as a reason: an adverse-action notice must name the "
          "specific reasons, and \"does not meet our guidelines\" restates the decision. The "
          "model without the verdict gives reasons an applicant can act on; with it, the "
          "verdict is the reason and the inputs behind it go unnamed."))
    return facts, section, {f"without_verdict_{task}": table.round(6)}


def _approved_pool(model, X: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The applicants the model approves: the references reasons are given against."""
    return X[ex.approval(model, X) >= threshold]


def _scenario_example(ctx, model, cols, train, test, background, threshold, k, texts, acfg,
                      sections, figures, facts) -> None:
    people = named_applicants(acfg)
    if acfg.get("applicants_path"):
        people = pd.concat([people, load_applicants(str(Path(acfg["applicants_path"])))],
                           ignore_index=True)
    X = people[cols]
    score = ex.approval(model, X)
    # reasons against the approved applicant most like each one: the other named applicants
    # who are approved (Candace for Alice and Bob) and the training applicants the model approves
    named_ok = X[score >= threshold]
    pool = pd.concat([named_ok, _approved_pool(model, train[cols], threshold)],
                     ignore_index=True)
    codes, ref_pos, _ = ex.reference_reasons(model, X, pool, train[cols].std(), texts, k,
                                             ctx.seed)
    ok_names = list(people["name"][score >= threshold])
    reference = [ok_names[r] if r < len(ok_names) else f"training applicant {r - len(ok_names)}"
                 for r in ref_pos]
    true_p = 1 / (1 + np.exp(-true_logit(X, ctx.cfg["data"]["scenario"])))
    rows = []
    for i, name in enumerate(people["name"]):
        decision = "approved" if score[i] >= threshold else "rejected"
        cf = ex.counterfactual(model, X.iloc[[i]], dict(acfg["actionable"]["scenario"]),
                               train[cols], threshold) if decision == "rejected" else None
        rows.append({"name": name, "debt_k": float(X["debt_k"].iloc[i]),
                     "approval_score": float(score[i]), "true_probability": float(true_p[i]),
                     "decision": decision,
                     "true_decision": "approved" if true_p[i] >= threshold else "rejected",
                     "reference": reference[i] if decision == "rejected" else None,
                     "reasons": [c[1] for c in codes[i]] if decision == "rejected" else [],
                     "reason_features": [c[0] for c in codes[i]] if decision == "rejected" else [],
                     "counterfactual": cf})
    facts["applicants"] = rows
    hold = dict(acfg["curve"]["hold"])
    grid = np.linspace(float(acfg["curve"]["min"]), float(acfg["curve"]["max"]),
                       int(acfg["curve"]["points"]))
    feature = acfg["curve"]["feature"]
    avg = ex.curve(model, test[cols], feature, grid, hold)
    base = X.iloc[[0]]
    ice = ex.curve(model, base, feature, grid)
    # where the profile (the first applicant's) crosses the threshold: the same search as the
    # counterfactuals (so the story's two figures are one value), the grid if she is approved
    cross = (ex.counterfactual(model, base, {feature: "down"}, train[cols], threshold)
             if score[0] < threshold else None)
    crossing = cross["to"] if cross else next(
        (float(g) for g, v in zip(grid, ice) if v < threshold), None)
    facts["acceptance_curve"] = {"feature": feature, "grid": grid.tolist(), "average": avg.tolist(),
                                 "profile": ice.tolist(), "profile_crosses_threshold_at": crossing,
                                 "falls": bool(avg[-1] < avg[0])}
    figures["acceptance_curve_data"] = pd.DataFrame({feature: grid, "average_approval": avg,
                                                     "profile_approval": ice})
    fig, ax = figure(f"Approval against {feature} (cards={hold.get('n_cards')}, credit age="
                     f"{hold.get('credit_age_years')} y)", "current debt ($K)",
                     "approval probability")
    ax.plot(grid, avg, label=f"average over {len(test):,} applicants")
    ax.plot(grid, ice, ls="--", label="their shared profile")
    ax.axhline(threshold, color="grey", lw=0.8, ls=":")
    for r in rows[:3]:
        ax.scatter([r["debt_k"]], [r["approval_score"]], zorder=3)
        ax.annotate(f"{r['name']} ({r['decision']})", (r["debt_k"], r["approval_score"]),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.legend(fontsize=8)
    figures["acceptance_curve"] = fig
    table = pd.DataFrame([{**{k2: v for k2, v in r.items() if k2 not in ("counterfactual",
                                                                         "reason_features")},
                           "reasons": "; ".join(r["reasons"]),
                           "counterfactual": (f"{r['counterfactual']['feature']} "
                                              f"{r['counterfactual']['from']:.2f} -> "
                                              f"{r['counterfactual']['to']:.2f}")
                           if r["counterfactual"] else ""} for r in rows])
    figures["named_applicants"] = table
    sections.insert(0, ("Alice, Bob and Candace", (
        "Each has 10 cards and 5 years of credit age; the rest of the profile is held equal "
        "(income, utilization, delinquencies, inquiries); only the debt differs. A rejected "
        "applicant's reasons are given against the approved applicant most like them "
        "(`reference`): what differs from them is all that can be a reason.\n\n"
        + markdown_table(table.round(3)) + "\n\n![acceptance curve](analysis/acceptance_curve.png)"
        + f"\n\nThe average approval over every test applicant with cards and credit age set to "
          f"theirs falls from {avg[0]:.2f} at ${grid[0]:.0f}K of debt to {avg[-1]:.2f} at "
          f"${grid[-1]:.0f}K; their own profile crosses the {threshold} line at "
          f"${crossing if crossing is not None else float('nan'):.1f}K.")))


def _service_latency(ctx: AnalysisContext, threshold: float, k: int, texts) -> dict:
    """One applicant's score plus reasons, as a reasons service would answer it."""
    task = ctx.cfg["primary"]["task"]
    cols = list(ctx.meta["views"][task])
    model = predict_threads(ctx.model(task, task))
    rows = ctx.rows("train", f"approve_{task}").frame
    background = rows[cols].sample(min(int(ctx.cfg["analysis"]["background_rows"]), len(rows)),
                                   random_state=ctx.seed)
    one = rows[cols].iloc[[0]]
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        ex.approval(model, one)
        ex.reason_codes(ex.agnostic_shap(model, one, background, ctx.seed), cols, texts, k)
        timings.append((time.perf_counter() - t0) * 1000)
    return {"task": task, "score_plus_reasons_ms_p50": float(np.median(timings)),
            "calls": len(timings)}
