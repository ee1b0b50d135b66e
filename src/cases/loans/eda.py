"""Who gets approved, before any model: the real HMDA applications and the scenario world."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    h, s = tables["hmda"], tables["scenario"]
    views = cfg["features"]["views"]
    facts = {"hmda_rows": int(len(h)), "hmda_approval_rate": float(h["approve"].mean()),
             "scenario_rows": int(len(s)), "scenario_approval_rate": float(s["approve"].mean()),
             "gdlin_missing": int((h["gdlin"] == 666).sum())}
    by_outcome = h.groupby("approve")[list(views["hmda"])].mean().T.round(3)
    by_outcome.columns = ["denied (mean)", "approved (mean)"]
    race = np.select([h["black"] == 1, h["hispan"] == 1, h["white"] == 1],
                     ["black", "hispanic", "white"], "other")
    raw = pd.DataFrame({"race": race, "approve": h["approve"]}).groupby("race")["approve"].agg(
        ["size", "mean"]).reset_index().rename(columns={"size": "applications",
                                                         "mean": "approval rate"})
    sections = [
        ("The real applications (Boston HMDA)", (
            f"{len(h):,} mortgage applications, {100 * facts['hmda_approval_rate']:.1f}% approved "
            f"({int((h['approve'] == 0).sum()):,} denied). `gdlin` carries the code 666 for 'not "
            f"recorded' in {facts['gdlin_missing']} rows: read as missing. Model inputs, by "
            f"outcome:\n\n" + markdown_table(by_outcome.reset_index().rename(
                columns={"index": "input"})))),
        ("Raw approval rates by race (audit only, never a model input)", markdown_table(raw)),
        ("The scenario world", (
            f"{len(s):,} simulated credit-card applicants, {100 * facts['scenario_approval_rate']:.1f}% "
            f"approved by the true policy in conf/case/loans.yaml (a logistic rule in debt, "
            f"income, credit age, cards, utilization, delinquencies and inquiries; decisions drawn "
            f"from it). Its truth is what the reasons are checked against.\n\n"
            "![approval by debt](eda/scenario_approval_by_debt.png)")),
    ]
    bins = pd.cut(s["debt_k"], bins=np.arange(0, 42, 2))
    rate = s.groupby(bins, observed=True)["approve"].mean()
    fig, ax = figure("Scenario: approval rate by current debt", "debt ($K)", "approval rate")
    ax.plot([b.mid for b in rate.index], rate.to_numpy(), marker="o")
    return EdaResult(sections=sections, figures={"scenario_approval_by_debt": fig}, facts=facts)
