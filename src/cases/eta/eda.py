"""The trips before any model: what each cleaning rule removed, how long trips take, and how
speed moves with the hour (the congestion a model must learn)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cases.eta.data import KM_PER_MILE, haversine_km
from cases.lifecycle.contract import EdaResult
from cases.lifecycle.eda import figure, markdown_table


def distance_km(t: pd.DataFrame) -> np.ndarray | None:
    if "pickup_latitude" in t:
        return haversine_km(t["pickup_latitude"], t["pickup_longitude"], t["dropoff_latitude"],
                            t["dropoff_longitude"])
    if "trip_distance" in t:
        return t["trip_distance"].to_numpy(float) * KM_PER_MILE
    return None


def profile(tables: dict[str, pd.DataFrame], cfg: Mapping) -> EdaResult:
    t, rules = tables["trips"], tables["cleaning"]
    dur = t["trip_duration"].to_numpy(float)
    when = pd.to_datetime(t["pickup_datetime"])
    raw_total = int(rules["removed"].sum())
    figures: dict = {"cleaning": rules}
    fig, ax = figure("Trip duration (clean trips)", "minutes (log scale)", "trips")
    ax.hist(dur / 60, bins=np.logspace(0, np.log10(max(dur.max() / 60, 2)), 60))
    ax.set_xscale("log")
    figures["duration_hist"] = fig
    km = distance_km(t)
    facts: dict = {"raw_trips": raw_total, "clean_trips": int(len(t)),
                   "removed_trips": raw_total - int(len(t)),
                   "removed": {r["rule"]: int(r["removed"]) for r in rules.to_dict("records")
                               if r["rule"] != "kept"},
                   "median_duration_s": float(np.median(dur)),
                   "p90_duration_s": float(np.percentile(dur, 90)),
                   "weeks": int((when.max() - when.min()).days // 7 + 1),
                   "schema": str(t["schema"].iloc[0])}
    sections = [
        ("Cleaning rules (conf/case/eta.yaml: data.clean)", (
            f"{raw_total:,} trips in, {len(t):,} kept. Each trip counts under the first rule it "
            f"breaks; `broken_in_total` counts every trip breaking the rule.\n\n"
            + markdown_table(rules.round(3)))),
    ]
    if km is not None:
        speed = km / (dur / 3600)
        by_hour = pd.Series(speed).groupby(when.dt.hour.to_numpy()).median()
        fig, ax = figure("Median speed by hour of pickup", "hour", "km/h (straight line)")
        for wd, label in ((when.dt.dayofweek < 5, "weekday"), (when.dt.dayofweek >= 5, "weekend")):
            s = pd.Series(speed[wd.to_numpy()]).groupby(when.dt.hour[wd].to_numpy()).median()
            ax.plot(s.index, s.to_numpy(), marker="o", label=label)
        ax.legend(fontsize=8)
        figures["speed_by_hour"] = fig
        sample = np.random.default_rng(0).choice(len(t), min(5000, len(t)), replace=False)
        fig, ax = figure("Duration against distance", "km (log)", "seconds (log)")
        ax.scatter(km[sample], dur[sample], s=2, alpha=0.3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        figures["duration_by_distance"] = fig
        ok = km > 0.2
        slope, intercept = np.polyfit(np.log(km[ok]), np.log(dur[ok]), 1)
        facts.update(median_km=float(np.median(km)), rush_speed_kmh=float(by_hour.min()),
                     night_speed_kmh=float(by_hour.max()), log_duration_slope=float(slope),
                     log_duration_intercept=float(intercept),
                     log_duration_resid_sd=float(np.std(np.log(dur[ok]) - intercept
                                                        - slope * np.log(km[ok]))))
        sections.append(("Speed, distance and the hour", (
            f"Median distance {facts['median_km']:.2f} km, median duration "
            f"{facts['median_duration_s']:.0f} s (p90 {facts['p90_duration_s']:.0f} s). Median "
            f"straight-line speed runs from {facts['rush_speed_kmh']:.1f} km/h in the slowest "
            f"hour to {facts['night_speed_kmh']:.1f} km/h in the fastest. log(duration) = "
            f"{intercept:.2f} + {slope:.2f} log(km), residual sd {facts['log_duration_resid_sd']:.2f}: "
            f"distance explains much, the hour and the route the rest.\n\n"
            f"![speed by hour](eda/speed_by_hour.png)\n\n"
            f"![duration by distance](eda/duration_by_distance.png)")))
    sections.append(("Durations", f"{facts['weeks']} weeks of trips.\n\n"
                                  f"![durations](eda/duration_hist.png)"))
    return EdaResult(sections=sections, figures=figures, facts=facts)
