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
from cases.loans import explain as ex
from cases.loans.data import SCENARIO, true_logit


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
        model = ctx.model(task, view)
        lgbm = ctx.model(task, view, "lgbm")
        logistic = ctx.model(task, view, "logistic")
        score = ex.approval(model, test[cols])
        cap = acfg.get("explain_rows")  # null: every rejected test applicant
        rejected = np.flatnonzero(score < threshold)[: None if cap is None else int(cap)]
        Xr = test[cols].iloc[rejected].reset_index(drop=True)
        background = train[cols].sample(min(int(acfg["background_rows"]), len(train)),
                                        random_state=ctx.seed)
        agn = ex.agnostic_shap(model, Xr, background, ctx.seed)
        reasons = _reasons_table(rejected, score[rejected], agn, cols, texts, k)
        figures[f"reasons_{task}"] = reasons
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
        card_top = pd.Series(ex.top_reason(points, cols)).value_counts()
        facts[task] = {
            "selected": selected, "test_rows": int(len(test)),
            "rejected": int((score < threshold).sum()), "explained": int(len(rejected)),
            "agreement_top_reason_agnostic_vs_treeshap": agree_tree,
            "agreement_top_reason_agnostic_vs_scorecard": agree_card,
            "top_reason_frequency": {str(f): int(n) for f, n in freq.items() if f},
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
        attrs = _attributes(task, test)
        table = ex.audit(test, score, test[f"approve_{task}"].to_numpy(), threshold, attrs)
        figures[f"audit_{task}"] = table.round(4)
        facts[task]["audit"] = {
            a: {"air_model": float(t["air_model"].min()), "air_actual": float(t["air_actual"].min())}
            for a, t in table.groupby("attribute")} if len(table) else {}
        sections.append((f"Reason codes: {task} ({len(rejected):,} rejected test applicants "
                         f"explained)", (
            f"Selected model `{selected}`; an applicant is approved when the approval score "
            f"reaches {threshold}. Reasons come from permutation SHAP on the approval "
            f"probability over a background of {len(background)} training applicants: predict "
            f"calls only, no weights. At most {k} per applicant, only inputs that pushed toward "
            f"rejection.\n\n"
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
            "Most frequent top reasons:\n\n" + markdown_table(
                freq.rename_axis("feature").reset_index(name="applicants").head(8)) + "\n\n"
            "First rejected applicants:\n\n" + markdown_table(
                reasons.head(5)[["applicant", "approval_score", "reason_1", "reason_2"]]))))
        sections.append((f"Fairness audit: {task}", (
            "Protected attributes are never model inputs and never reasons; here they are used "
            "only to audit. `air` is the adverse impact ratio (group approval rate over the "
            "highest group's), for the model's decisions and for the historical ones.\n\n"
            + (markdown_table(table.round(3)) if len(table) else "No protected attributes."))))
        if task == "scenario":
            _scenario_example(ctx, model, cols, train, test, background, threshold, k, texts,
                              acfg, sections, figures, facts)
    return EdaResult(sections=sections, figures=figures, facts=facts,
                     timings={"service": _service_latency(ctx, threshold, k, texts)})


def _attributes(task: str, test: pd.DataFrame) -> dict[str, pd.Series]:
    if task == "hmda":
        race = np.select([test["black"] == 1, test["hispan"] == 1, test["white"] == 1],
                         ["black", "hispanic", "white"], "other")
        sex = test["male"].map({1.0: "male", 0.0: "female"})
        married = test["married"].map({1.0: "married", 0.0: "not married"})
        age = test["old"].map({1.0: "older", 0.0: "younger"})
        return {"race": pd.Series(race, index=test.index), "sex": sex, "marital status": married,
                "age": age}
    return {"sex": test["sex"], "age band": test["age_band"]}


def _scenario_example(ctx, model, cols, train, test, background, threshold, k, texts, acfg,
                      sections, figures, facts) -> None:
    people = named_applicants(acfg)
    if acfg.get("applicants_path"):
        people = pd.concat([people, load_applicants(str(Path(acfg["applicants_path"])))],
                           ignore_index=True)
    X = people[cols]
    score = ex.approval(model, X)
    contrib = ex.agnostic_shap(model, X, background, ctx.seed)
    codes = ex.reason_codes(contrib, cols, texts, k)
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
        "(income, utilization, delinquencies, inquiries); only the debt differs.\n\n"
        + markdown_table(table.round(3)) + "\n\n![acceptance curve](analysis/acceptance_curve.png)"
        + f"\n\nThe average approval over every test applicant with cards and credit age set to "
          f"theirs falls from {avg[0]:.2f} at ${grid[0]:.0f}K of debt to {avg[-1]:.2f} at "
          f"${grid[-1]:.0f}K; their own profile crosses the {threshold} line at "
          f"${crossing if crossing is not None else float('nan'):.1f}K.")))


def _service_latency(ctx: AnalysisContext, threshold: float, k: int, texts) -> dict:
    """One applicant's score plus reasons, as a reasons service would answer it."""
    task = ctx.cfg["primary"]["task"]
    cols = list(ctx.meta["views"][task])
    model = ctx.model(task, task)
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
