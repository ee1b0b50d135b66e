"""The fraud interview story, from the run's own numbers."""

from __future__ import annotations

from typing import Mapping

from cases.lifecycle.contract import Story


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
    points = [
        f"Optimise money, not accuracy: fraud is {100 * e['fraud_rate']:.2f}% of transactions. "
        f"Headline metric: area under the precision-recall curve, `{sel}` "
        f"{t['average_precision']:.3f} against the rules baseline's {b['average_precision']:.3f}; "
        f"recall at a {100 * float(cfg['metrics']['alert_rate']):.1f}% alert rate "
        f"{100 * t['recall_at_alert_rate']:.0f}% (rules {100 * b['recall_at_alert_rate']:.0f}%).",
        f"The SMS loop is a policy with two thresholds chosen for cost on the validation week: "
        f"on the test weeks `{sel}` sends {ms['texts']:,} texts and blocks {ms['blocks']:,}, "
        f"stops {100 * ms['true_recall']:.0f}% of fraud, and costs ${ms['cost_dollars']:,.0f} "
        f"against ${none['cost_dollars']:,.0f} for approving everything and "
        f"${money['baseline']['cost_dollars']:,.0f} for the rules.",
        f"Labels you cannot trust: {100 * lab['unreported_share']:.0f}% of fraud is never "
        f"reported, so measured recall ({100 * lab['measured_recall']:.0f}%) differs from true "
        f"recall ({100 * lab['true_recall']:.0f}%); the texts themselves estimate the "
        f"unreported share ({100 * lab['estimate_from_denials']:.0f}% of denied frauds never "
        f"became a chargeback).",
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
    rollout = [
        ("Serving and load", (
            "One decision's latency for the model loaded from MLflow is in timing.md (the card "
            "network allows well under 100 ms). The SMS gateway "
            f"must take {load['texts_per_day']:,.0f} texts a day on this volume, peaks of "
            f"{load['peak_texts_per_hour']} an hour, "
            f"{load['texts_per_million_transactions']:,.0f} per million transactions.")),
        ("Shadow period before blocking", (
            "Weeks 1-2: score in shadow, send nothing, compare alerts with chargebacks. Weeks "
            "3-4: texts only (no blocks), measure reply rates and denial rates by score band. "
            "Then turn on blocking above the upper threshold, with a daily cap and a kill "
            "switch.")),
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
