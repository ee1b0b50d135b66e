"""What the delays look like before any model: the long tail, who and when, the weather, and
what is missing."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cases.flights.weather import origin_weather
from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    f = tables["flights"]
    ecfg = cfg["eda"]
    d = f["arr_delay"]
    arrived = d.notna()
    cancelled = int(f["dep_time"].isna().sum())
    diverted = int((f["dep_time"].notna() & d.isna()).sum())
    y = d[arrived]
    shares = {f"over_{t}_min": float((y > t).mean()) for t in ecfg["thresholds_min"]}
    tail = int(cfg["metrics"]["tail_min"])
    # `~` before the sum, not after it (`~n` of a count is -n-1)
    no_plane = int((~f["tailnum"].isin(tables["planes"]["tailnum"])).sum())
    facts = {
        "flights": len(f), "arrived": int(arrived.sum()), "cancelled": cancelled,
        "diverted": diverted, "mean_delay": float(y.mean()), "median_delay": float(y.median()),
        "p99_delay": float(y.quantile(0.99)), "max_delay": float(y.max()),
        "shares": shares,
        "tail_min": tail, "tail_share": float((y >= tail).mean()),
        "tail_share_of_squared_error": _tail_share(y, tail), "plane_missing": no_plane,
    }
    sections = []
    sections.append(("What is missing", (
        f"{len(f):,} scheduled flights. {cancelled:,} ({100 * cancelled / len(f):.2f}%) were "
        f"cancelled (no departure time) and {diverted:,} ({100 * diverted / len(f):.2f}%) "
        f"departed but have no arrival delay (diverted or unrecorded). Neither has an arrival "
        f"delay, so both are **excluded from every target** (regression, delayed, buckets): the "
        f"models answer *how late will it arrive, given that it arrives*. Cancellation is a "
        f"separate question (a classifier of its own) and is not hidden inside the delay. "
        f"Plane details are missing for {no_plane:,} flights"
        f" and weather for the hours the stations did not report; the tree models take "
        f"them as missing, the linear models impute the training median.")))
    share_rows = pd.DataFrame({
        "arrival delay": [f"over {t} min" for t in ecfg["thresholds_min"]],
        "flights": [int((y > t).sum()) for t in ecfg["thresholds_min"]],
        "share": [f"{100 * shares[f'over_{t}_min']:.2f}%" for t in ecfg["thresholds_min"]],
    })
    sections.append(("The delay distribution", (
        f"Of {len(y):,} arrived flights, the mean arrival delay is {facts['mean_delay']:.1f} min "
        f"and the median {facts['median_delay']:.0f} min (most flights arrive early); the 99th "
        f"percentile is {facts['p99_delay']:.0f} min and the longest {facts['max_delay']:.0f} min "
        f"({facts['max_delay'] / 60:.1f} h). Flights {tail} min or more late are "
        f"{100 * facts['tail_share']:.2f}% of flights but carry "
        f"{100 * facts['tail_share_of_squared_error']:.0f}% of the squared error of predicting the "
        f"mean for everyone: squared loss spends its effort on them.\n\n"
        + markdown_table(share_rows) + "\n\n![delay distribution](eda/delay_distribution.png)")))
    longest = f[arrived].nlargest(int(ecfg["longest"]), "arr_delay")[
        ["year", "month", "day", "carrier", "flight", "origin", "dest", "dep_delay", "arr_delay"]]
    longest = longest.assign(**{c: longest[c].astype(int) for c in
                                ["year", "month", "day", "flight", "dep_delay", "arr_delay"]})
    sections.append(("The longest delays", markdown_table(longest.reset_index(drop=True))))
    by_carrier = _by(f[arrived], "carrier").sort_values("mean", ascending=False)
    sections.append(("Delay by carrier", markdown_table(by_carrier)
                     + "\n\n![by carrier](eda/delay_by_carrier.png)"))
    hours = f[arrived].assign(sched_hour=(f["sched_dep_time"] // 100).astype(int))
    by_hour = _by(hours, "sched_hour")
    by_month = _by(f[arrived].assign(month=f["month"].astype(int)), "month")
    sections.append(("Delay by hour and month",
                     "Delays build up through the day (late departures inherit the day's "
                     "disruptions) and peak in summer and December.\n\n"
                     + markdown_table(by_month)
                     + "\n\n![by hour](eda/delay_by_hour.png)\n\n![by month](eda/delay_by_month.png)"))
    wx = origin_weather(f, tables["weather"], 0)
    wtab = pd.DataFrame({"arr_delay": d, "visib": wx["wx_visib"], "precip": wx["wx_precip"]})[
        arrived]
    wtab["conditions"] = np.select(
        [wtab["visib"] < 2, wtab["precip"] > 0, wtab["visib"].isna()],
        ["visibility < 2 mi", "precipitation", "no report"], "clear")
    by_wx = _by(wtab, "conditions")
    sections.append(("Delay by weather at the origin (scheduled hour)", markdown_table(by_wx)))
    figures = {"delay_distribution": _hist(y), "delay_by_carrier": _bar(by_carrier, "carrier"),
               "delay_by_hour": _line(by_hour, "sched_hour", "scheduled departure hour"),
               "delay_by_month": _line(by_month, "month", "month")}
    facts["by_weather"] = by_wx.set_index("conditions")["mean"].to_dict()
    return EdaResult(sections=sections, figures=figures, facts=facts)


def _tail_share(y: pd.Series, tail: float) -> float:
    sq = (y - y.mean()) ** 2
    return float(sq[y >= tail].sum() / sq.sum())


def _by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    g = frame.groupby(key)["arr_delay"]
    return pd.DataFrame({
        "flights": g.size(), "mean": g.mean().round(1), "median": g.median(),
        "share_15min": (g.apply(lambda s: (s >= 15).mean()) * 100).round(1),
        "p99": g.quantile(0.99).round(0),
    }).reset_index()


def _hist(y: pd.Series):
    fig, ax = figure("Arrival delay (log-scale counts)", "arrival delay (min)", "flights")
    ax.hist(y, bins=np.arange(-90, y.max() + 15, 15), color="#4477aa")
    ax.set_yscale("log")
    for t, label in ((60, "1 h"), (120, "2 h"), (600, "10 h")):
        ax.axvline(t, color="grey", ls="--", lw=0.8)
        ax.text(t, ax.get_ylim()[1] * 0.5, label, fontsize=8)
    return fig


def _bar(table: pd.DataFrame, key: str):
    fig, ax = figure("Mean arrival delay by carrier", key, "mean delay (min)")
    ax.bar(table[key].astype(str), table["mean"], color="#4477aa")
    return fig


def _line(table: pd.DataFrame, key: str, xlabel: str):
    fig, ax = figure(f"Arrival delay by {xlabel}", xlabel, "minutes / percent")
    ax.plot(table[key], table["mean"], marker="o", label="mean delay (min)")
    ax.plot(table[key], table["share_15min"], marker="s", label="% delayed 15+ min")
    ax.legend(fontsize=8)
    return fig
