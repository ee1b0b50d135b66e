"""Fraud: the time split, the cost arithmetic on a hand-made case, the threshold search on a known
cost curve, history features from earlier transactions only, the real ULB loader on a small file
of the same schema, and the OpenML download's checksum and offline message."""

import hashlib
import io
import json
import urllib.error

import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.fraud import data as fd
from cases.fraud.features import build, history
from cases.fraud.policy import Costs, action_costs, actions, policy_cost, search_thresholds
from cases.fraud.tasks import (
    RulesBaseline,
    precision_at_recall,
    rare_event_metrics,
    rare_event_statistics,
    recall_at_alert_rate,
)
from cases.lifecycle import bootstrap as bs


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=fraud"]).case


COSTS = Costs(sms=0.1, friction=1.0, block_good=10.0, fraud_share_lost=1.0, no_reply="block")


def test_cost_arithmetic_on_a_hand_made_case():
    # a good $50 purchase and a $200 fraud; the customer replies with probability 0.8
    c = action_costs([0, 1], [50.0, 200.0], [0.8, 0.8], COSTS)
    np.testing.assert_allclose(c[0], [0.0, 0.1 + 1.0 + 0.2 * 10.0, 10.0])  # approve, text, block
    np.testing.assert_allclose(c[1], [200.0, 0.1, 0.0])
    lenient = Costs(0.1, 1.0, 10.0, 1.0, no_reply="approve")
    c = action_costs([0, 1], [50.0, 200.0], [0.8, 0.8], lenient)
    np.testing.assert_allclose(c[:, 1], [0.1 + 1.0, 0.1 + 0.2 * 200.0])
    assert actions([0.1, 0.5, 0.9], 0.4, 0.8).tolist() == [0, 1, 2]
    assert policy_cost([0.1, 0.9], action_costs([0, 1], [50.0, 200.0], [0.8, 0.8], COSTS),
                       0.4, 0.8) == pytest.approx(0.0)
    with pytest.raises(CasebookError, match="no_reply='maybe'"):
        Costs.from_cfg({"sms": 1, "friction": 1, "block_good": 1, "fraud_share_lost": 1}, "maybe")


def test_threshold_search_finds_the_optimum_of_a_known_cost_curve():
    """Scores 0..999: rows scoring >= 900 are fraud ($100 each), the rest good. Texting a good
    row costs 1.1 + 0.2 * 10 = 3.1, blocking it 10; so the optimum texts and blocks exactly the
    fraud (t1 = t2 = 900 would block: cost 0), and any lower threshold adds cost."""
    score = np.arange(1000) / 1000
    fraud = (score >= 0.9).astype(int)
    costs = action_costs(fraud, np.full(1000, 100.0), np.full(1000, 0.8), COSTS)
    best = search_thresholds(score, costs, grid=1000)  # every distinct score: exact
    assert best["cost"] == pytest.approx(policy_cost(score, costs, best["t1"], best["t2"]))
    assert best["cost"] == pytest.approx(0.0)
    assert best["t2"] == pytest.approx(0.9, abs=0.002)
    # on a quantile grid (fewer candidates than scores) it lands next to the optimum
    coarse = search_thresholds(score, costs, grid=200)
    assert coarse["cost"] <= 3.1 * 10
    # brute force over a coarse grid never beats it
    grid = np.r_[np.linspace(0, 1, 51), np.inf]
    brute = min(policy_cost(score, costs, a, b) for a in grid for b in grid if b >= a)
    assert best["cost"] <= brute + 1e-9
    # the curve holds the best total for each t1 and is never below the optimum
    assert min(p["cost"] for p in best["curve"]) == pytest.approx(best["cost"])


