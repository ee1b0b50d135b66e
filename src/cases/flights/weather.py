"""Weather at the origin airport as of a moment before departure: shared by the EDA (weather at
departure) and the features (weather two hours out)."""

from __future__ import annotations

import numpy as np
import pandas as pd

WEATHER_COLS = ["temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def origin_weather(flights: pd.DataFrame, weather: pd.DataFrame, lag_hours: float) -> pd.DataFrame:
    """Weather at the origin `lag_hours` before the scheduled departure hour, and the rain of the
    six hours up to then: what an operations desk would know at that moment."""
    cols = {c: f"wx_{c}" for c in WEATHER_COLS}
    if weather.empty:
        out = pd.DataFrame(np.nan, index=flights.index, columns=[*cols.values(), "wx_precip_6h"])
        return out
    w = weather.drop_duplicates(["origin", "time_hour"]).sort_values(["origin", "time_hour"])
    w = w.set_index("time_hour")
    roll = (w.groupby("origin")["precip"].rolling("6h").sum().rename("wx_precip_6h")
            .reset_index())
    w = w.reset_index().merge(roll, on=["origin", "time_hour"], how="left")
    w = w.rename(columns=cols)[["origin", "time_hour", *cols.values(), "wx_precip_6h"]]
    key = pd.DataFrame({"origin": flights["origin"].to_numpy(),
                        "time_hour": (flights["time_hour"] - pd.Timedelta(hours=lag_hours))
                        .dt.floor("h").to_numpy()})
    merged = key.merge(w, on=["origin", "time_hour"], how="left")
    merged.index = flights.index
    return merged.drop(columns=["origin", "time_hour"])
