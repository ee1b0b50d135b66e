"""One task: is this transaction fraud (as the bank will learn it)? Baseline: the rules a bank
runs before any model (a large amount for the customer, a burst of charges, a burst of small
ones, an amount or a distance beyond what 99% of transactions show). Candidates: logistic
regression and LightGBM (no class weight: see conf/case/fraud.yaml); selection by time-ordered
CV on the area under the precision-recall curve."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.models import lgbm_pipeline, linear_pipeline


class RulesBaseline(BaseEstimator, ClassifierMixin):
    """The rules a bank runs, from the columns the data has; its score is the fraud rate the
    training rows show among transactions firing as many rules (made non-decreasing in the count,
    so the ranking is the number of rules fired): a probability, as a bank knows its rules' hit
    rates, so the money a policy acting on it makes (`policy_cost_per_1k`) is a fair yardstick."""

    def fit(self, X: pd.DataFrame, y):
        self.classes_ = np.array([0, 1])
        self.limits_ = {c: float(X[c].quantile(0.99)) for c in ("amount", "distance_km")
                        if c in X}
        fired = self._fired(X)
        y = np.asarray(y, dtype=float)
        rates = np.zeros(len(self._rules(X.iloc[:0])) + 1)
        prev = 0.0
        for k in range(len(rates)):  # an unseen count keeps the rate below it
            prev = rates[k] = float(y[fired == k].mean()) if (fired == k).any() else prev
        self.rates_ = np.maximum.accumulate(rates)
        return self

    def _fired(self, X: pd.DataFrame) -> np.ndarray:
        rules = self._rules(X)
        return np.sum(rules, axis=0).astype(int) if rules else np.zeros(len(X), dtype=int)

    def _rules(self, X: pd.DataFrame) -> list[np.ndarray]:
        rules = [X[c].to_numpy(float) > lim for c, lim in self.limits_.items()]
        if "amount_vs_usual" in X:
            rules.append(np.nan_to_num(X["amount_vs_usual"].to_numpy(float)) > 5)
        if "tx_1h" in X:
            rules.append(X["tx_1h"].to_numpy(float) >= 3)
        if "small_amount_burst" in X:
            rules.append(X["small_amount_burst"].to_numpy(float) >= 2)
        return rules

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.clip(self.rates_[self._fired(X)], 1e-4, 1 - 1e-4)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    categorical = list(cfg["features"]["categorical"])

    def candidates(view: str, cols: list[str]) -> list[Candidate]:
        cat = [c for c in categorical if c in cols]
        num = [c for c in cols if c not in cat]
        return [
            Candidate("logistic", lambda: linear_pipeline(
                "binary", num, cat, alpha=float(t["linear_alpha"]), max_iter=2000, seed=seed),
                {"model": "logistic"}),
            Candidate("lgbm", lambda: lgbm_pipeline("binary", cat, params=dict(t["lgbm"]),
                                                    seed=seed),
                      {"model": "lgbm", "scale_pos_weight": t["lgbm"]["scale_pos_weight"]}),
        ]

    return [Task("fraud", "binary", "label", t["selection_metric"]["fraud"], candidates,
                 RulesBaseline)]


def recall_at_alert_rate(y, score, rate: float) -> float:
    """The share of fraud among the top `rate` of transactions by score."""
    y = np.asarray(y)
    k = max(int(round(rate * len(y))), 1)
    top = np.argsort(-np.asarray(score), kind="stable")[:k]
    return float(y[top].sum() / max(y.sum(), 1))


def precision_at_recall(y, score, recall: float) -> float:
    """The best precision at which at least `recall` of the fraud is caught."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y)
    if y.sum() == 0:
        return float("nan")
    p, r, _ = precision_recall_curve(y, score)
    ok = r >= recall
    return float(p[ok].max()) if ok.any() else 0.0


def policy_row_costs(y, score, rows: pd.DataFrame, cfg: Mapping) -> np.ndarray:
    """What each transaction costs (dollars) when the SMS loop takes the action that is cheapest
    in expectation with the score read as P(fraud) (`policy.bayes_actions`: no threshold, so
    nothing is tuned on the rows scored), the labels saying which were fraud: the money of a
    model (or of the rules) that evaluate can weigh against the baseline's."""
    from cases.errors import CasebookError
    from cases.fraud.policy import Costs, action_costs, bayes_actions

    if "amount" not in rows:
        raise CasebookError("fraud policy cost: the scored rows have no 'amount' column (the "
                            "tx view must keep it)")
    if "reply_p" in rows:
        reply = rows["reply_p"].to_numpy(float)
    else:  # rows without the reply rates (the CV folds, a real file): the configured mean
        a, b = (float(v) for v in cfg["data"]["world"]["reply_beta"])
        reply = np.full(len(rows), a / (a + b))
    c = Costs.from_cfg(cfg["analysis"]["costs"], str(cfg["analysis"]["no_reply"]))
    amount = rows["amount"].to_numpy(float)
    act = bayes_actions(np.asarray(score, dtype=float), amount, reply, c)
    return action_costs(np.asarray(y), amount, reply, c)[np.arange(len(act)), act]


def rare_event_metrics(y, score, rows, cfg) -> dict:
    m = cfg["metrics"]
    return {"recall_at_alert_rate": recall_at_alert_rate(y, score, float(m["alert_rate"])),
            "precision_at_recall": precision_at_recall(y, score, float(m["target_recall"])),
            "policy_cost_per_1k": 1000 * float(np.mean(policy_row_costs(y, score, rows, cfg)))}


def rare_event_statistics(y, score, rows, cfg) -> dict:
    """The bootstrap twins of `rare_event_metrics`."""
    from cases.lifecycle.bootstrap import PrecisionAtRecall, TopShare, mean_of

    m = cfg["metrics"]
    return {"recall_at_alert_rate": TopShare(y, score, float(m["alert_rate"])),
            "precision_at_recall": PrecisionAtRecall(y, score, float(m["target_recall"])),
            "policy_cost_per_1k": mean_of(1000 * policy_row_costs(y, score, rows, cfg))}
