"""Trips in two real schemas and a simulator that writes the first of them.

- `coords`: the Kaggle NYC taxi trip-duration schema (id, vendor_id, pickup_datetime,
  dropoff_datetime, passenger_count, pickup/dropoff longitude and latitude, store_and_fwd_flag,
  trip_duration), pickup and dropoff as coordinates.
- `zones`: NYC TLC trip-record parquet files (green `lpep_*` or yellow `tpep_*` timestamps,
  PULocationID, DOLocationID, trip_distance in miles...), pickup and dropoff as taxi-zone ids,
  with the zone lookup (borough, zone) beside them.
- `simulator` (default): a city on a street grid (Seattle's box) with hotspots, rush-hour and
  weekday congestion, holidays, daily rain, heavy-tailed noise and the dirty records real trip
  logs have (zero-distance trips, meters left running for hours, clock errors, coordinates
  outside the city). Durations against distance and hour are calibrated on the real New York
  sample (README: eta).

Every trip is then checked against the cleaning rules in `conf/case/eta.yaml` (`data.clean`);
the prepared data keeps the clean trips and a table of what each rule removed.
"""

from __future__ import annotations

import functools
import glob
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Column, Dataset, Schema, read_table, required_path, validate

EARTH_KM = 6371.0088
KM_PER_MILE = 1.609344  # TLC meters count miles
COORDS = Schema((
    Column("pickup_datetime", "datetime", nullable=False),
    Column("dropoff_datetime", "datetime", nullable=False),
    Column("passenger_count", "float"), Column("vendor_id", "float"),
    Column("pickup_longitude", "float", nullable=False),
    Column("pickup_latitude", "float", nullable=False),
    Column("dropoff_longitude", "float", nullable=False),
    Column("dropoff_latitude", "float", nullable=False),
    Column("trip_duration", "float", nullable=False),
))
ZONES = Schema((
    Column("pickup_datetime", "datetime", nullable=False),
    Column("dropoff_datetime", "datetime", nullable=False),
    Column("passenger_count", "float"), Column("vendor_id", "float"),
    Column("PULocationID", "int", nullable=False, min=1, max=265),
    Column("DOLocationID", "int", nullable=False, min=1, max=265),
    Column("trip_distance", "float", min=0),
))


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in
                              (lat1, lon1, lat2, lon2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def manhattan_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """North-south plus east-west legs (a street grid aligned with the meridians)."""
    lat1, lon1, lat2, lon2 = (np.asarray(v, dtype=float) for v in (lat1, lon1, lat2, lon2))
    return (haversine_km(lat1, lon1, lat2, lon1)
            + haversine_km((lat1 + lat2) / 2, lon1, (lat1 + lat2) / 2, lon2))


def bearing_deg(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Initial compass bearing from pickup to dropoff, 0-360 degrees (0 = north)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in
                              (lat1, lon1, lat2, lon2))
    y = np.sin(lon2 - lon1) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    return (np.degrees(np.arctan2(y, x)) + 360) % 360


# ------------------------------------------------------------------------------------- loaders
def load(data: Mapping, raw_dir: Path) -> Dataset:
    source = data.get("source")
    clean_cfg = data["clean"]
    if source == "simulator":
        trips, schema = simulate(data["world"]), "coords"
        description = "simulated trips in a grid city (durations calibrated on NYC taxi trips)"
        bbox, files = data["world"]["bbox"], []
    elif source == "real":
        files = resolve_files(required_path(
            data, "a Kaggle NYC taxi trip-duration CSV, or TLC trip-record parquet file(s): a "
                  "file, a folder or a glob"))
        trips, schema = read_trips(files, data.get("zones_path"))
        kind = "NYC taxi trip duration (Kaggle schema)" if schema == "coords" else \
            "NYC TLC trip records (taxi zones)"
        description = f"{kind} from {Path(files[0]).name}" + (
            f" and {len(files) - 1} more file(s)" if len(files) > 1 else "") + " (real)"
        bbox = data["real_bbox"]
    else:
        raise CasebookError(f"case.data.source={source!r}; expected 'simulator' or 'real'")
    clean, rules = apply_cleaning(trips, schema, clean_cfg, bbox)
    if clean.empty:
        raise CasebookError("every trip broke a cleaning rule (case.data.clean); nothing is left")
    clean = clean.assign(schema=schema)
    return Dataset(tables={"trips": clean, "cleaning": rules}, source=source,
                   description=description, files=files)


def resolve_files(path: str) -> list[str]:
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(str(f) for f in p.glob("*.parquet")) or sorted(
            str(f) for f in p.glob("*.csv*") if "zone" not in f.name.lower())
    elif any(ch in path for ch in "*?["):
        files = sorted(glob.glob(str(p)))
    else:
        files = [str(p)]
    if not files:
        raise CasebookError(f"case.data.path={path}: no trip files found (expected a .csv, "
                            f".csv.gz or .parquet file, a folder of them, or a glob)")
    return [str(Path(f).resolve()) for f in files]


def detect_schema(columns) -> str:
    cols = set(columns)
    if {"pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"} <= cols:
        return "coords"
    if {"PULocationID", "DOLocationID"} <= cols:
        return "zones"
    raise CasebookError(
        "unrecognised trip schema: expected the Kaggle NYC taxi columns (pickup_longitude, "
        "pickup_latitude, dropoff_longitude, dropoff_latitude, ...) or TLC trip records "
        f"(PULocationID, DOLocationID, ...); found {', '.join(map(str, columns))}")


def read_trips(files: list[str], zones_path: str | None = None) -> tuple[pd.DataFrame, str]:
    frames, schema = [], None
    for f in files:
        raw = read_table(f, "trip file")
        kind = detect_schema(raw.columns)
        if schema not in (None, kind):
            raise CasebookError(f"{f}: schema {kind!r} differs from the earlier files' {schema!r}")
        schema = kind
        frames.append(_coords(raw, f) if kind == "coords" else _zones(raw, f))
    trips = pd.concat(frames, ignore_index=True)
    if schema == "zones":
        zones = read_zones(files, zones_path)
        trips = trips.merge(zones, how="left", left_on="PULocationID", right_index=True).merge(
            zones.add_prefix("do_"), how="left", left_on="DOLocationID", right_index=True)
    trips = trips.sort_values("pickup_datetime", kind="stable").reset_index(drop=True)
    return trips, schema  # type: ignore[return-value]


def _coords(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    raw = raw.copy()
    for c in ("passenger_count", "vendor_id"):
        if c not in raw:
            raw[c] = np.nan
    frame = validate(raw, COORDS, origin)
    frame["id"] = raw["id"].astype(str).to_numpy() if "id" in raw else np.arange(len(frame)).astype(str)
    return _naive(frame)


def _zones(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    prefix = next((p for p in ("lpep", "tpep") if f"{p}_pickup_datetime" in raw), None)
    if prefix is None:
        raise CasebookError(f"{origin}: TLC file without lpep_/tpep_ pickup and dropoff times")
    raw = raw.rename(columns={f"{prefix}_pickup_datetime": "pickup_datetime",
                              f"{prefix}_dropoff_datetime": "dropoff_datetime",
                              "VendorID": "vendor_id"}).copy()
    for c in ("passenger_count", "vendor_id", "trip_distance"):
        if c not in raw:
            raw[c] = np.nan
    frame = validate(raw, ZONES, origin)
    frame["trip_duration"] = (frame["dropoff_datetime"] - frame["pickup_datetime"]).dt.total_seconds()
    frame["id"] = [f"{Path(origin).stem}:{i}" for i in range(len(frame))]
    return _naive(frame)


def _naive(frame: pd.DataFrame) -> pd.DataFrame:
    """Local wall-clock times (the files carry no zone; validation parsed them as UTC)."""
    for c in ("pickup_datetime", "dropoff_datetime"):
        frame[c] = frame[c].dt.tz_localize(None).astype("datetime64[ns]")
    return frame


def read_zones(files: list[str], zones_path: str | None) -> pd.DataFrame:
    path = Path(zones_path) if zones_path else Path(files[0]).parent / "taxi_zone_lookup.csv"
    if not path.exists():
        raise CasebookError(f"TLC trips need the taxi zone lookup: {path} not found (set "
                            f"case.data.zones_path to taxi_zone_lookup.csv)")
    z = validate(read_table(path, "taxi zone lookup"), Schema((
        Column("LocationID", "int", nullable=False), Column("Borough", "str"),
        Column("Zone", "str"))), str(path))
    return z.set_index(z["LocationID"].astype(int))[["Borough", "Zone"]].rename(
        columns={"Borough": "borough", "Zone": "zone"}).fillna("Unknown")


# ------------------------------------------------------------------------------------ cleaning
def apply_cleaning(trips: pd.DataFrame, schema: str, c: Mapping,
                   bbox: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each trip is counted under the first rule it breaks, in this order."""
    dur = trips["trip_duration"].to_numpy(float)
    clock = (trips["dropoff_datetime"] - trips["pickup_datetime"]).dt.total_seconds().to_numpy()
    rules: list[tuple[str, str, np.ndarray]] = [
        ("clock_error", f"dropoff not after pickup, or the duration disagrees with the "
                        f"timestamps by more than {c['clock_tolerance_s']} s",
         (clock <= 0) | (np.abs(clock - dur) > float(c["clock_tolerance_s"]))),
        ("too_short", f"under {c['min_duration_s']} s", dur < float(c["min_duration_s"])),
        ("too_long", f"over {c['max_duration_s']} s (a meter left running)",
         dur > float(c["max_duration_s"])),
    ]
    if schema == "coords":
        inside = np.ones(len(trips), dtype=bool)
        for end in ("pickup", "dropoff"):
            inside &= trips[f"{end}_latitude"].between(*bbox["lat"]).to_numpy()
            inside &= trips[f"{end}_longitude"].between(*bbox["long"]).to_numpy()
        km = haversine_km(trips["pickup_latitude"], trips["pickup_longitude"],
                          trips["dropoff_latitude"], trips["dropoff_longitude"])
        rules += [
            ("outside_city", f"pickup or dropoff outside lat {list(bbox['lat'])}, long "
                             f"{list(bbox['long'])}", ~inside),
            ("zero_distance", f"pickup and dropoff under {c['min_distance_km']} km apart",
             km < float(c["min_distance_km"])),
        ]
    else:
        unknown = trips["PULocationID"].isin(c["unknown_zones"]) | trips["DOLocationID"].isin(
            c["unknown_zones"])
        miles = trips["trip_distance"].to_numpy(float)
        km = miles * KM_PER_MILE
        rules += [("outside_city", f"zone {list(c['unknown_zones'])} (unknown / outside NYC)",
                   unknown.to_numpy()),
                  ("zero_distance", f"metered distance under {c['min_distance_km']} km",
                   ~(km >= float(c["min_distance_km"])))]
    speed = km / np.maximum(dur, 1) * 3600
    rules.append(("impossible_speed", f"straight-line speed over {c['max_speed_kmh']} km/h",
                  speed > float(c["max_speed_kmh"])))
    removed = np.zeros(len(trips), dtype=bool)
    rows = []
    for name, text, broken in rules:
        new = broken & ~removed
        rows.append({"rule": name, "meaning": text, "removed": int(new.sum()),
                     "share_pct": 100 * float(new.mean()) if len(trips) else 0.0,
                     "broken_in_total": int(broken.sum())})
        removed |= broken
    rows.append({"rule": "kept", "meaning": "trips left", "removed": int((~removed).sum()),
                 "share_pct": 100 * float((~removed).mean()), "broken_in_total": 0})
    return trips[~removed].reset_index(drop=True), pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- simulator
TRUTH = "truth_trip_duration"  # the Bayes floor's prediction (lifecycle/floor.py), never a feature


def rmsle_optimal(base: np.ndarray, w: Mapping) -> np.ndarray:
    """The duration no model can beat on RMSLE: exp(E[log(1 + duration)]) - 1 given everything
    the trip shows (route, hour, day, rain, place). What is left is noise no feature carries:
    the log-normal noise and the heavy tail drawn per trip. With duration = base * e^(n + t),
    n ~ N(0, sd), t = Exp(scale) with probability `tail_share`: E[log duration] = log base +
    share * scale, and log(1 + d) = log d + log(1 + 1/d) adds E[1/d] = e^(sd^2/2) (1 - share +
    share / (1 + scale)) / base (first order; under a minute it is below 0.02). Rounding to the
    second and the cleaning rules' cut of the extremes are ignored."""
    sd, share, scale = float(w["noise_sd"]), float(w["tail_share"]), float(w["tail_scale"])
    inverse = np.exp(sd ** 2 / 2) * (1 - share + share / (1 + scale)) / base
    return np.expm1(np.log(base) + share * scale + inverse)


def simulate(w: Mapping) -> pd.DataFrame:
    """Trips in the Kaggle schema, plus the day's rain (`precip_mm`), which a real file lacks."""
    rng = np.random.default_rng(int(w["seed"]))
    n = int(w["trips"])
    (lat0, lat1), (lon0, lon1) = w["bbox"]["lat"], w["bbox"]["long"]
    # when: weeks of trips, busier by day than at night (hour shares from the NYC sample)
    start = pd.Timestamp(w["start"])
    days = int(w["weeks"]) * 7
    hour_p = np.asarray(w["hour_share"], dtype=float)
    day = rng.integers(0, days, n)
    hour = rng.choice(24, n, p=hour_p / hour_p.sum())
    when = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(
        hour * 3600 + rng.integers(0, 3600, n), unit="s")
    weekday = when.dayofweek.to_numpy()
    holidays = us_holidays(start, start + pd.Timedelta(days=days))
    holiday = np.isin(when.normalize().to_numpy(), holidays.to_numpy())
    # where: hotspots (downtown, neighbourhood centres) and the rest of the grid
    hs = np.asarray(w["hotspots"], dtype=float)  # rows: lat, long, weight
    from_hot = rng.uniform(size=n) < float(w["hotspot_share"])
    spot = rng.choice(len(hs), n, p=hs[:, 2] / hs[:, 2].sum())
    plat = np.where(from_hot, hs[spot, 0] + rng.normal(0, 0.008, n), rng.uniform(lat0, lat1, n))
    plon = np.where(from_hot, hs[spot, 1] + rng.normal(0, 0.011, n), rng.uniform(lon0, lon1, n))
    plat, plon = np.clip(plat, lat0, lat1), np.clip(plon, lon0, lon1)
    km = np.exp(rng.normal(np.log(float(w["median_km"])), float(w["log_km_sd"]), n))
    theta = rng.uniform(0, 2 * np.pi, n)
    dlat = km * np.cos(theta) / 111.2
    dlon = km * np.sin(theta) / (111.2 * np.cos(np.radians(plat)))
    dlat_, dlon_ = np.clip(plat + dlat, lat0, lat1), np.clip(plon + dlon, lon0, lon1)
    # how long: the grid route at the hour's speed, slower downtown, in rain, on weekdays
    route = manhattan_km(plat, plon, dlat_, dlon_) * float(w["route_factor"])
    speed = np.asarray(w["speed_by_hour"], dtype=float)[hour]
    speed = speed * np.where(weekday >= 5, float(w["weekend_speedup"]), 1.0)
    speed = speed * np.where(holiday, float(w["weekend_speedup"]), 1.0)
    center = np.asarray(w["downtown"], dtype=float)
    near = np.exp(-((plat - center[0]) ** 2 + ((plon - center[1]) * 0.67) ** 2) / 0.0004)
    speed = speed * (1 - float(w["downtown_slowdown"]) * near)
    # longer trips reach arterials and highways
    speed = speed * (np.maximum(route, 0.3) / float(w["median_km"])) ** float(w["distance_speedup"])
    rain_days = rng.uniform(size=days) < float(w["rain_day_share"])
    precip = np.where(rain_days, np.round(rng.gamma(1.5, 4.0, days), 1), 0.0)[day]
    speed = speed * np.where(precip > 0, 1 - float(w["rain_slowdown"]), 1.0)
    noise = rng.normal(0, float(w["noise_sd"]), n)
    tail = rng.uniform(size=n) < float(w["tail_share"])
    noise = noise + np.where(tail, rng.exponential(float(w["tail_scale"]), n), 0.0)
    base = float(w["overhead_s"]) + route / speed * 3600
    dur = base * np.exp(noise)
    # the dirty records real trip logs have
    d = w["dirty"]
    u = rng.uniform(size=n)
    cut = np.cumsum([float(d["zero_distance"]), float(d["meter_left_on"]),
                     float(d["clock_error"]), float(d["outside_city"])])
    zero = u < cut[0]
    meter = (u >= cut[0]) & (u < cut[1])
    clock = (u >= cut[1]) & (u < cut[2])
    outside = (u >= cut[2]) & (u < cut[3])
    dlat_ = np.where(zero, plat, dlat_)
    dlon_ = np.where(zero, plon, dlon_)
    dur = np.where(zero, rng.uniform(2, 900, n), dur)
    dur = np.where(meter, dur + rng.uniform(6, 24, n) * 3600, dur)
    dur = np.round(np.clip(dur, 1, None))
    dropoff = when + pd.to_timedelta(dur, unit="s")
    # a clock error: the dropoff stamp from a device clock an hour or more behind
    dropoff = dropoff - pd.to_timedelta(np.where(clock, rng.integers(3600, 7200, n), 0), unit="s")
    dlat_ = np.where(outside, 0.0, dlat_)
    dlon_ = np.where(outside, 0.0, dlon_)
    frame = pd.DataFrame({
        "id": np.char.add("id", np.arange(n).astype(str)),
        "vendor_id": rng.integers(1, 3, n).astype(float),
        "pickup_datetime": when.to_numpy(), "dropoff_datetime": dropoff.to_numpy(),
        "passenger_count": rng.choice([1, 1, 1, 1, 2, 2, 3, 5, 6], n).astype(float),
        "pickup_longitude": np.round(plon, 6), "pickup_latitude": np.round(plat, 6),
        "dropoff_longitude": np.round(dlon_, 6), "dropoff_latitude": np.round(dlat_, 6),
        "trip_duration": dur, "precip_mm": precip,
        TRUTH: rmsle_optimal(base, w),
    })
    return frame.sort_values("pickup_datetime", kind="stable").reset_index(drop=True)


@functools.lru_cache(maxsize=512)
def us_holidays(start, end) -> pd.DatetimeIndex:
    """US federal holidays between two days (cached: the Dask path asks once per partition)."""
    from pandas.tseries.holiday import USFederalHolidayCalendar

    return USFederalHolidayCalendar().holidays(start=start, end=end)
