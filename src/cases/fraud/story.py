"""The fraud interview story, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

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
    measured_recall = f"{100 * lab['measured_recall']:.1f}%"
    true_recall = f"{100 * lab['true_recall']:.1f}%"
    recall = (f"measured recall ({measured_recall}) and true recall ({true_recall}) agree at "
              f"this rounding: the model catches unreported fraud as often as reported fraud, "
              f"so the missing labels hide losses (no chargeback shows them), not recall"
              if measured_recall == true_recall else
              f"measured recall ({measured_recall}) differs from true recall ({true_recall})")
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
        f"The SMS loop is a policy with two thresholds chosen for cost on the validation week: "
        f"on the test weeks `{sel}` sends {ms['texts']:,} texts and blocks {ms['blocks']:,}, "
        f"stops {100 * ms['true_recall']:.0f}% of fraud, and costs ${ms['cost_dollars']:,.0f} "
        f"against ${none['cost_dollars']:,.0f} for approving everything and "
        f"${money['baseline']['cost_dollars']:,.0f} for the rules.",
        f"Labels you cannot trust: {100 * lab['unreported_share']:.0f}% of fraud is never "
        f"reported; {recall}. The texts themselves estimate the unreported share "
        f"({100 * lab['estimate_from_denials']:.0f}% of denied frauds never became a "
        f"chargeback).",
    ]
    if loop:
        last = loop[-1]
        points.append(
            f"The feedback loop: replies are labels, but only for transactions the model "
            f"already flagged: fraud rate among text labels "
            f"{100 * last.get('fraud_rate_in_text_labels', float('nan')):.1f}% against "
            f"{100 * last.get('week_fraud_rate', float('nan')):.2f}% in the week; "
            f"{int(last.get('fraud_labelled_as_good', 0))} approved frauds were learnt as good that "
            f"week. Keep an exploration sample (text a small random share) to see past it.")
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
            f"rates and denial rates by score band. Then turn on blocking above the upper "
            f"threshold, with a daily cap and a kill switch.")),
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
