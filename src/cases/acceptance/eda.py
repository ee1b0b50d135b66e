"""The offers before any model: acceptance by pickup distance, hour and surge."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    o = tables["offers"]
    rate = float(o["accepted"].mean())
    by_pickup = o.groupby(pd.cut(o["pickup_km"], [0, 1, 2, 3, 4, 6, 8, 20]), observed=True)[
        "accepted"].agg(["size", "mean"]).reset_index()
    by_pickup.columns = ["pickup km", "offers", "acceptance"]
    by_pickup["pickup km"] = by_pickup["pickup km"].astype(str)
    by_hour = o.groupby("hour")["accepted"].mean()
    fig, ax = figure("Acceptance by hour of the offer", "hour", "acceptance rate")
    ax.plot(by_hour.index, by_hour.to_numpy(), marker="o")
    facts = {"offers": int(len(o)), "drivers": int(o["driver_id"].nunique()),
             "acceptance_rate": rate,
             "recent_rate_missing": int(o["recent_acceptance_rate"].isna().sum()),
             "surge_share": float((o["surge"] > 1).mean())}
    sections = [
        ("Where the data comes from", (
            "No public dataset of driver accept/decline decisions exists; this case runs on a "
            "simulator whose decision rule is in conf/case/acceptance.yaml (data.world). "
            f"{len(o):,} offers to {facts['drivers']:,} drivers over "
            f"{int(o['day'].max()) + 1} days; {100 * rate:.1f}% accepted; "
            f"{100 * facts['surge_share']:.1f}% under surge. The driver's recent acceptance rate "
            f"is missing for {facts['recent_rate_missing']:,} offers (fewer than 3 earlier "
            f"offers).")),
        ("Acceptance by distance to pickup", markdown_table(by_pickup.round(3))
         + "\n\n![by hour](eda/acceptance_by_hour.png)"),
    ]
    return EdaResult(sections=sections, figures={"acceptance_by_hour": fig}, facts=facts)
