"""The loans interview story, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Story
from cases.lifecycle.report import gate_note, interval, versus


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a = measured["metrics"], measured["analysis"]
    lat, svc = measured["timing"]["latency_ms"], measured["timing"]["analysis"].get("service", {})
    tasks = m["tasks"]
    points: list[str] = []
    rollout: list[tuple[str, str]] = []
    h = tasks["hmda"]["hmda"]
    hs, hb = h["test"][h["selected"]], h["test"]["baseline"]
    note = versus(h, h["selected"], "baseline", "log_loss")
    points.append(
        f"On {m['rows']:,} real Boston HMDA applications, `{h['selected']}` (selected by "
        f"stratified {cfg['train']['cv_folds']}-fold CV on log loss) scores AUC "
        f"{hs.get('auc', float('nan')):.3f}, log loss {hs['log_loss']:.4f}"
        f"{interval(h, h['selected'], 'log_loss', 4)}, Brier {hs['brier']:.4f} on the test "
        f"applications; the baseline scores AUC {hb.get('auc', float('nan')):.3f}, log loss "
        f"{hb['log_loss']:.4f} ({gate_note(h)}"
        + (f"; on log loss `{h['selected']}` {note} the baseline" if note else "") + "), and "
        f"LightGBM AUC {h['test']['lgbm'].get('auc', float('nan')):.3f}, log loss "
        f"{h['test']['lgbm']['log_loss']:.4f} (trained on "
        f"{m['split'].get('hmda', {}).get('train', 0):,} applications).")
    hold = cfg["analysis"]["curve"]["hold"]
    same = (f"same cards ({hold['n_cards']}) and credit age ({hold['credit_age_years']} y)")
    people = a.get("applicants", [])
    if people:
        desc = "; ".join(
            f"{p['name']} (${p['debt_k']:.0f}K debt) scores {p['approval_score']:.2f}, "
            f"{p['decision']}" + (f", reasons against {p['reference']} (the approved applicant "
                                  f"most like them): {', '.join(p['reasons'][:2])}"
                                  if p["reasons"] else "")
            for p in people[:3])
        points.append(f"The worked example, {same}: {desc}. The "
                      f"true policy says " + ", ".join(
                          f"{p['name']} {p['true_decision']}" for p in people[:3]) + ".")
        bob = next((p for p in people if p["counterfactual"]), None)
        if bob:
            cf = bob["counterfactual"]
            points.append(f"What would change {bob['name']}'s decision: {cf['feature']} from "
                          f"{cf['from']:.2f} to {cf['to']:.2f} (re-scored: "
                          f"{cf['rescored']:.2f} >= {a['threshold']}).")
    ac = a.get("acceptance_curve")
    if ac:
        first = people[0]["name"] if people else "the first applicant"
        cf0 = people[0].get("counterfactual") if people else None
        same_value = (f", the debt {first}'s counterfactual asks for (one search, the same value)"
                      if cf0 and cf0["feature"] == ac["feature"] else "")
        points.append(
            f"Without the weights, the acceptance curve answers it: the average approval over "
            f"applicants with {hold['n_cards']} cards and {hold['credit_age_years']} years of "
            f"history falls from {ac['average'][0]:.2f} at ${ac['grid'][0]:.0f}K debt to "
            f"{ac['average'][-1]:.2f} at ${ac['grid'][-1]:.0f}K; their shared profile "
            f"({first}'s) drops below {a['threshold']} at "
            f"${ac['profile_crosses_threshold_at']:.1f}K{same_value}.")
    for t in ("hmda", "scenario"):
        if t in a:
            f = a[t]
            top = ", ".join(f"{k} ({v})" for k, v in list(f["top_reason_frequency"].items())[:3])
            points.append(
                f"{t}: {f['explained']:,} rejected test applicants explained with at most "
                f"{cfg['analysis']['max_reasons']} reasons each; the model-agnostic top reason "
                f"agrees with exact TreeSHAP for {100 * f['agreement_top_reason_agnostic_vs_treeshap']:.0f}% "
                f"and with the scorecard for "
                f"{100 * f['agreement_top_reason_agnostic_vs_scorecard']:.0f}% (the scorecard "
                f"compares with the best value, SHAP with the average applicant); most frequent "
                f"top reasons: {top}.")
    wv = a.get("hmda", {}).get("without_verdict")
    if wv:
        points.append(_without_verdict(wv, a["hmda"], cfg))
    audit = a.get("hmda", {}).get("audit", {})
    if audit:
        points.append("Fairness (HMDA test applications; protected attributes are audited, never "
                      "used): adverse impact ratio of the model's decisions " + ", ".join(
                          f"{k} {v['air_model']:.2f} (historical {v['air_actual']:.2f})"
                          for k, v in audit.items()) + ". Below four fifths fails the four-fifths rule.")
    fair = _fairness_gate(h, measured, wv)
    if fair:
        points.append(fair)
        rollout.insert(0, ("Fairness: the gate holds the four-fifths rule", fair))
    rollout.append(("A reasons service", (
        "Score plus reasons for one applicant with permutation SHAP (model-agnostic), and the "
        "score alone from the model loaded back from MLflow: this run's latencies are in "
        "timing.md. Where the explainer's cost matters, TreeSHAP on the tree model gives the "
        "same top reason for the share reported above at a fraction of the time (see "
        "`make bench`).")))
    timing = [
        f"Score plus reasons for one applicant (permutation SHAP, model-agnostic): p50 "
        f"{svc.get('score_plus_reasons_ms_p50', float('nan')):.0f} ms; the score alone: p50 "
        f"{lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms from the model loaded back from MLflow."]
    rollout.append(("Monitoring", "\n".join([
        "- Reason frequencies per week (the share of rejections whose top reason is each input): "
        "a jump means the population or the model moved.",
        "- Approval rate and adverse impact ratio by protected group, from the audit tables.",
        "- Calibration of the approval score (Brier, calibration plot in the evaluation).",
    ])))
    rollout.append(("When the model is retrained", (
        "Reasons are recomputed from the new model; the same applicant may get a different "
        "top reason. Keep the model version with every adverse-action notice, re-run the audit "
        "and the gate before moving the `champion` alias, and compare reason frequencies "
        "between the two versions on the same applicants.")))
    return Story(rollout=rollout, talking_points=points, timing=timing)


def _without_verdict(wv: Mapping, facts: Mapping, cfg: Mapping) -> str:
    """The model with and without the underwriter's verdict (analysis), and which gives a
    lender usable reasons."""
    names = ", ".join(f"`{c}`" for c in wv["inputs"])
    pa, pl = wv["paired"]["auc"], wv["paired"]["log_loss"]
    top_with = next(iter(facts["top_reason_frequency"]), None)
    top_without = ", ".join(f"{k} ({v})" for k, v in list(wv["top_reason_frequency"].items())[:3])
    return (f"{names} is the underwriter's own verdict, and the top reason for "
            f"{facts['top_reason_frequency'].get(top_with, 0)} of {facts['explained']} explained "
            f"HMDA rejections. Refitted without it (`{wv['candidate']}`, the same split): AUC "
            f"{wv['with']['auc']:.3f} -> {wv['without']['auc']:.3f} (difference "
            f"{pa['diff']:+.3f}, interval [{pa['lo']:+.3f}, {pa['hi']:+.3f}]), log loss "
            f"{wv['with']['log_loss']:.4f} -> {wv['without']['log_loss']:.4f} ({pl['diff']:+.4f}, "
            f"[{pl['lo']:+.4f}, {pl['hi']:+.4f}]); {wv['rejected_with']} test rejections with it, "
            f"{wv['rejected_without']} without, whose top reasons are {top_without}. A lender can "
            f"give only the second kind: an adverse-action notice names specific reasons, and "
            f"\"does not meet our guidelines\" restates the decision. Use the model without the "
            f"verdict for reasons (and decisions), or keep it for the score and explain with the "
            f"inputs behind the verdict.")


def _fairness_gate(entry: Mapping, measured: Mapping, wv: Mapping | None) -> str:
    """The gate's fairness guardrail on HMDA and what the rollout does about it."""
    guards = [g for g in entry["gate"].get("guardrails") or [] if "min_value" in g]
    if not guards:
        return ""
    champ = (measured.get("champions") or {}).get("hmda")
    out = []
    for g in guards:
        lo, hi = g["model_interval"]
        state = (("breached: the gate fails and the model is not registered; do not ship it "
                  "for decisions" if g["action"] == "fail" else "breached: flagged")
                 if g["breached"] else "not breached")
        out.append(f"The gate requires {g['metric']} of at least {g['min_value']:g}: the "
                   f"selected model's is {g['model']:.2f} (interval [{lo:.2f}, {hi:.2f}]), "
                   f"{state}.")
        metric = g["metric"]
        if wv and metric in wv["without"]:
            x = wv["paired"][metric]
            out.append(f"Measured mitigation on the same test applications: without the "
                       f"underwriter's verdict {metric} is {wv['without'][metric]:.2f} "
                       f"(difference {x['diff']:+.2f}, interval [{x['lo']:+.2f}, "
                       f"{x['hi']:+.2f}]), at an AUC of {wv['without']['auc']:.3f}; a candidate "
                       f"to rerun the gate on, not a pass by itself.")
    if champ and champ.get("registered"):
        out.append(f"Registered champion: `{champ['candidate']}`.")
    return " ".join(out)
