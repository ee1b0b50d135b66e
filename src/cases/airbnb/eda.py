"""The listings before any model: every cleaning rule counted, what the parser did with the
formats (prices, rates, amenities, dates), price by room type and neighbourhood, and price
against capacity per room type (the interaction a linear model misses)."""

from __future__ import annotations

import json
from typing import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    t, rules, schema = tables["listings"], tables["cleaning"], tables["schema"].iloc[0]
    lp = np.log(t["price"])
    raw_rows = int(schema["raw_rows"])
    facts: dict = {
        "schema": str(schema["schema"]), "raw_listings": raw_rows, "listings": int(len(t)),
        "unusable": [c for c in str(schema["unusable"]).split("; ") if c],
        "from_name": [c for c in str(schema.get("from_name", "")).split(", ") if c],
        "currency": str(schema.get("currency", "")),
        "removed": {r["rule"]: int(r["removed"]) for r in rules.to_dict("records")
                    if r["rule"] != "kept"},
        "median_price": float(t["price"].median()), "sd_log_price": float(lp.std()),
        "neighbourhoods": int(t["neighbourhood"].nunique()),
        "hosts": int(t["host_id"].nunique()) if "host_id" in t else None,
    }
    by_room = t.groupby("room_type")["price"].agg(["size", "median"]).reset_index()
    by_room.columns = ["room type", "listings", "median price"]
    rare = int(cfg["eda"]["rare_level_listings"])
    hood = t.groupby("neighbourhood")["price"].agg(["size", "median"])
    facts["neighbourhood_listings"] = {"min": int(hood["size"].min()),
                                       "median": float(hood["size"].median()),
                                       "max": int(hood["size"].max()),
                                       "rare": int((hood["size"] < rare).sum())}
    parsed = [f"price parsed from text for {len(t):,} listings"
              + (f" (currency marks in the file: {facts['currency']}; prices stay in the "
                 f"file's currency)" if facts["currency"] else "")]
    if facts["from_name"]:
        parsed.append(f"{', '.join(facts['from_name'])} read from the listing names where "
                      f"their own column was blank")
    if "amenities" in t:
        n_am = t["amenities"].map(lambda v: len(json.loads(v)))
        facts["amenities_mean"] = float(n_am.mean())
        parsed.append(f"amenities parsed into lists ({n_am.mean():.1f} per listing, "
                      f"{int((n_am == 0).sum()):,} with none)")
    for col, what in (("host_response_rate", "response rates from '96%'"),
                      ("host_years", "host_since into years as a host"),
                      ("days_since_last_review", "last_review into days before the scrape"),
                      ("review_score", "review scores on a 0-100 scale")):
        if col in t:
            parsed.append(f"{what} ({int(t[col].notna().sum()):,} known)")
    figures: dict = {"cleaning": rules}
    fig, ax = figure("Nightly price by room type", "price ($, log scale)", "listings")
    bins = np.logspace(np.log10(max(t["price"].min(), 1)), np.log10(t["price"].max()), 50)
    for room, part in t.groupby("room_type"):
        ax.hist(part["price"], bins=bins, alpha=0.5, label=room)
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    figures["price_by_room"] = fig
    sections = [
        ("Schema and cleaning", (
            f"Schema: **{facts['schema']}**. Columns this file cannot supply (left out of the "
            f"features, with the reason): {', '.join(facts['unusable']) or 'none'}.\n\n"
            f"{raw_rows:,} listings in, {len(t):,} kept; each listing counts under the first "
            f"rule it breaks (conf/case/airbnb.yaml, data.clean):\n\n" + markdown_table(rules)
            + "\n\nParsing: " + "; ".join(parsed) + ".")),
        ("Price by room type and neighbourhood", (
            markdown_table(by_room.round(1))
            + f"\n\n{facts['neighbourhoods']} neighbourhoods, from {facts['neighbourhood_listings']['min']} "
              f"to {facts['neighbourhood_listings']['max']} listings each (median "
              f"{facts['neighbourhood_listings']['median']:.0f}; "
              f"{facts['neighbourhood_listings']['rare']} with fewer than {rare}): the many-level "
              f"categorical the encodings are compared on.\n\n![by room](eda/price_by_room.png)")),
    ]
    if "accommodates" in t:
        fig, ax = figure("Median price by guests, per room type", "guests", "median price ($)")
        for room, part in t.groupby("room_type"):
            s = part.groupby("accommodates")["price"].median()
            s = s[part.groupby("accommodates").size() >= 10]
            ax.plot(s.index, s.to_numpy(), marker="o", label=room)
        ax.legend(fontsize=8)
        figures["price_by_guests"] = fig
        sections.append(("Capacity depends on the room type", (
            "An entire home's price climbs with the number of guests; a private room's barely "
            "moves. One slope for all (a linear model without the interaction) is wrong for "
            "both.\n\n![by guests](eda/price_by_guests.png)")))
    return EdaResult(sections=sections, figures=figures, facts=facts)
