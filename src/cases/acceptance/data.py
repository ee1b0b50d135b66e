"""The ride-offer world. No public dataset of driver decisions exists, so the data is simulated
from a decision rule that is known (conf/case/acceptance.yaml, data.world): distance to pickup,
trip distance and fare, surge, hour, hours online, destination desirability, rider rating, two
non-linear terms and a latent per-driver taste. The truth is what makes the case teachable."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Dataset

LINEAR = ("pickup_km", "trip_km", "fare", "surge", "hours_online", "dest_desirability",
          "rider_rating")


def true_logit(frame: pd.DataFrame, w: Mapping, driver_effect: np.ndarray | None = None):
    z = np.full(len(frame), float(w["intercept"]))
    for name, c in w["coef"].items():
        x = frame[name].to_numpy(dtype=float)
        if name == "rider_rating":
            x = x - float(w["rider_rating_center"])
        z += float(c) * x
    nl = w.get("nonlinear", {})
    z += float(nl.get("pickup_over_4km_sq", 0)) * np.maximum(frame["pickup_km"] - 4, 0) ** 2
    night = (frame["hour"] < 5).to_numpy()
    z += float(nl.get("night_x_trip_km", 0)) * night * frame["trip_km"].to_numpy()
    if driver_effect is not None:
        z += driver_effect
    return z


def simulate(w: Mapping) -> pd.DataFrame:
    rng = np.random.default_rng(int(w["seed"]))
    n, nd = int(w["offers"]), int(w["drivers"])
    effect = rng.normal(0, float(w["driver_effect_sd"]), nd)
    driver = rng.integers(0, nd, n)
    t = np.sort(rng.uniform(0, int(w["days"]) * 24, n))  # hours since the start
    hour = (t % 24).astype(int)
    rush = np.isin(hour, [7, 8, 9, 17, 18, 19])
    trip = np.clip(rng.lognormal(np.log(6), 0.6, n), 0.5, 80)
    surge = np.where(rng.uniform(size=n) < np.where(rush, 0.45, 0.15),
                     np.round(rng.uniform(1.2, 2.5, n), 1), 1.0)
    frame = pd.DataFrame({
        "driver_id": driver, "time_h": np.round(t, 3), "day": (t // 24).astype(int), "hour": hour,
        "pickup_km": np.round(np.clip(rng.gamma(2.0, 1.2, n), 0.1, 20), 2),
        "trip_km": np.round(trip, 2),
        "fare": np.round((2.5 + 1.3 * trip) * surge + rng.normal(0, 1.0, n), 2).clip(3),
        "surge": surge,
        "hours_online": np.round(rng.uniform(0, 12, n), 2),
        "dest_desirability": np.round(rng.beta(2, 2, n), 3),
        "rider_rating": np.round(np.clip(rng.normal(4.75, 0.18, n), 3.5, 5.0), 2),
    })
    p = 1 / (1 + np.exp(-true_logit(frame, w, effect[driver])))
    frame["true_p"] = p
    frame["accepted"] = (rng.uniform(size=n) < p).astype(int)
    frame["driver_effect"] = effect[driver]
    # the driver's acceptance rate over the previous `history` offers: known when the offer is
    # made (shifted, so the current decision never feeds its own feature)
    frame["recent_acceptance_rate"] = (
        frame.groupby("driver_id")["accepted"]
        .transform(lambda s: s.shift(1).rolling(int(w["history"]), min_periods=3).mean()))
    return frame


def load(data: Mapping, raw_dir: Path) -> Dataset:
    if data.get("source") != "simulator":
        raise CasebookError(f"case.data.source={data.get('source')!r}; expected 'simulator' (no "
                            f"public dataset of driver decisions exists)")
    return Dataset(tables={"offers": simulate(data["world"])}, source="simulator",
                   description="simulated ride offers and driver decisions (no public data "
                               "exists; the decision rule is known)")
