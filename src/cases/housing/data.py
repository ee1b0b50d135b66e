"""Housing data with square footage known for every home, then masked on purpose.

Simulator (default): Seattle-area listings over three years of sales whose joint distribution
(size, grade, rooms, age, basement, lot, location, price) is calibrated on the real King County
sales; the calibration figures are in the README section of the case and `calibration_stats`
computes them for both. Real: the King County sales file (`kc_house_data.csv`, Kaggle schema),
read as published: quoted ids with leading zeros stay strings, prices in scientific notation are
floats, the 33-bedroom row is kept.

Square footage: `sqft_living = sqft_above + sqft_basement` holds in both. The masks (`mask`)
hide the three together, or the missing value could be read back from its parts. Each mechanism
gets its own columns `sqft_living_<mech>`, `sqft_above_<mech>`, `sqft_basement_<mech>` (missing
where masked) next to the truth, which only the oracle and the scoring ever read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Column, Dataset, Schema, read_table, required_path, validate

# the noise-free log price (simulator only): the Bayes floor's prediction (lifecycle/floor.py),
# never a feature. The sale's own noise is all a model cannot know; the sale day, zipcode, size
# and the rest are in every view (on a masked view the hidden size is not, so there the floor of
# a model that saw the size is a lower bound)
TRUTH = "truth_log_price"
SQFT = ("sqft_living", "sqft_above", "sqft_basement")
MECHANISMS = ("mcar", "mar", "mnar")
KC = Schema((
    Column("id", "str", nullable=False), Column("date", "str", nullable=False),
    Column("price", "float", nullable=False, min=1),
    Column("bedrooms", "float", nullable=False, min=0, max=50),
    Column("bathrooms", "float", nullable=False, min=0, max=20),
    Column("sqft_living", "float", nullable=False, min=1),
    Column("sqft_lot", "float", nullable=False, min=1),
    Column("grade", "float", nullable=False, min=1, max=13),
    Column("sqft_above", "float", nullable=False, min=0),
    Column("sqft_basement", "float", nullable=False, min=0),
    Column("yr_built", "float", nullable=False, min=1800, max=2030),
    Column("zipcode", "str", nullable=False),
    Column("lat", "float", nullable=False, min=-90, max=90),
    Column("long", "float", nullable=False, min=-180, max=180),
))
COLUMNS = ["id", "sale_date", "price", "bedrooms", "bathrooms", "sqft_living", "sqft_above",
           "sqft_basement", "sqft_lot", "grade", "yr_built", "zipcode", "lat", "long"]
# what the real file has beyond the simulator's columns: kept when present, numeric
EXTRA = ("floors", "waterfront", "view", "condition", "yr_renovated", "sqft_living15",
         "sqft_lot15")


def load(data: Mapping, raw_dir: Path) -> Dataset:
    source = data.get("source")
    if source == "simulator":
        homes = simulate(data["world"])
        description = ("simulated Seattle-area listings calibrated on King County sales "
                       "(square footage known before masking)")
        files: list[str] = []
    elif source == "real":
        path = required_path(data, "the King County sales file kc_house_data.csv, Kaggle schema")
        homes = read_kc(path)
        description, files = f"King County house sales from {Path(path).name} (real)", [path]
    else:
        raise CasebookError(f"case.data.source={source!r}; expected 'simulator' or 'real'")
    homes = mask(homes, data["mask"])
    return Dataset(tables={"homes": homes}, source=source, description=description, files=files)


def read_kc(path: str) -> pd.DataFrame:
    """The Kaggle file as published. Ids, dates and zipcodes are read as text (ids keep their
    leading zeros); the sum rule is checked because the masks rely on it."""
    raw = read_table(path, "King County sales file",
                     dtype={"id": str, "date": str, "zipcode": str})
    frame = validate(raw, KC, path)
    dates = pd.to_datetime(frame["date"], format="%Y%m%dT%H%M%S", errors="coerce")
    if dates.isna().any():
        row = int(dates.isna().to_numpy().nonzero()[0][0])
        raise CasebookError(f"{path}: column 'date': expected dates like 20141013T000000, found "
                            f"{frame['date'].iloc[row]!r} at row {row + 2}")
    frame["sale_date"] = dates
    broken = (frame["sqft_above"] + frame["sqft_basement"] - frame["sqft_living"]).abs() > 0.5
    if broken.any():
        row = int(broken.to_numpy().nonzero()[0][0])
        raise CasebookError(f"{path}: sqft_living must equal sqft_above + sqft_basement; row "
                            f"{row + 2} has {frame['sqft_living'].iloc[row]:.0f} != "
                            f"{frame['sqft_above'].iloc[row]:.0f} + "
                            f"{frame['sqft_basement'].iloc[row]:.0f}")
    extra = [c for c in EXTRA if c in raw]
    for c in extra:
        values = pd.to_numeric(raw[c], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise CasebookError(f"{path}: column {c!r}: expected a number, found "
                                f"{raw[c].iloc[row]!r} at row {row + 2}")
        frame[c] = values.astype(float).to_numpy()
    return frame[COLUMNS + extra].reset_index(drop=True)


# ----------------------------------------------------------------------------------- simulator
def simulate(w: Mapping) -> pd.DataFrame:
    """Listings in a King-County-shaped box. Correlations with log size (grade 0.74, bathrooms
    0.76, bedrooms 0.62, year built 0.35), the basement share (39% of homes; 32% of the living
    area when present) and price elasticities (0.51 per log sqft and 0.14 per grade within a
    zipcode) follow the real sales; the calibration test checks them against the real file."""
    rng = np.random.default_rng(int(w["seed"]))
    n, nz = int(w["listings"]), int(w["zipcodes"])
    lat0, lat1 = w["lat"]
    lon0, lon1 = w["long"]
    zlat = rng.uniform(lat0, lat1, nz)
    zlon = lon0 + (lon1 - lon0) * rng.beta(1.3, 2.6, nz)  # most homes west, near the water
    center = np.array(w["center"], dtype=float)
    dist = np.hypot(zlat - center[0], (zlon - center[1]) * 0.67)  # degrees, longitude shrunk
    z_effect = -float(w["price_per_distance"]) * dist + rng.normal(0, float(w["zip_sd"]), nz)
    z_effect -= z_effect.mean()
    z_share = rng.gamma(4.5, 1.0, nz)
    zone = rng.choice(nz, n, p=z_share / z_share.sum())
    size = rng.normal(0, 1, n) + float(w["size_location"]) * z_effect[zone] / max(float(w["zip_sd"]), 1e-9)
    size = (size - size.mean()) / size.std()
    log_sqft = np.log(float(w["sqft_median"])) + float(w["log_sqft_sd"]) * size

    def corr_with_size(r):
        return r * size + np.sqrt(1 - r * r) * rng.normal(0, 1, n)

    sqft = np.clip(np.exp(log_sqft), 290, 13540)
    grade = np.clip(np.round(7.66 + 1.18 * corr_with_size(0.74)), 3, 13)
    bedrooms = np.clip(np.round(3.37 + 0.93 * corr_with_size(0.62)), 1, 10)
    bathrooms = np.clip(np.round((2.11 + 0.77 * corr_with_size(0.76)) * 4) / 4, 0.5, 8)
    yr = np.clip(np.round(1971 + 29 * corr_with_size(0.35)), 1900, 2015)
    p_basement = 1 / (1 + np.exp(-(-0.45 - 0.025 * (yr - 1971) - 1.5 * dist[zone] + 0.3)))
    share = np.clip(rng.normal(0.32, 0.115, n), 0.05, 0.65)
    basement = np.where(rng.uniform(size=n) < p_basement, np.round(sqft * share / 10) * 10, 0.0)
    sqft = np.round(sqft / 10) * 10
    above = sqft - basement
    lot = np.clip(np.exp(np.log(7600) + 0.25 * size + 2.5 * dist[zone] - 0.35
                         + rng.normal(0, 0.55, n)), 520, 1_650_000).round()
    days = rng.uniform(0, 365.25 * float(w["years"]), n)
    start = pd.Timestamp(w["start"])
    sale = start + pd.to_timedelta(np.floor(days), unit="D")
    age = 2015 - yr
    truth = (  # the noise-free log price: what every listed feature fixes (the Bayes floor)
        float(w["intercept"]) + float(w["elasticity"]) * np.log(sqft) + float(w["grade_coef"]) * grade
        + z_effect[zone] + 0.05 * np.log(lot / 7600) + 0.00012 * (age - 45) ** 2
        + 0.04 * (basement > 0) + float(w["trend_per_year"]) * days / 365.25
        + 0.12 * np.maximum(grade - 10, 0) * np.log(sqft / 3000).clip(0)  # big, fine homes
    )
    log_price = truth + rng.normal(0, float(w["noise_sd"]), n)
    frame = pd.DataFrame({
        "id": [f"{i:010d}" for i in rng.choice(10**10, n, replace=False)],
        "sale_date": sale, "price": np.round(np.exp(log_price), -2),
        "bedrooms": bedrooms, "bathrooms": bathrooms, "sqft_living": sqft,
        "sqft_above": above, "sqft_basement": basement, "sqft_lot": lot, "grade": grade,
        "yr_built": yr, "zipcode": (98001 + np.argsort(np.argsort(zlat))[zone] * 2).astype(str),
        "lat": np.round(zlat[zone] + rng.normal(0, 0.02, n), 4),
        "long": np.round(zlon[zone] + rng.normal(0, 0.025, n), 3),
        TRUTH: truth,
    })
    return frame.sort_values("sale_date", kind="stable").reset_index(drop=True)


def calibration_stats(frame: pd.DataFrame) -> dict:
    """The figures the simulator is calibrated on (README, realdata test)."""
    ls = np.log(frame["sqft_living"])
    lp = np.log(frame["price"])
    has_b = frame["sqft_basement"] > 0
    X = pd.get_dummies(frame["zipcode"].astype(str), drop_first=True).astype(float)
    X["log_sqft"] = ls
    X["grade"] = frame["grade"]
    X["one"] = 1.0
    coef, *_ = np.linalg.lstsq(X.to_numpy(), lp.to_numpy(), rcond=None)
    resid = lp.to_numpy() - X.to_numpy() @ coef
    return {
        "median_price": float(frame["price"].median()),
        "sd_log_price": float(lp.std()),
        "median_sqft": float(frame["sqft_living"].median()),
        "sd_log_sqft": float(ls.std()),
        "corr_log_price_log_sqft": float(np.corrcoef(lp, ls)[0, 1]),
        "corr_log_sqft_grade": float(np.corrcoef(ls, frame["grade"])[0, 1]),
        "corr_log_sqft_bathrooms": float(np.corrcoef(ls, frame["bathrooms"])[0, 1]),
        "corr_log_sqft_bedrooms": float(np.corrcoef(ls, frame["bedrooms"])[0, 1]),
        "corr_log_sqft_yr_built": float(np.corrcoef(ls, frame["yr_built"])[0, 1]),
        "basement_share": float(has_b.mean()),
        "basement_fraction_when_present": float(
            (frame["sqft_basement"] / frame["sqft_living"])[has_b].median()),
        "zipcodes": int(frame["zipcode"].nunique()),
        "elasticity_log_sqft_within_zip": float(coef[-3]),
        "grade_coef_within_zip": float(coef[-2]),
        "resid_sd_within_zip": float(resid.std()),
    }


# --------------------------------------------------------------------------------------- masks
def mask_weights(frame: pd.DataFrame, mechanism: str, m: Mapping) -> np.ndarray:
    """The relative chance that each home's square footage goes missing.
    mcar: the same for all. mar: older homes and some zipcodes (observed columns) more often.
    mnar: larger homes more often (the value that goes missing drives its own absence)."""
    n = len(frame)
    if mechanism == "mcar":
        return np.ones(n)
    if mechanism == "mar":
        cfg = m["mar"]
        age = (frame["yr_built"].mean() - frame["yr_built"]) / frame["yr_built"].std()
        zips = sorted(frame["zipcode"].astype(str).unique())
        zrng = np.random.default_rng(int(m["seed"]) + 1)
        z_eff = dict(zip(zips, zrng.normal(0, float(cfg["zipcode_sd"]), len(zips))))
        score = float(cfg["age"]) * age.to_numpy() + frame["zipcode"].astype(str).map(
            z_eff).to_numpy()
        return np.exp(score)
    if mechanism == "mnar":
        ls = np.log(frame["sqft_living"])
        return np.exp(float(m["mnar"]["log_sqft"]) * ((ls - ls.mean()) / ls.std()).to_numpy())
    raise CasebookError(f"unknown mask mechanism {mechanism!r}; expected one of "
                        f"{', '.join(MECHANISMS)}")


def mask_rows(frame: pd.DataFrame, mechanism: str, m: Mapping) -> np.ndarray:
    """Exactly round(rate * rows) homes, drawn without replacement in proportion to the
    mechanism's weights: the rate is hit exactly and the mechanism decides who."""
    rate = float(m["rate"])
    if not 0 < rate < 1:
        raise CasebookError(f"case.data.mask.rate must be between 0 and 1, got {rate}")
    w = mask_weights(frame, mechanism, m)
    k = int(round(rate * len(frame)))
    rng = np.random.default_rng(int(m["seed"]) + MECHANISMS.index(mechanism))
    # Efraimidis-Spirakis: the k largest u^(1/w) are a weighted sample without replacement
    keys = np.log(rng.uniform(size=len(frame))) / w
    out = np.zeros(len(frame), dtype=bool)
    out[np.argsort(-keys, kind="stable")[:k]] = True
    return out


def mask(frame: pd.DataFrame, m: Mapping) -> pd.DataFrame:
    """Add `missing_<mech>` flags and the masked copies of the three square-footage columns."""
    frame = frame.copy()
    for mech in MECHANISMS:
        hide = mask_rows(frame, mech, m)
        frame[f"missing_{mech}"] = hide
        for col in SQFT:
            frame[f"{col}_{mech}"] = frame[col].where(~hide)
    return frame
