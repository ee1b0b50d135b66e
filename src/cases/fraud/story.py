"""The fraud interview story, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.fraud.policy import UNREPORTED_SCOPE, signed_usd, top_band_reading
from cases.lifecycle.contract import Story
from cases.lifecycle.report import gate_note, interval


def story(measured: Mapping, cfg: Mapping) -> Story:
    m, a, e = measured["metrics"], measured["analysis"], measured["eda"]
    r = m["tasks"]["fraud"][m["primary"]["view"]]
    sel = r["selected"]
    t, b = r["test"][sel], r["test"]["baseline"]
    money = {x["model"]: x for x in a["money"]}
    ms, none = money[sel], money["approve everything"]
    lab, load = a["labels"], a["load"]
    lat = measured["timing"]["latency_ms"]
    loop = [x for x in a["loop"] if x["variant"] != "static"]
    cv = r["cv"].get("average_precision")
    loses = ms["cost_dollars"] > money["baseline"]["cost_dollars"]  # the policy, in dollars
    measured_recall = f"{100 * lab['measured_recall']:.1f}%"
    true_recall = f"{100 * lab['true_recall']:.1f}%"
    recall = (f"measured recall ({measured_recall}) and true recall ({true_recall}) agree at "
              f"this rounding: the model catches unreported fraud as often as reported fraud, "
              f"so the missing labels hide losses (no chargeback shows them), not recall"
              if measured_recall == true_recall else
              f"measured recall {measured_recall} against true recall {true_recall} (no "
              f"interval on the gap, so no claim that they differ)")
    points = [
        f"Optimise money, not accuracy: fraud is {100 * e['fraud_rate']:.2f}% of transactions. "
        f"Headline metric: area under the precision-recall curve, `{sel}` "
        f"{t['average_precision']:.3f}{interval(r, sel, 'average_precision')} against the rules "
        f"baseline's {b['average_precision']:.3f} ({gate_note(r)}); recall at a "
        f"{100 * float(cfg['metrics']['alert_rate']):.1f}% alert rate "
        f"{100 * t['recall_at_alert_rate']:.0f}% (rules {100 * b['recall_at_alert_rate']:.0f}%).",
        *([f"The test weeks score higher than the training folds: test AUPRC "
           f"{t['average_precision']:.3f} against a CV mean of {cv['mean']:.3f} (sd "
           f"{cv['std']:.3f} over the folds). Quote the CV "
           f"figure as the expectation and the test interval as the spread of this one period."]
          if cv and t["average_precision"] > cv["mean"] + 2 * cv["std"] else []),
        f"The SMS loop is a policy with two thresholds chosen for cost on the validation week "
        f"(carried as the shares of it they text and block): on the test weeks `{sel}` sends "
        f"{ms['texts']:,} texts and blocks {ms['blocks']:,}, stops "
        f"{100 * ms['true_recall']:.0f}% of fraud, and costs ${ms['cost_dollars']:,.0f} against "
        f"${none['cost_dollars']:,.0f} for approving everything and "
        f"${money['baseline']['cost_dollars']:,.0f} for the rules"
        + (", so this policy loses to the rules on these weeks" if loses else "")
        + f".{_guardrail_sentence(r, sel)}",
        f"Labels you cannot trust: {100 * lab['unreported_share']:.0f}% of fraud is never "
        f"reported; {recall}. The texts themselves estimate the unreported share "
        f"({100 * lab['estimate_from_denials']:.0f}% of denied frauds never became a "
        f"chargeback).",
    ]
    points += floor_points(r, a.get("policy_floor"), a.get("floor_gap"), sel)
    if loop:
        last = loop[-1]
        points.append(
            f"The feedback loop: replies are labels, but only for transactions the model "
            f"already flagged: fraud rate among text labels "
            f"{100 * last.get('fraud_rate_in_text_labels', float('nan')):.1f}% against "
            f"{100 * last.get('week_fraud_rate', float('nan')):.2f}% in the week; "
            f"{int(last.get('fraud_labelled_as_good', 0))} approved frauds were learnt as good that "
            f"week.")
    ex = a.get("exploration") or {}
    tot = ex.get("totals") or {}
    if "retrained, exploring" in tot and "retrained on replies" in tot:
        e_, b_ = tot["retrained, exploring"], tot["retrained on replies"]
        ap = ex["later_weeks_true_average_precision"]
        change = float(ex["true_average_precision_change"])
        points.append(
            f"The exploration sample, simulated: texting {100 * ex['share']:.1f}% of would-be "
            f"approvals at random sent {int(e_['explored_texts']):,} texts over the "
            f"{ex['weeks']} test weeks and found {int(e_['fraud_found_by_exploration'])} "
            f"fraud(s); it cost {signed_usd(ex['extra_cost_dollars'])} (${e_['cost_dollars']:,.0f} "
            f"against ${b_['cost_dollars']:,.0f}), and the retrained model's AUPRC on the "
            + (f"truth moved {change:+.3f} " if round(change, 3) else
               "truth did not move at three decimals ")
            + f"({ap.get('retrained, exploring', float('nan')):.3f} against "
            f"{ap.get('retrained on replies', float('nan')):.3f}). Too few fraud labels to "
            f"retrain on: its value is measurement (an unselected view of the fraud the model "
            f"approves).")
    u = a.get("unreported_in_training")
    if u:
        rep, tru = u["models"]["reported labels"], u["models"]["true labels"]
        d, dc = u["true_minus_reported"]["average_precision"], u["true_minus_reported"][
            "cost_dollars"]
        points.append(
            f"What unreported fraud costs the model: `{sel}` trained on reported labels scores "
            f"AUPRC {rep['average_precision']:.3f} on the true labels, trained on the truth "
            f"{tru['average_precision']:.3f} (paired difference {d['diff']:+.3f}, 95% "
            f"interval [{d['lo']:+.3f}, {d['hi']:+.3f}]); at the same text and block rates "
            f"the policy costs ${rep['cost_dollars']:,.0f} against ${tru['cost_dollars']:,.0f} "
            f"(difference {signed_usd(dc['diff'])}, interval [{signed_usd(dc['lo'])}, "
            f"{signed_usd(dc['hi'])}]). " + UNREPORTED_SCOPE)
    k = a.get("calibration")
    if k and k["bands"]:
        top, p = k["bands"][-1], k["policy"]
        points.append(
            f"Calibration at high scores: in the top score band the model says "
            f"{top['mean_raw']:.3f}; {top['observed_reported']:.3f} is reported fraud, "
            f"{top['observed_true']:.3f} true fraud"
            + {"truth": ": against the truth it is calibrated, the gap is unreported fraud. ",
               "over": ": overconfident against the truth too. ",
               "under": ": below the true rate, so the reports, not the model, understate "
                        "fraud there. "}[top_band_reading(top)]
            + f"{k['method']} brings the band to {top['mean_calibrated']:.3f} (the labels "
            f"the bank sees). The policy acts on the order of the scores, which calibration "
            f"keeps: thresholds searched on each score cost ${p['raw']['cost_dollars']:,.0f} "
            f"raw and ${p['calibrated']['cost_dollars']:,.0f} calibrated. Where the "
            f"probability itself is used it matters: fraud dollars expected among the alerts "
            f"${p['raw']['expected_fraud_dollars_in_alerts']:,.0f} raw, "
            f"${p['calibrated']['expected_fraud_dollars_in_alerts']:,.0f} calibrated, against "
            f"${k['reported_fraud_dollars_in_alerts']:,.0f} reported and "
            f"${k['true_fraud_dollars_in_alerts']:,.0f} true.")
    if a["reasons"]:
        points.append("What drives alerts (SHAP over LightGBM's alerts): "
                      + ", ".join(x["signal"] for x in a["reasons"][:4])
                      + f". A text can carry one line: {a['examples'][0] if a['examples'] else ''}")
    rep = cfg["report"]
    shadow, texts_only = int(rep["shadow_weeks"]), int(rep["texts_only_weeks"])
    rollout = [
        ("Serving and load", (
            f"One decision's latency for the model loaded from MLflow is in timing.md (the card "
            f"network's budget for it: {float(rep['latency_budget_ms']):.0f} ms). The SMS "
            f"gateway must take {load['texts_per_day']:,.1f} texts a day on this volume, peaks "
            f"of {load['peak_texts_per_hour']} an hour, "
            f"{load['texts_per_million_transactions']:,.0f} per million transactions.")),
        ("Shadow period before blocking", (
            f"First {shadow} weeks: score in shadow, send nothing, compare alerts with "
            f"chargebacks. The next {texts_only} weeks: texts only (no blocks), measure reply "
            f"rates and denial rates by score band. "
            + (f"Turn on blocking above the upper threshold only once the policy costs less "
               f"than the rules over those weeks (on the test weeks it costs "
               f"${ms['cost_dollars']:,.0f} against the rules' "
               f"${money['baseline']['cost_dollars']:,.0f}; until then the rules keep "
               f"blocking), then with a daily cap and a kill switch." if loses else
               "Then turn on blocking above the upper threshold, with a daily cap and a kill "
               "switch."))),
        ("Drift monitoring", (
            "Daily: alert rate and text volume, reply and denial rates, precision of alerts "
            "(denials among replies), the score distribution against the training weeks, the "
            "amount and category mix; fraud patterns shift within weeks (card testing moves "
            "merchants), so retrain weekly on replies plus chargebacks, with the exploration "
            "sample to correct the bias.")),
    ]
    timing = [f"One decision: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms for the model "
              f"loaded from MLflow."]
    return Story(rollout=rollout, talking_points=points, timing=timing)


METRIC_NAMES = {"average_precision": "AUPRC", "auc": "AUC", "log_loss": "log loss"}


def floor_points(r: Mapping, pf: Mapping | None, gap: Mapping | None, sel: str) -> list[str]:
    """The Bayes floor of the ranking (metrics.json) and of the money (the analysis): the
    simulator's true probabilities scored like a model, or nothing on real data."""
    f = r.get("floor") or {}
    if not f.get("available"):
        return []
    m = f["metric"]
    lo, hi = f["interval"][m]
    share, (slo, shi) = f["gap_closed"], f["gap_closed_interval"]
    label = "reported fraud" if (r.get("split") or {}).get("label") == "reported" else "fraud"
    out = (f"How far from the best: the true P({label} | what the bank sees), which the "
           f"simulator knows, scores {METRIC_NAMES.get(m, m)} {f['test'][m]:.3f} [{lo:.3f}, "
           f"{hi:.3f}] (the Bayes floor); `{sel}` is {100 * f['above_floor']:.1f}% short of it and closes "
           + ("n/a" if share is None else f"{100 * share:.1f}%")
           + (f" [{100 * slo:.1f}%, {100 * shi:.1f}%]" if slo is not None else "")
           + " of the gap from the rules"
           + (f" (within {f['near_floor_threshold']:.0%} of the floor: more modelling cannot pay "
              f"much)." if f["near_floor"] else "."))
    if gap and not f["near_floor"]:
        t = gap["true terms"]["average_precision"]
        out += (f" A logistic regression on the simulator's own terms of the log-odds, fitted "
                f"on the same labels, scores {t:.3f}: "
                + ("the gap is in the features (patterns as hinges and interactions), not in "
                   "the labels." if gap["true_terms_reach_floor"] else
                   "short of the floor too, so the gap is in the labels, not in the features."))
    if pf and pf.get("available"):
        out += " " + _policy_floor_line(pf, sel)
    return [out]


