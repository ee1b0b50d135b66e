"""The SMS loop, run: thresholds that minimise expected cost on the validation week, money on the
test weeks for every model, the loop over later weeks with replies as labels and retraining, the
labels nobody reports, and the reasons a text could carry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cases.fraud.policy import Costs, action_costs, actions, replies, search_thresholds
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table
from cases.lifecycle.selection import predict_for

REASONS = {
    "amount": "an unusually large amount (${amount:,.2f})",
    "log_amount": "an unusually large amount (${amount:,.2f})",
    "amount_vs_usual": "{amount_vs_usual:.1f} times your usual amount",
    "tx_1h": "{tx_1h:.0f} charges in the last hour",
    "tx_24h": "{tx_24h:.0f} charges today",
    "small_amount_burst": "a string of small test charges",
    "distance_km": "a merchant {distance_km:,.0f} km from home",
    "category": "a purchase at a {category} merchant",
    "hour": "the time of day ({hour:.0f}:00)",
    "new_merchant": "a merchant you have not used before",
    "minutes_since_last": "{minutes_since_last:.0f} minutes after your last purchase",
}


def outcome(rows: pd.DataFrame, act: np.ndarray, c: Costs, rng) -> dict:
    """What actually happens when the policy acts on these transactions (replies drawn)."""
    fraud = rows["is_fraud"].to_numpy().astype(bool)
    amount = rows["amount"].to_numpy(float)
    replied, _ = replies(fraud, rows["reply_p"].to_numpy(), act == 1, rng)
    silent_text = (act == 1) & ~replied
    stopped = (act == 2) | ((act == 1) & replied) | (silent_text & (c.no_reply == "block"))
    blocked_good = ~fraud & ((act == 2) | (silent_text & (c.no_reply == "block")))
    lost = fraud & ~stopped
    cost = (c.fraud_share_lost * amount[lost].sum() + c.sms * (act == 1).sum()
            + c.friction * (~fraud & (act == 1)).sum() + c.block_good * blocked_good.sum())
    label = rows["label"].to_numpy().astype(bool)
    return {"transactions": int(len(rows)), "texts": int((act == 1).sum()),
            "blocks": int((act == 2).sum()), "fraud": int(fraud.sum()),
            "fraud_stopped": int((fraud & stopped).sum()),
            "true_recall": float((fraud & stopped).sum() / max(fraud.sum(), 1)),
            "measured_recall": float((label & stopped).sum() / max(label.sum(), 1)),
            "alert_precision": float(fraud[act > 0].mean()) if (act > 0).any() else float("nan"),
            "fraud_lost_dollars": float(amount[lost].sum()),
            "fraud_stopped_dollars": float(amount[fraud & stopped].sum()),
            "good_blocked": int(blocked_good.sum()), "cost_dollars": float(cost),
            "replied": replied}


def analyze(ctx: AnalysisContext) -> EdaResult:
    a, f = ctx.cfg["analysis"], ctx.meta["split"]
    view = ctx.cfg["primary"]["view"]
    cols = ctx.meta["views"][view]
    c = Costs.from_cfg(a["costs"], str(a["no_reply"]))
    test_rows = ctx.rows("test")
    test = test_rows.frame
    train = ctx.train
    pre, val = (r.frame for r in ctx.validation(int(f["validation_periods"])))
    task = ctx.tasks["fraud"]
    builders = {"baseline": task.baseline,
                **{cand.name: cand.build for cand in task.candidates(view, cols)}}
    selected = ctx.selection["fraud"][view]["selected"]
    rng = np.random.default_rng(ctx.seed)
    grid = int(a["threshold_grid"])
    # 1. thresholds per model on the validation week (out of sample), money on the test weeks
    money, searches = [], {}
    val_costs = action_costs(val["label"], val["amount"], val["reply_p"], c)
    for name, build in builders.items():
        score = predict_for("binary", build().fit(pre[cols], pre["label"]), val[cols])
        s = search_thresholds(score, val_costs, grid)
        searches[name] = s
        final = ctx.model("fraud", view, name)
        act = actions(predict_for("binary", final, test[cols]), s["t1"], s["t2"])
        o = outcome(test, act, c, np.random.default_rng(ctx.seed))
        replied = o.pop("replied")
        if name == selected:  # kept for the curve, the loop and the label estimates below
            val_score, sel_act, sel_replied = score, act, replied
        money.append({"model": name, "t1": s["t1"], "t2": s["t2"],
                      "validation_cost": s["cost"], **o})
    nothing = outcome(test, np.zeros(len(test), dtype=int), c, rng)
    nothing.pop("replied")
    money.append({"model": "approve everything", "t1": np.inf, "t2": np.inf,
                  "validation_cost": float("nan"), **nothing})
    money = pd.DataFrame(money)
    s = searches[selected]
    figures: dict = {"money": money.round(6)}
    curve = pd.DataFrame(s["curve"])
    curve["alert_share_pct"] = [100 * float((val_score >= t).mean()) for t in curve["t1"]]
    figures["cost_curve_data"] = curve.round(8)
    fig, ax = figure(f"Expected cost on the validation week ({selected})",
                     "share of transactions texted or blocked (%, log scale)",
                     "total expected cost ($), best t2 for each t1")
    ok = curve["alert_share_pct"] > 0
    ax.plot(curve.loc[ok, "alert_share_pct"], curve.loc[ok, "cost"], marker=".")
    best_share = 100 * float((val_score >= s["t1"]).mean())
    ax.axvline(best_share, ls="--", c="grey", lw=1, label=f"chosen: {best_share:.2f}%")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    figures["cost_curve"] = fig
    # 2. the loop over the test weeks: replies become labels, the model retrains on them
    loop_rows, extra = [], []
    static = ctx.model("fraud", view, selected)
    model, t_loop = static, (s["t1"], s["t2"])
    # retraining moves the scores (the replies over-represent fraud), so a retrained model keeps
    # the validation week's text and block rates rather than the raw thresholds
    shares = [float((val_score >= t).mean()) for t in (s["t1"], s["t2"])]
    for p in np.unique(test_rows.period):
        rows = test[test_rows.period == p].reset_index(drop=True)
        for variant, m, (t1, t2) in (("static", static, (s["t1"], s["t2"])),
                                     ("retrained on replies", model, t_loop)):
            act = actions(predict_for("binary", m, rows[cols]), t1, t2)
            o = outcome(rows, act, c, np.random.default_rng(ctx.seed + int(p)))
            replied = o.pop("replied")
            entry = {"period": int(p), "variant": variant, **o}
            if variant.startswith("retrained"):
                # labels the week brings back: replies to texts, and chargebacks on approvals
                approved = act == 0
                labeled = replied | approved
                fb = rows[labeled].copy()
                fb["label"] = np.where(replied[labeled], rows["is_fraud"].to_numpy()[labeled],
                                       rows["label"].to_numpy()[labeled])
                entry.update(labels_gained=int(labeled.sum()),
                             labels_from_texts=int(replied.sum()),
                             fraud_rate_in_text_labels=float(rows["is_fraud"][replied].mean())
                             if replied.any() else float("nan"),
                             week_fraud_rate=float(rows["is_fraud"].mean()),
                             unnoticed_fraud_found_by_texts=int(
                                 (replied & (rows["is_fraud"] == 1) & (rows["label"] == 0)).sum()),
                             fraud_labelled_as_good=int((approved & (rows["is_fraud"] == 1)
                                                         & (rows["label"] == 0)).sum()))
                extra.append(fb)
            loop_rows.append(entry)
        if a["retrain_each_week"] and extra:
            data = pd.concat([train, *extra], ignore_index=True)
            model = builders[selected]().fit(data[cols], data["label"])
            v = predict_for("binary", model, val[cols])
            t_loop = tuple(float(np.quantile(v, 1 - sh, method="higher")) if sh > 0 else np.inf
                           for sh in shares)
    loop = pd.DataFrame(loop_rows)
    figures["loop"] = loop.round(6)
    # 3. labels you cannot trust: measured against true recall, and an estimate from the texts
    o_sel = money[money["model"] == selected].iloc[0]
    act, replied = sel_act, sel_replied
    denied = replied & (test["is_fraud"] == 1).to_numpy()
    est = float((test["label"].to_numpy()[denied] == 0).mean()) if denied.any() else float("nan")
    n1, n2 = int(denied.sum()), int(((act > 0) & (test["label"] == 1).to_numpy()).sum())
    both = int((denied & (test["label"] == 1).to_numpy()).sum())
    lp = n1 * n2 / both if both else float("nan")
    truth_fraud = int(test["is_fraud"].sum())
    labels = {"true_fraud": truth_fraud, "reported_fraud": int(test["label"].sum()),
              "unreported_share": 1 - float(test["label"].sum()) / max(truth_fraud, 1),
              "true_recall": float(o_sel["true_recall"]),
              "measured_recall": float(o_sel["measured_recall"]),
              "estimate_from_denials": est, "denials": n1,
              "lincoln_petersen_alerted_fraud": lp,
              "alerted_true_fraud": int(((act > 0) & (test["is_fraud"] == 1).to_numpy()).sum())}
    # 4. reasons: SHAP over LightGBM's alerts, and the line a text could carry
    reasons, examples = shap_reasons(ctx, test, cols, searches.get("lgbm", s), int(a["shap_alerts"]))
    # 5. the SMS system's load
    days = max((test["time_s"].max() - test["time_s"].min()) / 86400, 1 / 24)
    alerts = test[act == 1]
    per_hour = alerts.groupby((alerts["time_s"] // 3600).astype(int)).size()
    load = {"texts_per_day": float(len(alerts) / days),
            "peak_texts_per_hour": int(per_hour.max()) if len(per_hour) else 0,
            "texts_per_million_transactions": 1e6 * len(alerts) / max(len(test), 1),
            "blocks_per_day": float((act == 2).sum() / days)}
    facts = {"selected": selected, "thresholds": {"t1": s["t1"], "t2": s["t2"]},
             "costs": dict(a["costs"]), "no_reply": str(a["no_reply"]),
             "money": money.to_dict("records"), "loop": loop.to_dict("records"),
             "labels": labels, "reasons": reasons, "examples": examples, "load": load}
    show = money[["model", "texts", "blocks", "fraud", "fraud_stopped", "true_recall",
                  "measured_recall", "alert_precision", "fraud_lost_dollars",
                  "good_blocked", "cost_dollars"]]
    lshow = loop[[c_ for c_ in ("period", "variant", "texts", "blocks", "true_recall",
                                "measured_recall", "cost_dollars", "labels_from_texts",
                                "fraud_rate_in_text_labels", "week_fraud_rate",
                                "unnoticed_fraud_found_by_texts", "fraud_labelled_as_good")
                  if c_ in loop]]
    sections = [
        ("The policy: two thresholds that minimise expected cost", (
            f"Costs: text ${c.sms:.2f}, a good customer bothered ${c.friction:.2f}, a good "
            f"purchase blocked ${c.block_good:.2f}, a fraud approved {c.fraud_share_lost:.0%} "
            f"of its amount; no reply to a text: **{c.no_reply}**. Each model's thresholds are "
            f"searched on the validation {f['unit']} (scores from a fit on the weeks before "
            f"it, labels as the bank has them), then applied to the test {f['unit']}s:\n\n"
            + markdown_table(show.round(3))
            + f"\n\n`{selected}`: text from score {s['t1']:.4g}, block from {s['t2']:.4g}."
              f"\n\n![cost curve](analysis/cost_curve.png)")),
        ("The loop over later weeks", (
            "Each test week the policy acts; texted customers who reply give a label (a good "
            "customer approves, a victim denies); approved transactions get a label only from "
            "chargebacks; blocked and unanswered ones get none. The retrained variant learns "
            "from those labels before the next week and keeps the validation week's text and "
            "block rates (its scores move when it retrains).\n\n" + markdown_table(lshow.round(4))
            + "\n\nThe bias: labels from texts come only from transactions the model already "
              "found suspicious, where fraud is far more common than in the week; fraud the "
              "model scores low is approved and learnt only if the victim reports it, and the "
              "unnoticed ones are learnt as good.")),
        ("Labels you cannot trust", (
            f"{labels['true_fraud']:,} frauds in the test weeks, {labels['reported_fraud']:,} "
            f"reported ({100 * labels['unreported_share']:.0f}% never are). At the chosen "
            f"policy the measured recall is {100 * labels['measured_recall']:.1f}% and the "
            f"true recall {100 * labels['true_recall']:.1f}%. How the bank can estimate the "
            f"unreported share: texted victims deny fraud whether or not they would have "
            f"noticed it, so among {n1} denials the share that never became a chargeback, "
            f"{100 * est:.0f}%, estimates it; a two-channel (denials, chargebacks) "
            f"Lincoln-Petersen count of fraud among alerts gives {lp:.0f} against "
            f"{labels['alerted_true_fraud']} true. An audit of a random sample of approved "
            f"transactions covers fraud the model never alerts on.")),
        ("Which signals drive alerts", (
            f"Exact TreeSHAP contributions (log-odds) of LightGBM over up to "
            f"{int(a['shap_alerts'])} of its alerts on the test weeks; `top_reason_share` is how "
            f"often the signal is the strongest push toward fraud.\n\n"
            + markdown_table(pd.DataFrame(reasons).round(4)) + "\n\nWhat a text could say:\n\n"
            + "\n".join(f"- {e}" for e in examples))),
        ("What the SMS system must handle", (
            f"{load['texts_per_day']:,.0f} texts a day on this volume (peak "
            f"{load['peak_texts_per_hour']} in an hour), {load['texts_per_million_transactions']:,.0f} "
            f"per million transactions; {load['blocks_per_day']:,.1f} blocks a day.")),
    ]
    return EdaResult(sections=sections, figures=figures, facts=facts)


def shap_reasons(ctx: AnalysisContext, test: pd.DataFrame, cols: list[str], s: dict,
                 n: int) -> tuple[list[dict], list[str]]:
    model = ctx.model("fraud", ctx.cfg["primary"]["view"], "lgbm")
    score = predict_for("binary", model, test[cols])
    alerts = test[score >= s["t1"]]
    if alerts.empty:
        return [], []
    alerts = alerts.sample(min(n, len(alerts)), random_state=ctx.seed)
    # exact TreeSHAP contributions (log-odds), computed by LightGBM itself on the cast frame
    X = model.named_steps["cast"].transform(alerts[cols])
    values = model.named_steps["model"].predict(X, pred_contrib=True)[:, :-1]
    mean_abs = np.abs(values).mean(axis=0)
    top_share = pd.Series(np.array(cols)[values.argmax(axis=1)]).value_counts(normalize=True)
    table = [{"signal": col, "mean_abs_shap": float(v), "top_reason_share": float(
        top_share.get(col, 0.0))} for col, v in sorted(zip(cols, mean_abs), key=lambda x: -x[1])
             ][:10]
    examples = []
    for i in range(min(5, len(alerts))):
        row = alerts.iloc[i]
        col = cols[int(values[i].argmax())]
        template = REASONS.get(col, "an unusual pattern in the transaction ({col})")
        if col in ("amount", "log_amount") and row["amount"] < 10:
            template = "a very small charge (${amount:,.2f}), the kind used to test a stolen card"
        try:
            reason = template.format(**row.to_dict(), col=col)
        except (KeyError, ValueError, TypeError):
            reason = f"an unusual pattern in the transaction ({col})"
        examples.append(f"\"Bank: did you just pay ${row['amount']:,.2f}? It looks unusual: "
                        f"{reason}. Reply YES if it was you, NO if not.\"")
    return table, examples