def test_texting_wins_when_blocking_good_customers_is_dear():
    score = np.r_[np.full(50, 0.95), np.full(950, 0.1)]
    fraud = np.r_[np.ones(25), np.zeros(25), np.zeros(950)].astype(int)  # half of the top fraud
    costs = action_costs(fraud, np.full(1000, 100.0), np.full(1000, 0.9),
                         Costs(0.05, 0.5, 50.0, 1.0, "approve"))
    best = search_thresholds(score, costs, grid=50)
    assert actions(score, best["t1"], best["t2"])[:50].tolist() == [1] * 50  # text, not block


def test_history_uses_only_earlier_transactions():
    tx = pd.DataFrame({"customer_id": [1, 1, 1, 2, 1],
                       "time_s": [0.0, 600.0, 1200.0, 1300.0, 90000.0],
                       "merchant_id": [5, 5, 6, 5, 5], "amount": [10.0, 30.0, 2.0, 7.0, 100.0]})
    h = history(tx)
    assert h["tx_1h"].tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]
    assert h["tx_24h"].tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]  # 90000 s is 24 h after 3600
    assert np.isnan(h["amount_vs_usual"].iloc[0]) and h["amount_vs_usual"].iloc[1] == 3.0
    assert h["amount_vs_usual"].iloc[4] == pytest.approx(100 / 14)
    assert h["new_merchant"].tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert h["minutes_since_last"].iloc[1] == 10.0 and np.isnan(h["minutes_since_last"].iloc[3])
    assert h["small_amount_burst"].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_time_split_puts_the_last_weeks_in_test(cfg):
    tx = fd.simulate({**cfg.data.world, "customers": 400})
    ft = build({"transactions": tx}, cfg)
    t = ft.frame["time_s"]
    assert t[ft.split == "test"].min() > t[ft.split == "train"].max()
    assert ft.split_info["unit"] == "week"
    assert ft.period[ft.split == "test"].nunique() == cfg.features.test_weeks
    assert {"tx_1h", "amount_vs_usual", "category"} <= set(ft.views["tx"])
    assert "V1" in ft.split_info["unavailable_features"]
    # the bank's label is what was reported: never more fraud than the truth
    assert (ft.frame["label"] <= ft.frame["is_fraud"]).all()


def ulb_frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 172792, n)).round(0)})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=n)
    frame["Amount"] = rng.exponential(80, n).round(2)
    frame["Class"] = (rng.uniform(size=n) < 0.05).astype(int)
    return pd.concat([frame, frame.iloc[:7]], ignore_index=True)  # seven duplicated rows