def _guardrail_sentence(r: Mapping, sel: str) -> str:
    """The gate's money guardrail (threshold-free: each transaction's cheapest action with the
    score read as P(fraud)), with its paired interval, when the run has one."""
    g = next((x for x in (r.get("gate") or {}).get("guardrails", [])
              if x["metric"] == "policy_cost_per_1k"), None)
    if g is None:
        return ""
    lo, hi = g["diff_interval"]
    verdict = ("within noise" if lo <= 0 <= hi else
               "cheaper than the rules" if hi < 0 else "dearer than the rules")
    return (f" The gate weighs money without thresholds (each transaction's cheapest action with "
            f"the score read as P(fraud)): `{sel}` ${g['model']:,.1f} per 1,000 transactions "
            f"against the rules' ${g['baseline']:,.1f}, difference [{lo:+,.1f}, {hi:+,.1f}], "
            f"{verdict}.")


def _policy_floor_line(pf: Mapping, sel: str) -> str:
    lo, hi = pf["interval"]["cost_dollars"]
    share = pf["gap_closed"]
    return (f"The policy that knows each transaction's true P(fraud) would cost "
            f"${pf['test']['cost_dollars']:,.0f} [${lo:,.0f}, ${hi:,.0f}] on the test weeks, "
            f"against ${pf['model']['cost_dollars']:,.0f} for `{sel}` and "
            f"${pf['baseline']['cost_dollars']:,.0f} for the rules: `{sel}` closes "
            + ("n/a" if share is None else f"{100 * share:.1f}%")
            + " of the gap in dollars (in expectation under the true P(fraud): "
            f"${pf['test']['expected_cost_dollars']:,.0f} against "
            f"${pf['model']['expected_cost_dollars']:,.0f}).")
