"""Flight features at two moments of prediction. At booking: the schedule, carrier, route, plane
and how busy the origin's hour is. `lead_hours` (2) before departure: the same plus the weather
observed at the origin by then and the delays already observed there (`history`). Nothing
recorded after that moment (the flight's own departure or delay, later flights) is used."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from cases.flights.history import observed_delays
from cases.flights.weather import origin_weather
from cases.lifecycle.contract import FeatureTable


def targets(arr_delay: pd.Series, cfg: Mapping) -> pd.DataFrame:
    """Arrival delay (minutes), delayed >= `delayed_min`, and the ordinal bucket (0..K-1).
    Cancelled and diverted flights have no arrival delay: every target is missing for them."""
    edges = [-np.inf, *cfg["bucket_edges"], np.inf]
    bucket = pd.cut(arr_delay, bins=edges, right=False, labels=False)
    return pd.DataFrame({
        "arr_delay": arr_delay.astype(float),
        "delayed": (arr_delay >= cfg["delayed_min"]).astype(float).where(arr_delay.notna()),
        "bucket": bucket.astype(float),
    })


def build(tables: dict[str, pd.DataFrame], cfg: Mapping) -> FeatureTable:
    fcfg = cfg["features"]
    f = tables["flights"].copy()
    date = pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"]))
    doy = date.dt.dayofyear.to_numpy()
    feats = pd.DataFrame(index=f.index)
    feats["carrier"] = f["carrier"].astype(str)
    feats["origin"] = f["origin"].astype(str)
    feats["dest"] = f["dest"].astype(str)
    feats["distance"] = f["distance"].astype(float)
    feats["sched_dep_hour"] = (f["sched_dep_time"] // 100).astype(float)
    feats["sched_dep_minute_of_day"] = (f["sched_dep_time"] // 100 * 60 + f["sched_dep_time"] % 100
                                        ).astype(float)
    feats["sched_arr_hour"] = (f["sched_arr_time"] // 100 % 24).astype(float)
    feats["weekday"] = date.dt.weekday.astype(float).to_numpy()
    feats["day_of_year_sin"] = np.sin(2 * np.pi * doy / 365.25)
    feats["day_of_year_cos"] = np.cos(2 * np.pi * doy / 365.25)
    feats["holiday_days"] = _days_to_holiday(date).to_numpy()
    planes = tables.get("planes", pd.DataFrame(columns=["tailnum", "year", "seats"]))
    p = planes.drop_duplicates("tailnum").set_index("tailnum")
    feats["plane_age"] = (f["year"] - f["tailnum"].map(p["year"])).astype(float).to_numpy()
    feats["plane_seats"] = f["tailnum"].map(p["seats"]).astype(float).to_numpy()
    # the published schedule: flights on this route that day (known when the ticket is sold)
    feats["route_flights_per_day"] = (f.groupby(["origin", "dest", "year", "month", "day"])
                                      ["flight"].transform("size").astype(float))
    # congestion from the same schedule: departures the origin has planned in the flight's hour
    feats["origin_flights_in_hour"] = (f.groupby(["origin", "time_hour"])["flight"]
                                       .transform("size").astype(float))
    lead = float(fcfg["lead_hours"])
    wx = origin_weather(f, tables.get("weather", pd.DataFrame()), lead)
    seen = observed_delays(f, lead, float(fcfg["history_window_min"]))
    feats = pd.concat([feats, wx, seen], axis=1)
    tg = targets(f["arr_delay"], fcfg)
    frame = pd.concat([feats, tg], axis=1)
    frame["month"] = f["month"].astype(int).to_numpy()
    frame["scheduled_departure"] = f["time_hour"]
    test_months = set(int(m) for m in fcfg["test_months"])
    is_test = f["month"].astype(int).isin(test_months)
    split = pd.Series(np.where(is_test, "test", "train"), index=f.index)
    sd = f["time_hour"]
    info = {
        "kind": "time-ordered by month",
        "train": {"months": sorted(set(f.loc[~is_test, "month"].astype(int))),
                  "from": str(sd[~is_test].min()), "to": str(sd[~is_test].max())},
        "test": {"months": sorted(set(f.loc[is_test, "month"].astype(int))),
                 "from": str(sd[is_test].min()), "to": str(sd[is_test].max())},
        "excluded_from_targets": int(f["arr_delay"].isna().sum()),
    }
    views = {k: list(v) for k, v in fcfg["views"].items()}
    return FeatureTable(frame=frame.reset_index(drop=True), views=views,
                        targets=list(tg.columns), split=split.reset_index(drop=True),
                        period=f["month"].astype(int).reset_index(drop=True), split_info=info)


def _days_to_holiday(date: pd.Series) -> pd.Series:
    """Days to the nearest US federal holiday (either side): travel peaks around them."""
    lo, hi = date.min() - pd.Timedelta(days=60), date.max() + pd.Timedelta(days=60)
    hol = USFederalHolidayCalendar().holidays(lo, hi).to_numpy().astype("datetime64[D]")
    d = date.to_numpy().astype("datetime64[D]")
    if len(hol) == 0:
        return pd.Series(np.full(len(date), 60.0), index=date.index)
    pos = np.searchsorted(hol, d)
    before = hol[np.clip(pos - 1, 0, len(hol) - 1)]
    after = hol[np.clip(pos, 0, len(hol) - 1)]
    dist = np.minimum(np.abs((d - before).astype(int)), np.abs((after - d).astype(int)))
    return pd.Series(dist.astype(float), index=date.index)
