"""The SMS loop, run: thresholds that minimise expected cost on the validation week, money on the
test weeks for every model, the loop over later weeks with replies as labels and retraining, the
labels nobody reports, and the reasons a text could carry."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from cases.fraud.policy import (
    UNREPORTED_SCOPE,
    Costs,
    action_costs,
    actions,
    bayes_actions,
    expected_action_costs,
    replies,
    search_thresholds,
    signed_usd,
    top_band_reading,
)
from cases.lifecycle import bootstrap as bs
from cases.lifecycle import floor as fl
from cases.lifecycle.contract import AnalysisContext, EdaResult
from cases.lifecycle.eda import figure, markdown_table, number
from cases.lifecycle.evaluate import expected_calibration_error
from cases.lifecycle.parallel import predict_threads
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


def outcome(rows: pd.DataFrame, act: np.ndarray, c: Costs, rng,
            explored: np.ndarray | None = None) -> dict:
    """What actually happens when the policy acts on these transactions (replies drawn).
    `explored`: texts sent at random whatever the score (the exploration sample), approved
    when the customer does not answer (they are not suspicious); "row_cost" is each
    transaction's cost."""
    fraud = rows["is_fraud"].to_numpy().astype(bool)
    amount = rows["amount"].to_numpy(float)
    replied, _ = replies(fraud, rows["reply_p"].to_numpy(), act == 1, rng)
    explored = np.zeros(len(rows), dtype=bool) if explored is None else explored
    silent_block = (act == 1) & ~replied & ~explored & (c.no_reply == "block")
    stopped = (act == 2) | ((act == 1) & replied) | silent_block
    blocked_good = ~fraud & ((act == 2) | silent_block)
    lost = fraud & ~stopped
    row_cost = (c.fraud_share_lost * amount * lost + c.sms * (act == 1)
                + c.friction * (~fraud & (act == 1)) + c.block_good * blocked_good)
    cost = row_cost.sum()
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
            "replied": replied, "row_cost": row_cost}


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
    money, searches, acts, test_scores = [], {}, {}, {}
    val_costs = action_costs(val["label"], val["amount"], val["reply_p"], c)
    for name, build in builders.items():
        fitted = build().fit(pre[cols], pre["label"])
        score = predict_for("binary", fitted, val[cols])
        s = search_thresholds(score, val_costs, grid)
        # the final model (refitted on every training week) scores on its own scale, so the
        # thresholds travel as the shares of the validation week they text and block
        s["shares"] = [float((score >= t).mean()) for t in (s["t1"], s["t2"])]
        final = predict_threads(ctx.model("fraud", view, name))
        s["final"] = at_shares(final, val, cols, s["shares"])
        searches[name] = s
        test_scores[name] = predict_for("binary", final, test[cols])
        act = actions(test_scores[name], *s["final"])
        acts[name] = act
        o = outcome(test, act, c, np.random.default_rng(ctx.seed))
        replied = o.pop("replied")
        o.pop("row_cost")
        if name == selected:  # kept for the curve, the loop and the label estimates below
            val_score, sel_act, sel_replied, sel_pre = score, act, replied, fitted
        money.append({"model": name, "t1": s["final"][0], "t2": s["final"][1],
                      "text_share": s["shares"][0], "block_share": s["shares"][1],
                      "validation_cost": s["cost"], **o})
    nothing = outcome(test, np.zeros(len(test), dtype=int), c, rng)
    nothing.pop("replied")
    nothing.pop("row_cost")
    money.append({"model": "approve everything", "t1": np.inf, "t2": np.inf,
                  "validation_cost": float("nan"), **nothing})
    # the floor of the money: the policy that knows each transaction's true P(fraud)
    units = bs.unit_ids(test_rows, ctx.cfg["evaluate"]["bootstrap_unit"])[1]
    if "true_p" in test:
        floor, bayes = policy_floor(test, acts, selected, c, units, ctx.cfg, ctx.seed)
        money.append({"model": BAYES, "t1": float("nan"), "t2": float("nan"),
                      "validation_cost": float("nan"), **bayes})
    else:
        floor = fl.unavailable()
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
    best_share = 100 * s["shares"][0]
    ax.axvline(best_share, ls="--", c="grey", lw=1, label=f"chosen: {best_share:.2f}%")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    figures["cost_curve"] = fig
    # 2. the loop over the test weeks: replies become labels, the model retrains on them; the
    # explored variant also texts a random share of the transactions it would approve
    static = predict_threads(ctx.model("fraud", view, selected))
    # retraining moves the scores (the replies over-represent fraud), so a retrained model keeps
    # the validation week's text and block rates rather than the raw thresholds
    shares = s["shares"]
    explore = float(a["exploration_share"])
    variants = {"static": {"explore": 0.0}, "retrained on replies": {"explore": 0.0},
                "retrained, exploring": {"explore": explore}}
    for name, v in variants.items():
        v.update(model=static, t=s["final"], extra=[], learns=name != "static")
    periods = np.unique(test_rows.period)
    loop_rows = []
    for p in periods:
        rows = test[test_rows.period == p].reset_index(drop=True)
        truth = rows["is_fraud"].to_numpy()
        for variant, v in variants.items():
            score = predict_for("binary", v["model"], rows[cols])
            act = actions(score, *v["t"])
            # the exploration sample: its own stream, the same draw for every variant
            draw = np.random.default_rng([ctx.seed, int(p), 1]).uniform(size=len(rows))
            explored = (act == 0) & (draw < v["explore"])
            act = np.where(explored, 1, act)
            o = outcome(rows, act, c, np.random.default_rng(ctx.seed + int(p)), explored)
            replied = o.pop("replied")
            o.pop("row_cost")
            entry = {"period": int(p), "variant": variant, **o,
                     "true_average_precision": float(average_precision_score(truth, score))}
            if v["learns"]:
                # labels the week brings back: replies to texts, and chargebacks on approvals
                approved = act == 0
                labeled = replied | approved
                fb = rows[labeled].copy()
                fb["label"] = np.where(replied[labeled], truth[labeled],
                                       rows["label"].to_numpy()[labeled])
                entry.update(labels_gained=int(labeled.sum()),
                             labels_from_texts=int(replied.sum()),
                             fraud_rate_in_text_labels=float(truth[replied].mean())
                             if replied.any() else float("nan"),
                             week_fraud_rate=float(truth.mean()),
                             unnoticed_fraud_found_by_texts=int(
                                 (replied & (truth == 1) & (rows["label"] == 0)).sum()),
                             fraud_labelled_as_good=int((approved & (truth == 1)
                                                         & (rows["label"] == 0)).sum()),
                             explored_texts=int(explored.sum()),
                             fraud_found_by_exploration=int((explored & replied
                                                             & (truth == 1)).sum()))
                v["extra"].append(fb)
            loop_rows.append(entry)
        if a["retrain_each_week"] and p != periods[-1]:  # the last week's model is never used
            for v in variants.values():
                if v["learns"]:
                    data = pd.concat([train, *v["extra"]], ignore_index=True)
                    v["model"] = builders[selected]().fit(data[cols], data["label"])
                    v["t"] = at_shares(v["model"], val, cols, shares)
    loop = pd.DataFrame(loop_rows)
    figures["loop"] = loop.round(6)
    exploring = exploration_summary(loop, explore)
    # 2b. what the unreported fraud costs in training, and the calibration of high scores
    closing = (floor_gap(ctx, static, test, cols, units) if "true_p_label" in test
               else {})
    unreported = unreported_cost(ctx, builders[selected], static, val, test, cols, shares, c,
                                 units)
    calib, calib_figs = calibration_fix(sel_pre, val, val_score, test, cols, c, grid,
                                        [float(x) for x in a["calibration_bands"]], ctx.seed)
    figures.update(calib_figs)
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
    reasons, examples = shap_reasons(ctx, test, cols, searches.get("lgbm", s),
                                     int(a["shap_alerts"]), test_scores.get("lgbm"))
    # 5. the SMS system's load
    days = max((test["time_s"].max() - test["time_s"].min()) / 86400, 1 / 24)
    alerts = test[act == 1]
    per_hour = alerts.groupby((alerts["time_s"] // 3600).astype(int)).size()
    load = {"texts_per_day": float(len(alerts) / days),
            "peak_texts_per_hour": int(per_hour.max()) if len(per_hour) else 0,
            "texts_per_million_transactions": 1e6 * len(alerts) / max(len(test), 1),
            "blocks_per_day": float((act == 2).sum() / days)}
    facts = {"selected": selected, "thresholds": {"t1": s["final"][0], "t2": s["final"][1],
                                                  "text_share": s["shares"][0],
                                                  "block_share": s["shares"][1]},
             "costs": dict(a["costs"]), "no_reply": str(a["no_reply"]),
             "money": money.to_dict("records"), "loop": loop.to_dict("records"),
             "labels": labels, "reasons": reasons, "examples": examples, "load": load,
             "exploration": exploring, "unreported_in_training": unreported,
             "calibration": calib, "policy_floor": floor, "floor_gap": closing}
    show = money[["model", "texts", "blocks", "fraud", "fraud_stopped", "true_recall",
                  "measured_recall", "alert_precision", "fraud_lost_dollars",
                  "good_blocked", "cost_dollars"]]
    lshow = loop[[c_ for c_ in ("period", "variant", "texts", "blocks", "true_recall",
                                "measured_recall", "cost_dollars", "labels_from_texts",
                                "fraud_rate_in_text_labels", "week_fraud_rate",
                                "unnoticed_fraud_found_by_texts", "fraud_labelled_as_good",
                                "explored_texts", "fraud_found_by_exploration",
                                "true_average_precision")
                  if c_ in loop]]
    sections = [
        ("The policy: two thresholds that minimise expected cost", (
            f"Costs: text ${c.sms:.2f}, a good customer bothered ${c.friction:.2f}, a good "
            f"purchase blocked ${c.block_good:.2f}, a fraud approved {c.fraud_share_lost:.0%} "
            f"of its amount; no reply to a text: **{c.no_reply}**. Each model's thresholds are "
            f"searched on the validation {f['unit']} (scores from a fit on the weeks before "
            f"it, labels as the bank has them), carried as the shares of that {f['unit']} they "
            f"text and block (the final model, refitted on every training {f['unit']}, scores on "
            f"a scale of its own), then applied to the test {f['unit']}s:\n\n"
            + markdown_table(show.round(3))
            + f"\n\n`{selected}`: text the top {100 * s['shares'][0]:.2f}% (final model's score "
              f"{s['final'][0]:.4g} and up), block the top {100 * s['shares'][1]:.2f}% "
              f"({s['final'][1]:.4g} and up)."
              f"\n\n![cost curve](analysis/cost_curve.png)")),
        ("The floor: the policy that knows the true P(fraud)", policy_floor_text(floor, selected)),
        *([("What would close the gap to the floor", floor_gap_text(closing, selected))]
          if closing else []),
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
        ("What unreported fraud costs in training", _unreported_text(unreported, selected)),
        ("The exploration sample, simulated", _exploration_text(exploring, c)),
        ("Calibration at high scores", _calibration_text(calib) + "\n\n"
         + markdown_table(pd.DataFrame(calib["bands"]).round(4))
         + "\n\n![calibration](analysis/calibration_high.png)"),
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


BAYES = "Bayes policy (knows P(fraud))"


def policy_floor(test: pd.DataFrame, acts: dict, selected: str, c: Costs, units: np.ndarray,
                 cfg, seed: int) -> tuple[dict, dict]:
    """The Bayes floor of the money (lifecycle/floor.py's entry): each test transaction gets the
    action with the lowest expected cost under its true P(fraud) (the simulator's `true_p`),
    against the selected model's and the rules' policies, on the same reply draws and the same
    day resamples. Two costs: the realised one of the money table (the true fraud, the replies
    drawn), whose floor holds on average, and the expected one under the true P(fraud), which
    no policy can undercut on any transaction. The entry and the Bayes policy's outcome."""
    p = test["true_p"].to_numpy(float)
    expected = expected_action_costs(p, test["amount"], test["reply_p"], c)
    policies = {selected: acts[selected], "baseline": acts["baseline"],
                "floor": bayes_actions(p, test["amount"], test["reply_p"], c)}
    stats, points = {}, {}
    for name, act in policies.items():
        o = outcome(test, act, c, np.random.default_rng(seed))
        stats[name] = {"cost_dollars": bs.Additive([o.pop("row_cost")], lambda t: t[:, 0]),
                       "expected_cost_dollars": bs.Additive(
                           [expected[np.arange(len(act)), act]], lambda t: t[:, 0])}
        points[name] = {k: st.point() for k, st in stats[name].items()}
        o.pop("replied")
        if name == "floor":
            bayes = o
    e = cfg["evaluate"]
    boot = bs.resample_all(stats, bs.Resamples(units, int(e["bootstrap_resamples"]), seed,
                                               int(e["bootstrap_rowwise_resamples"])))
    entry = fl.summarise({k: v for k, v in points.items() if k != "floor"}, points["floor"],
                         boot, selected, "cost_dollars", "true_p")
    entry["model"] = points[selected]
    entry["baseline"] = points["baseline"]
    return entry, bayes


def floor_gap(ctx: AnalysisContext, static, test: pd.DataFrame, cols: list[str],
              units: np.ndarray) -> dict:
    """What the gap between the selected model and the floor is made of, on the test weeks'
    labels (the task's AUPRC): a logistic regression on the simulator's own terms of the
    log-odds (`data.logit_terms`: the true function's family, hinges and interactions the
    bank could build from its features), fitted on the same training rows and labels. Near the
    floor, the gap is how the features represent the patterns; far from it, the labels or
    their number. Paired day-bootstrap intervals against the floor."""
    from sklearn.linear_model import LogisticRegression

    from cases.fraud.data import logit_terms

    lg = ctx.cfg["data"]["world"]["fraud_logit"]
    train = ctx.train
    fit = LogisticRegression(max_iter=2000).fit(logit_terms(train, lg), train["label"])
    y = test["label"].to_numpy()
    scores = {"selected": predict_for("binary", static, test[cols]),
              "true terms": fit.predict_proba(logit_terms(test, lg))[:, 1],
              "floor": test["true_p_label"].to_numpy(float)}
    e = ctx.cfg["evaluate"]
    cmp = bs.compare({k: {"average_precision": bs.AveragePrecision(y, v)}
                      for k, v in scores.items()}, units, "floor",
                     int(e["bootstrap_resamples"]), ctx.seed,
                     int(e["bootstrap_rowwise_resamples"]))
    out = {k: {"average_precision": v["point"]["average_precision"],
               "interval": v["interval"]["average_precision"],
               **({"minus_floor": v["vs_floor"]["average_precision"]} if "vs_floor" in v
                  else {})} for k, v in cmp.items()}
    d = out["true terms"]["minus_floor"]
    # the true function's family reaches the floor: the paired interval covers 0 (or is above)
    out["true_terms_reach_floor"] = bool(d["hi"] is None or d["hi"] >= 0)
    return out


def floor_gap_text(g: dict, selected: str) -> str:
    s, t, f = g["selected"], g["true terms"], g["floor"]
    reached = g["true_terms_reach_floor"]
    return (
        f"AUPRC on the test weeks' labels: the floor {f['average_precision']:.3f} "
        f"[{f['interval'][0]:.3f}, {f['interval'][1]:.3f}]; `{selected}` "
        f"{s['average_precision']:.3f}, minus the floor {s['minus_floor']['diff']:+.3f} "
        f"[{s['minus_floor']['lo']:+.3f}, {s['minus_floor']['hi']:+.3f}]. A logistic "
        f"regression on the simulator's own terms of the log-odds (the hinges and interactions "
        f"of data.logit_terms, built from the same features), fitted on the same rows and "
        f"labels: {t['average_precision']:.3f}, minus the floor "
        f"{t['minus_floor']['diff']:+.3f} [{t['minus_floor']['lo']:+.3f}, "
        f"{t['minus_floor']['hi']:+.3f}]. "
        + ("That interval reaches 0: the labels and their number suffice once the features "
           "carry the patterns (an amount above what a category usually costs, a distance "
           "beyond the usual radius, small charges in a burst): what closes the gap is features "
           "that carry those patterns."
           if reached else
           "Even the true function's family falls short of the floor on these labels: the gap "
           "is in the labels (their number, the unreported share), not in the features."))


def policy_floor_text(f: dict, selected: str) -> str:
    if not f.get("available"):
        return f"{f.get('note', fl.NO_FLOOR)}: the transactions' true P(fraud) is not known."
    lo, hi = f["interval"]["cost_dollars"]
    d = f["model_minus_floor"]
    share, (slo, shi) = f["gap_closed"], f["gap_closed_interval"]
    return (
        "Each test transaction gets the action (approve, text, block) with the lowest expected "
        "cost under its true P(fraud), the simulator's `true_p` (the card's leak, which no "
        "transaction shows, integrated out): the best any policy could do with what the bank "
        "sees (the row in the table above). On the same replies, it costs "
        f"${f['test']['cost_dollars']:,.0f} [${lo:,.0f}, ${hi:,.0f}] against "
        f"${f['model']['cost_dollars']:,.0f} for `{selected}` and "
        f"${f['baseline']['cost_dollars']:,.0f} for the rules; `{selected}` − floor "
        f"{signed_usd(d['cost_dollars']['diff'])} [{signed_usd(d['cost_dollars']['lo'])}, "
        f"{signed_usd(d['cost_dollars']['hi'])}], so it closes "
        + ("n/a" if share is None else f"{100 * share:.1f}%")
        + (f" [{100 * slo:.1f}%, {100 * shi:.1f}%]" if slo is not None else "")
        + " of the gap from the rules to the floor. In expectation under the true P(fraud) "
        f"(no draw of fraud or replies, so the floor holds transaction by transaction): "
        f"${f['test']['expected_cost_dollars']:,.0f} against "
        f"${f['model']['expected_cost_dollars']:,.0f} for `{selected}` and "
        f"${f['baseline']['expected_cost_dollars']:,.0f} for the rules.")


def shap_reasons(ctx: AnalysisContext, test: pd.DataFrame, cols: list[str], s: dict,
                 n: int, score: np.ndarray | None = None) -> tuple[list[dict], list[str]]:
    """`score`: the LightGBM model's scores of `test` when already computed."""
    model = ctx.model("fraud", ctx.cfg["primary"]["view"], "lgbm")
    if score is None:
        score = predict_for("binary", model, test[cols])
    alerts = test[score >= s["final"][0]]
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


def at_shares(model, val: pd.DataFrame, cols: list[str], shares: list[float]) -> tuple:
    """(t1, t2) that text and block the given shares of the validation week under `model`."""
    v = predict_for("binary", model, val[cols])
    return tuple(float(np.quantile(v, 1 - sh, method="higher")) if sh > 0 else np.inf
                 for sh in shares)


def unreported_cost(ctx: AnalysisContext, build, static, val: pd.DataFrame,
                    test: pd.DataFrame, cols: list[str], shares: list[float], c: Costs,
                    units: np.ndarray) -> dict:
    """The selected model trained on the labels the bank has (reported fraud) against the
    same model trained on the truth, both scored on the truth of the test weeks at the same
    text and block rates: AUPRC and the policy's cost, with paired day-bootstrap intervals."""
    train = ctx.train
    truth = test["is_fraud"].to_numpy()
    models = {"reported labels": static,
              "true labels": build().fit(train[cols], train["is_fraud"])}
    stats, out = {}, {}
    for name, m in models.items():
        score = predict_for("binary", m, test[cols])
        o = outcome(test, actions(score, *at_shares(m, val, cols, shares)), c,
                    np.random.default_rng(ctx.seed))
        stats[name] = {"average_precision": bs.AveragePrecision(truth, score),
                       "cost_dollars": bs.Additive([o["row_cost"]], lambda t: t[:, 0])}
        out[name] = {k: o[k] for k in ("texts", "blocks", "true_recall", "fraud_lost_dollars",
                                       "cost_dollars")}
    e = ctx.cfg["evaluate"]
    cmp = bs.compare(stats, units, "reported labels", int(e["bootstrap_resamples"]), ctx.seed,
                     int(e["bootstrap_rowwise_resamples"]))
    for name in models:
        out[name]["average_precision"] = cmp[name]["point"]["average_precision"]
        out[name]["interval"] = cmp[name]["interval"]
    diff = cmp["true labels"]["vs_reported labels"]
    return {"models": out, "true_minus_reported": diff,
            "train_unreported_fraud": int((train["is_fraud"] == 1).sum()
                                          - (train["label"] == 1).sum()),
            "train_true_fraud": int((train["is_fraud"] == 1).sum())}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def calibration_fix(pre_model, val: pd.DataFrame, val_score: np.ndarray, test: pd.DataFrame,
                    cols: list[str], c: Costs, grid: int, edges: list[float], seed: int
                    ) -> tuple[dict, dict]:
    """The selected model fitted on the weeks before the validation week, its scores mapped by
    a Platt (logistic) calibration fitted on the held-out validation week, scored on the test
    weeks: predicted against observed in the high-score bands, the calibration error, what the
    policy costs with each score, and the fraud dollars each expects among the alerts."""
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6).fit(_logit(val_score)[:, None], val["label"])

    def calibrate(p):
        return platt.predict_proba(_logit(p)[:, None])[:, 1]

    raw = predict_for("binary", pre_model, test[cols])
    cal = calibrate(raw)
    y, truth = test["label"].to_numpy(), test["is_fraud"].to_numpy()
    amount = test["amount"].to_numpy(float)
    band = pd.cut(raw, edges, include_lowest=True)
    bands = (pd.DataFrame({"band": band, "raw": raw, "calibrated": cal, "reported": y,
                           "true": truth})
             .groupby("band", observed=True)
             .agg(transactions=("raw", "size"), mean_raw=("raw", "mean"),
                  mean_calibrated=("calibrated", "mean"), observed_reported=("reported", "mean"),
                  observed_true=("true", "mean")).reset_index())
    bands["band"] = bands["band"].astype(str)
    val_costs = action_costs(val["label"], val["amount"], val["reply_p"], c)
    policy = {}
    for name, (v, t) in {"raw": (val_score, raw),
                         "calibrated": (calibrate(val_score), cal)}.items():
        th = search_thresholds(v, val_costs, grid)
        act = actions(t, th["t1"], th["t2"])
        o = outcome(test, act, c, np.random.default_rng(seed))
        alert = act > 0
        policy[name] = {"t1": th["t1"], "t2": th["t2"], "texts": int((act == 1).sum()),
                        "blocks": int((act == 2).sum()), "cost_dollars": o["cost_dollars"],
                        "expected_fraud_dollars_in_alerts": float((t * amount)[alert].sum()),
                        "ece": expected_calibration_error(y, t)}
    alert = actions(raw, policy["raw"]["t1"], policy["raw"]["t2"]) > 0
    facts = {"method": "Platt scaling on the validation week", "bands": bands.to_dict("records"),
             "policy": policy,
             "reported_fraud_dollars_in_alerts": float((amount * y)[alert].sum()),
             "true_fraud_dollars_in_alerts": float((amount * truth)[alert].sum()),
             "platt": {"slope": float(platt.coef_[0][0]),
                       "intercept": float(platt.intercept_[0])}}
    fig, ax = figure("High scores: predicted against observed (test weeks)",
                     "mean predicted probability in the band", "observed rate of reported fraud")
    hi = bands[bands["transactions"] > 0]
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.plot(hi["mean_raw"], hi["observed_reported"], marker="o", label="raw score")
    ax.plot(hi["mean_calibrated"], hi["observed_reported"], marker="s", label="calibrated")
    ax.legend(fontsize=8)
    return facts, {"calibration_high": fig, "calibration_bands": bands.round(6)}


def exploration_summary(loop: pd.DataFrame, share: float) -> dict:
    """The loop's weeks summed for each variant, and the exploring variant against the one
    retrained on replies alone: what the random texts cost and what they bring back."""
    learnt = loop[loop["variant"] != "static"]
    total = learnt.groupby("variant", sort=False).agg(
        cost_dollars=("cost_dollars", "sum"), texts=("texts", "sum"),
        fraud_stopped=("fraud_stopped", "sum"), explored_texts=("explored_texts", "sum"),
        fraud_found_by_exploration=("fraud_found_by_exploration", "sum"),
        unnoticed_fraud_found_by_texts=("unnoticed_fraud_found_by_texts", "sum"))
    # the weeks after the first retraining: where the two retrained models differ
    later = learnt[learnt["period"] > learnt["period"].min()]
    ap = later.groupby("variant", sort=False)["true_average_precision"].mean()
    base, explored = "retrained on replies", "retrained, exploring"
    return {"share": share, "weeks": int(loop["period"].nunique()),
            "totals": {k: {c_: float(v) for c_, v in r.items()} for k, r in total.iterrows()},
            "later_weeks_true_average_precision": {k: float(v) for k, v in ap.items()},
            "extra_cost_dollars": float(total.loc[explored, "cost_dollars"]
                                        - total.loc[base, "cost_dollars"]),
            "true_average_precision_change": float(ap.get(explored, np.nan)
                                                   - ap.get(base, np.nan))}


def _unreported_text(u: dict, selected: str) -> str:
    m, d = u["models"], u["true_minus_reported"]
    rep, tru = m["reported labels"], m["true labels"]
    ap, cost = d["average_precision"], d["cost_dollars"]
    return (
        f"`{selected}` trained on the labels the bank has ({u['train_unreported_fraud']:,} of "
        f"the {u['train_true_fraud']:,} training frauds never reported, so learnt as good) "
        f"and on the true labels, both scored against the truth of the test weeks at the same "
        f"text and block rates. AUPRC (true labels): {rep['average_precision']:.3f} against "
        f"{tru['average_precision']:.3f}; paired difference (true − reported) "
        f"{ap['diff']:+.3f}, 95% interval [{ap['lo']:+.3f}, {ap['hi']:+.3f}]"
        f"{' (within noise)' if ap['within_noise'] else ''}. Policy cost: "
        f"${rep['cost_dollars']:,.0f} against ${tru['cost_dollars']:,.0f}; difference "
        f"{signed_usd(cost['diff'])}, interval [{signed_usd(cost['lo'])}, {signed_usd(cost['hi'])}]"
        f"{' (within noise)' if cost['within_noise'] else ''}. True recall "
        f"{100 * rep['true_recall']:.1f}% against {100 * tru['true_recall']:.1f}%. "
        + UNREPORTED_SCOPE)


def _exploration_text(e: dict, c: Costs) -> str:
    t = e["totals"]
    base, ex = t.get("retrained on replies", {}), t.get("retrained, exploring", {})
    ap = e["later_weeks_true_average_precision"]
    if not ex:
        return "No retrained variant ran (`retrain_each_week` is off)."
    return (
        f"Each test week the exploring variant also texts {100 * e['share']:.1f}% of the "
        f"transactions it would approve, at random (no reply: approved, they are not "
        f"suspicious); replies to them are labels from where the model does not look. Over "
        f"the {e['weeks']} test weeks: {int(ex['explored_texts']):,} exploration texts found "
        f"{int(ex['fraud_found_by_exploration'])} fraud(s); the policy costs "
        f"${ex['cost_dollars']:,.0f} against ${base['cost_dollars']:,.0f} without exploration "
        f"({signed_usd(e['extra_cost_dollars'])}, texts at ${c.sms:.2f} plus ${c.friction:.2f} of "
        f"friction each). The retrained model's AUPRC against the truth in the weeks after "
        f"retraining: {ap.get('retrained, exploring', float('nan')):.3f} with exploration, "
        f"{ap.get('retrained on replies', float('nan')):.3f} without "
        f"({number(e['true_average_precision_change'], '+.3f')}; week by week in the loop "
        f"table). A "
        f"sample this size brings back few fraud labels, so it is no lever for the model; "
        f"its use is to measure the fraud the model approves and the unreported share, "
        f"without the policy's selection.")


def _calibration_text(k: dict) -> str:
    top = k["bands"][-1]
    p = k["policy"]
    true_dollars = k["true_fraud_dollars_in_alerts"]
    raw_nearer = abs(p["raw"]["expected_fraud_dollars_in_alerts"] - true_dollars) < abs(
        p["calibrated"]["expected_fraud_dollars_in_alerts"] - true_dollars)
    return (
        f"The selected model, fitted on the weeks before the validation week, in score bands "
        f"of the test weeks. In the top band it predicts {top['mean_raw']:.3f}; "
        f"{top['observed_reported']:.3f} of those transactions are reported fraud and "
        f"{top['observed_true']:.3f} are true fraud. "
        + {"truth": "Against the truth the top band is calibrated: the gap to the reported rate "
                    "is the fraud nobody reports. ",
           "over": "It is overconfident against the truth as well as against the reports. ",
           "under": "It sits below the true rate: against the truth it is underconfident, and "
                    "the reported rate understates the fraud in the band. "}[top_band_reading(top)]
        + f"Recalibrating on the held-out validation week's labels ({k['method']}, slope "
        f"{k['platt']['slope']:.3f}, intercept {k['platt']['intercept']:.3f}) brings the band "
        f"to {top['mean_calibrated']:.3f}, calibrated to the labels the bank sees; calibration "
        f"error against them {p['raw']['ece']:.5f} raw, {p['calibrated']['ece']:.5f} "
        f"calibrated. Its cost at the thresholds: the policy acts on the score's order, which "
        f"the calibration keeps, so thresholds searched on each cost "
        f"${p['raw']['cost_dollars']:,.0f} raw and ${p['calibrated']['cost_dollars']:,.0f} "
        f"calibrated. It matters where the probability itself is used: the fraud dollars "
        f"expected among the alerts are ${p['raw']['expected_fraud_dollars_in_alerts']:,.0f} "
        f"raw and ${p['calibrated']['expected_fraud_dollars_in_alerts']:,.0f} calibrated, "
        f"against ${k['reported_fraud_dollars_in_alerts']:,.0f} reported and "
        f"${k['true_fraud_dollars_in_alerts']:,.0f} true: use the calibrated score to "
        f"forecast chargebacks"
        + (", the raw one to forecast losses (it is nearer the true dollars here)."
           if raw_nearer else "; the calibrated one is nearer the true dollars too."))