def test_real_loader_on_a_small_file_with_the_ulb_schema(tmp_path, cfg):
    path = tmp_path / "creditcard.csv"
    ulb_frame().to_csv(path, index=False)
    ds = fd.load({**cfg.data, "source": "real", "path": str(path)}, tmp_path)
    tx = ds.tables["transactions"]
    assert len(tx) == 400 and int(ds.tables["duplicates"]["removed"].iloc[0]) == 7
    assert tx["time_s"].is_monotonic_increasing
    ft = build(ds.tables, cfg)
    assert ft.split_info["unit"].startswith("block")
    assert {"V1", "V28", "amount", "hour"} <= set(ft.views["tx"])
    assert ft.frame["time_s"][ft.split == "test"].min() > ft.frame["time_s"][
        ft.split == "train"].max()
    bad = ulb_frame().drop(columns=["V7"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(CasebookError, match=r"bad.csv: missing column\(s\) V7"):
        fd.load({**cfg.data, "source": "real", "path": str(tmp_path / "bad.csv")}, tmp_path)


def arff_bytes(frame: pd.DataFrame) -> bytes:
    head = "@RELATION creditcard\n" + "".join(
        f"@ATTRIBUTE {c} {'{0,1}' if c == 'Class' else 'NUMERIC'}\n" for c in frame.columns)
    body = frame.assign(Class=frame["Class"].map(lambda v: f"'{v}'")).to_csv(
        index=False, header=False)
    return (head + "@DATA\n" + body).encode()


def test_openml_download_checks_the_checksum_and_caches(tmp_path, cfg, monkeypatch):
    body = arff_bytes(ulb_frame())
    meta = {"data_set_description": {"file_id": "1673544",
                                     "md5_checksum": hashlib.md5(body).hexdigest()}}
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(json.dumps(meta).encode() if "json" in url else body)

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    ds = fd.load({**cfg.data, "source": "openml"}, tmp_path)
    assert len(ds.tables["transactions"]) == 400 and len(calls) == 2
    fd.load({**cfg.data, "source": "openml"}, tmp_path)  # cached: no new download
    assert len(calls) == 2
    meta["data_set_description"]["md5_checksum"] = "0" * 32
    (tmp_path / "openml_1597.json").unlink()
    with pytest.raises(CasebookError, match="checksum mismatch"):
        fd.load({**cfg.data, "source": "openml"}, tmp_path / "fresh")


def test_openml_offline_says_how_to_provide_the_file(tmp_path, cfg, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(CasebookError, match="case.data.source=real case.data.path="):
        fd.load({**cfg.data, "source": "openml"}, tmp_path)


def test_rare_event_metrics_and_rules_on_hand_numbers():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert recall_at_alert_rate(y, s, 0.2) == 0.5  # top 2: one of the two frauds
    assert precision_at_recall(y, s, 1.0) == pytest.approx(2 / 3)
    # the rules' score is the training fraud rate among rows firing as many rules
    X = pd.DataFrame({"amount": np.r_[np.full(98, 10.0), 5000.0, 10.0],
                      "tx_1h": np.r_[np.zeros(98), 4, 4]})
    y = np.r_[np.zeros(97), 1, 1, 0]  # no rule: 1 fraud in 98; one rule: 0 in 1; both: 1 in 1
    rules = RulesBaseline().fit(X, y)
    p = rules.predict_proba(X)[:, 1]
    assert p[0] == pytest.approx(1 / 98) and p[-1] == pytest.approx(1 / 98)  # never below
    assert p[-2] == pytest.approx(1 - 1e-4)
    assert rules.predict_proba(X.assign(tx_1h=0.0))[-2, 1] == pytest.approx(1 / 98)


def test_the_money_guardrail_fails_a_model_whose_policy_costs_more_than_the_rules(cfg):
    """The gate's dollar metric on a hand-made world: a model scoring every $100 fraud 0 (so its
    policy approves them) and the good customers 0.9 (so it blocks them) costs more than rules
    that score the frauds 0.9; the fail guardrail of fraud.yaml then fails the gate even though
    the model wins the selection metric (both rank well there: the gate sees only the money)."""
    rng = np.random.default_rng(0)
    n = 2000
    y = (rng.uniform(size=n) < 0.05).astype(int)
    rows = pd.DataFrame({"amount": np.full(n, 100.0), "reply_p": np.full(n, 0.7)})
    rules = np.where(y == 1, 0.9, 0.001)
    model = np.where(y == 1, 0.001, 0.9)
    # at 0.9 a text is cheapest in expectation (sms $0.05; a good customer's friction $1 and,
    # silent with probability 0.3, a $15 block), at 0.001 approving; a missed fraud costs $100
    c = cfg.analysis.costs
    assert rare_event_metrics(y, rules, rows, cfg)["policy_cost_per_1k"] == pytest.approx(
        1000 * np.mean(y * c.sms))
    text_good = c.sms + c.friction + 0.3 * c.block_good
    assert rare_event_metrics(y, model, rows, cfg)["policy_cost_per_1k"] == pytest.approx(
        1000 * np.mean(np.where(y == 1, 100.0, text_good)))
    points = {"baseline": rare_event_metrics(y, rules, rows, cfg),
              "model": rare_event_metrics(y, model, rows, cfg)}
    points["model"]["average_precision"], points["baseline"]["average_precision"] = 0.9, 0.1
    stats = {"baseline": rare_event_statistics(y, rules, rows, cfg),
             "model": rare_event_statistics(y, model, rows, cfg)}
    rs = bs.Resamples(np.arange(n) // 20, 200, seed=0)
    boot = bs.resample_all(stats, rs)
    for name, ap in (("model", 0.9), ("baseline", 0.1)):
        boot[name]["average_precision"] = np.full(rs.n, ap)
    guards = list(cfg.evaluate.guardrails)
    assert [g["metric"] for g in guards] == ["policy_cost_per_1k"]
    gate = bs.evaluate_view(points, boot, "model", "average_precision", 0.05, guards)["gate"]
    assert gate["relative_improvement"] > 0.05
    assert gate["guardrails"][0]["breached"] and gate["guardrails"][0]["action"] == "fail"
    assert not gate["passed"]
    # the same model with the rules' money passes
    ok = bs.evaluate_view({**points, "model": {**points["model"], "policy_cost_per_1k":
                                              points["baseline"]["policy_cost_per_1k"]}},
                          {**boot, "model": {**boot["model"],
                                             "policy_cost_per_1k": boot["baseline"][
                                                 "policy_cost_per_1k"]}},
                          "model", "average_precision", 0.05, guards)["gate"]
    assert ok["passed"] and not ok["guardrails"][0]["breached"]


# ---------------------------------------------------------------------- the Bayes floor
def test_the_simulator_draws_fraud_from_the_probability_it_writes(cfg):
    """Fraud is drawn from P(fraud | what the bank sees) with the leak integrated out: the mean
    of `true_p` is the configured fraud rate, the draws follow it, the reported share follows
    `true_p_reported`, and `true_p` is a function of the very features the task sees."""
    w = cfg.data.world
    tx = fd.simulate({**w, "customers": 4000})
    p = tx["true_p"].to_numpy()
    assert p.mean() == pytest.approx(float(w.fraud_rate), rel=1e-6)
    n_fraud = int(tx["is_fraud"].sum())
    assert abs(n_fraud - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    top = p > np.quantile(p, 0.999)  # the riskiest 0.1%: most of the fraud, at its own rate
    assert tx["is_fraud"][top].mean() == pytest.approx(p[top].mean(), abs=0.12)
    np.testing.assert_allclose(tx["true_p_reported"], (1 - float(w.unnoticed_share)) * p)
    # the leak is drawn per card and no feature depends on it
    assert tx.groupby("customer_id")["card_leaked"].nunique().max() == 1
    assert tx["card_leaked"].mean() == pytest.approx(float(w.leak_share), abs=0.05)
    ft = build({"transactions": tx}, cfg)
    z = fd.fraud_logit(ft.frame, w.fraud_logit)  # from the features frame the task reads
    b = fd.solve_intercept(z, float(w.fraud_rate), float(w.leak_share), float(w.leak_logit))
    np.testing.assert_allclose(ft.frame["true_p"],
                               fd.p_fraud_seen(z, b, float(w.leak_share), float(w.leak_logit)))
    np.testing.assert_allclose(ft.frame["true_p_label"], tx["true_p_reported"])
    assert not {"true_p", "true_p_label"} & {c for v in ft.views.values() for c in v}
    with pytest.raises(CasebookError, match="case.features.label='chargeback'"):
        build({"transactions": tx.assign(chargeback=tx["reported"])},
              {**cfg, "features": {**cfg.features, "label": "chargeback"}})


def _test_rows(is_fraud, p, seed=0):
    rng = np.random.default_rng(seed)
    n = len(is_fraud)
    return pd.DataFrame({"is_fraud": is_fraud, "label": is_fraud, "true_p": p,
                         "amount": rng.lognormal(np.log(40), 1.0, n).round(2),
                         "reply_p": rng.uniform(0.5, 0.9, n),
                         "time_s": np.sort(rng.uniform(0, 21 * 86400, n))})


EVAL = {"evaluate": {"bootstrap_resamples": 300, "bootstrap_rowwise_resamples": 100}}


def test_the_policy_floor_is_exact_on_a_degenerate_truth():
    """P(fraud) in {0, 1} and right: the Bayes policy blocks every fraud and approves the rest,
    so it loses nothing on every resample, and the AUPRC of that truth is 1."""
    from cases.fraud.analysis import policy_floor
    from tests.unit.test_floor import _floor_entry

    rng = np.random.default_rng(3)
    y = (rng.uniform(size=3000) < 0.02).astype(int)
    test = _test_rows(y, y.astype(float))
    c = Costs.from_cfg(compose(["case=fraud"]).case.analysis.costs, "block")
    rules = (test["amount"] > 100).astype(int).to_numpy() * 2  # block large amounts
    model = np.where(rng.uniform(size=3000) < 0.5, y, 0)  # blocks half of the fraud
    units = (test["time_s"] // 86400).astype(int).to_numpy()
    entry, bayes = policy_floor(test, {"lgbm": model, "baseline": rules}, "lgbm", c, units,
                                EVAL, 0)
    assert entry["test"] == {"cost_dollars": 0.0, "expected_cost_dollars": 0.0}
    assert entry["interval"]["cost_dollars"] == [0.0, 0.0]
    assert bayes["blocks"] == y.sum() and bayes["texts"] == 0 and bayes["true_recall"] == 1
    assert entry["model"]["cost_dollars"] > 0 and not entry["near_floor"]
    assert 0 < entry["gap_closed"] < 1
    auprc, _ = _floor_entry("binary", y, {"model": rng.uniform(size=3000),
                                          "baseline": np.full(3000, y.mean())},
                            y.astype(float), "average_precision")
    assert auprc["test"]["average_precision"] == 1.0
    assert auprc["interval"]["average_precision"] == [1.0, 1.0]


def test_a_model_handed_the_true_probability_reaches_the_floor_within_its_interval():
    """A logistic regression of the label on the true log-odds (the true function's family,
    fitted on other rows): its AUPRC and the cost of its cost-optimal policy land inside the
    floor's intervals; a model that ignores the truth does not."""
    from sklearn.linear_model import LogisticRegression

    from cases.fraud.analysis import policy_floor
    from tests.unit.test_floor import _floor_entry

    rng = np.random.default_rng(4)
    n = 40000
    z = rng.normal(-6, 2.0, 2 * n)
    p = 1 / (1 + np.exp(-z))
    y = (rng.uniform(size=2 * n) < p).astype(int)
    fit = LogisticRegression().fit(z[:n, None], y[:n])
    q = fit.predict_proba(z[n:, None])[:, 1]
    test = _test_rows(y[n:], p[n:], seed=5)
    c = Costs.from_cfg(compose(["case=fraud"]).case.analysis.costs, "block")
    from cases.fraud.policy import bayes_actions

    units = (test["time_s"] // 86400).astype(int).to_numpy()
    entry, _ = policy_floor(test, {"model": bayes_actions(q, test["amount"], test["reply_p"], c),
                                   "baseline": np.zeros(n, dtype=int)}, "model", c, units, EVAL,
                            0)
    lo, hi = entry["interval"]["cost_dollars"]
    assert lo <= entry["model"]["cost_dollars"] <= hi
    assert entry["gap_closed"] > 0.9
    auprc, points = _floor_entry("binary", y[n:], {"model": q, "baseline": np.full(n, y.mean())},
                                 p[n:], "average_precision")
    lo, hi = auprc["interval"]["average_precision"]
    assert lo <= points["model"]["average_precision"] <= hi and auprc["near_floor"]
    blind, _ = _floor_entry("binary", y[n:], {"model": rng.uniform(size=n),
                                              "baseline": np.full(n, y.mean())},
                            p[n:], "average_precision")
    assert not blind["near_floor"]
