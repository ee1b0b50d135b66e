"""The SMS loop as a policy: by score, approve (below t1), text the customer (t1 to t2) or block
(t2 and above). The expected cost of each action per transaction, the search for the two
thresholds that minimise the total, and the replies a text brings back.

Costs (conf/case/fraud.yaml, analysis.costs), in dollars:
- approve: a fraud's amount times `fraud_share_lost`; a good transaction costs nothing;
- text: `sms`; a good customer is bothered (`friction`) and, if they do not reply, the stated
  `no_reply` rule applies (block: `block_good`; approve: nothing); a fraud is stopped when the
  customer replies (they deny it) and, without a reply, blocked or lost by the same rule;
- block: a good customer costs `block_good`; a fraud is stopped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class Costs:
    sms: float
    friction: float
    block_good: float
    fraud_share_lost: float
    no_reply: str = "block"

    @classmethod
    def from_cfg(cls, c: Mapping, no_reply: str) -> Costs:
        if no_reply not in ("block", "approve"):
            from cases.errors import CasebookError

            raise CasebookError(f"case.analysis.no_reply={no_reply!r}; expected 'block' or "
                                f"'approve'")
        return cls(float(c["sms"]), float(c["friction"]), float(c["block_good"]),
                   float(c["fraud_share_lost"]), no_reply)


def action_costs(is_fraud, amount, reply_p, c: Costs) -> np.ndarray:
    """Expected cost of (approve, text, block) for every transaction: shape (n, 3)."""
    fraud = np.asarray(is_fraud).astype(bool)
    loss = c.fraud_share_lost * np.asarray(amount, dtype=float)
    silent = 1 - np.asarray(reply_p, dtype=float)
    approve = np.where(fraud, loss, 0.0)
    if c.no_reply == "block":
        text = c.sms + np.where(fraud, 0.0, c.friction + silent * c.block_good)
    else:
        text = c.sms + np.where(fraud, silent * loss, c.friction)
    block = np.where(fraud, 0.0, c.block_good)
    return np.column_stack([approve, text, block])


def expected_action_costs(p, amount, reply_p, c: Costs) -> np.ndarray:
    """Expected cost of (approve, text, block) for every transaction when it is fraud with
    probability `p`: shape (n, 3)."""
    p = np.asarray(p, dtype=float)[:, None]
    n = len(p)
    return (p * action_costs(np.ones(n), amount, reply_p, c)
            + (1 - p) * action_costs(np.zeros(n), amount, reply_p, c))


def bayes_actions(p, amount, reply_p, c: Costs) -> np.ndarray:
    """The cost-optimal action of every transaction for a policy that knows its P(fraud) `p`:
    the lowest expected cost (a tie goes to the milder action). With the true probability this
    is the best any policy can do (the Bayes floor of the money)."""
    return np.argmin(expected_action_costs(p, amount, reply_p, c), axis=1)


def actions(score, t1: float, t2: float) -> np.ndarray:
    """0 approve, 1 text, 2 block."""
    score = np.asarray(score, dtype=float)
    return np.where(score >= t2, 2, np.where(score >= t1, 1, 0))


def policy_cost(score, costs: np.ndarray, t1: float, t2: float) -> float:
    a = actions(score, t1, t2)
    return float(costs[np.arange(len(a)), a].sum())


def candidate_thresholds(score, grid: int) -> np.ndarray:
    """Every distinct score when there are at most `grid` of them (an exact search); otherwise
    scores at quantiles concentrated in the top (fraud is rare). Plus 'never' (inf)."""
    score = np.asarray(score, dtype=float)
    distinct = np.unique(score)
    if len(distinct) <= grid:
        return np.r_[distinct, np.inf]
    q = 1 - np.logspace(-5, np.log10(0.5), grid)
    return np.unique(np.r_[np.quantile(score, q, method="higher"), np.inf])


def search_thresholds(score, costs: np.ndarray, grid: int = 60) -> dict:
    """The (t1 <= t2) pair with the lowest total expected cost, by prefix sums over the rows in
    score order; and the cost curve (the best total for each t1)."""
    score = np.asarray(score, dtype=float)
    order = np.argsort(score, kind="stable")
    s = score[order]
    cum = np.vstack([np.zeros((1, 3)), np.cumsum(costs[order], axis=0)])
    th = candidate_thresholds(score, grid)
    pos = np.searchsorted(s, th, side="left")  # rows below each threshold
    n = len(s)
    best = (np.inf, None, None)
    curve = []
    for i, t1 in enumerate(th):
        p1 = pos[i]
        p2 = pos[i:]
        total = cum[p1, 0] + (cum[p2, 1] - cum[p1, 1]) + (cum[n, 2] - cum[p2, 2])
        j = int(np.argmin(total))
        curve.append((float(t1), float(th[i + j]), float(total[j])))
        if total[j] < best[0]:
            best = (float(total[j]), float(t1), float(th[i + j]))
    return {"cost": best[0], "t1": best[1], "t2": best[2],
            "curve": [{"t1": a, "best_t2": b, "cost": c} for a, b, c in curve]}


def replies(is_fraud, reply_p, texted, rng) -> tuple[np.ndarray, np.ndarray]:
    """(replied, label): a texted customer replies with their probability; a good customer
    approves (0), a fraud victim denies (1), whether or not they would ever have noticed."""
    replied = np.asarray(texted, dtype=bool) & (rng.uniform(size=len(texted))
                                                 < np.asarray(reply_p, dtype=float))
    return replied, np.asarray(is_fraud).astype(int)


def signed_usd(x: float) -> str:
    """"+$1,234" / "-$87": the sign before the dollar mark, so a report's figure reads (and
    the claims check parses) as one signed amount."""
    return f"{'-' if x < 0 else '+'}${abs(x):,.0f}"


def top_band_reading(top: Mapping) -> str:
    """How the top score band's mean score reads against its observed fraud rates: 'truth' when
    it is nearer the true rate than the reported one (the gap is unreported fraud), else 'over'
    or 'under' as it sits above or below the true rate."""
    raw = top["mean_raw"]
    if abs(raw - top["observed_true"]) < abs(raw - top["observed_reported"]):
        return "truth"
    return "over" if raw > top["observed_true"] else "under"


UNREPORTED_SCOPE = (
    "Both intervals resample the test days for these two fitted models; they do not cover "
    "the draw of which training frauds went unreported, so a difference outside the noise "
    "belongs to this pair of fits, not to clean labels in general.")
