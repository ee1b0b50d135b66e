"""The transactions before any model: how rare fraud is, its kinds, amounts and hours against
good transactions, how much of it the bank ever hears about, and duplicates in a real file."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    tx = tables["transactions"]
    fraud = tx["is_fraud"] == 1
    days = (tx["time_s"].max() - tx["time_s"].min()) / 86400
    facts: dict = {"transactions": int(len(tx)), "fraud": int(fraud.sum()),
                   "fraud_rate": float(fraud.mean()), "days": float(days),
                   "median_amount_fraud": float(tx.loc[fraud, "amount"].median()),
                   "median_amount_good": float(tx.loc[~fraud, "amount"].median())}
    sections = []
    if "duplicates" in tables:
        d = tables["duplicates"].iloc[0]
        facts["duplicates_removed"] = int(d["removed"])
        sections.append(("Duplicates", f"{int(d['removed']):,} duplicated rows of "
                                       f"{int(d['rows_in']):,} were counted and removed."))
    lines = [f"{len(tx):,} transactions over {days:.1f} days; {int(fraud.sum()):,} fraud "
             f"({100 * fraud.mean():.3f}%): accuracy is useless here (approving everything "
             f"scores {100 * (1 - fraud.mean()):.2f}%)."]
    if "fraud_kind" in tx:
        kinds = tx[fraud].groupby("fraud_kind").agg(transactions=("amount", "size"),
                                                    median_amount=("amount", "median"))
        lines += ["", markdown_table(kinds.reset_index().round(2))]
        facts["kinds"] = {k: int(v) for k, v in kinds["transactions"].items()}
    if "reported" in tx:
        facts["reported"] = int(tx["reported"].sum())
        facts["unreported_share"] = 1 - facts["reported"] / max(facts["fraud"], 1)
        lines += ["", f"The bank hears about {facts['reported']:,} of them "
                      f"({100 * (1 - facts['unreported_share']):.0f}%): the rest are victims who "
                      f"never notice, and stay labelled good."]
    sections.insert(0, ("How rare, and what kinds", "\n".join(lines)))
    fig, ax = figure("Amount: fraud against good transactions", "amount ($, log scale)",
                     "share of transactions")
    bins = np.logspace(np.log10(max(tx["amount"].min(), 0.1)), np.log10(tx["amount"].max() + 1),
                       50)
    ax.hist(tx.loc[~fraud, "amount"].clip(lower=0.1), bins=bins, density=True, alpha=0.5,
            label="good")
    ax.hist(tx.loc[fraud, "amount"].clip(lower=0.1), bins=bins, density=True, alpha=0.5,
            label="fraud")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    hour = ((tx["time_s"] % 86400) // 3600).astype(int)
    by_hour = tx.groupby(hour)["is_fraud"].mean() * 100
    fig2, ax2 = figure("Fraud rate by hour", "hour", "% fraud")
    ax2.bar(by_hour.index, by_hour.to_numpy())
    sections.append(("Amounts and hours", "![amounts](eda/amounts.png)\n\n"
                                          "![by hour](eda/fraud_by_hour.png)"))
    return EdaResult(sections=sections, figures={"amounts": fig, "fraud_by_hour": fig2},
                     facts=facts)
