"""Airbnb listings in every Inside Airbnb schema, parsed into one canonical table.

- `detailed`: Inside Airbnb `listings.csv(.gz)` of any city and year. The 2016 files have a
  numeric `bathrooms`, amenities as `{TV,"Cable TV",...}` and review scores out of 100; today's
  75-column files have `bathrooms_text` ("1.5 shared baths", "Half-bath"), amenities as a JSON
  list and review scores out of 5. Prices are "$1,234.00", rates "96%", flags "t"/"f".
- `summary`: the 16-column summary schema (New York City 2019): no capacity, rooms or amenities.
- `simulator` (default): listings whose price depends on neighbourhood, room type, capacity,
  bedrooms, bathrooms, amenities, reviews and host with interactions and non-linear effects a
  linear model cannot capture, calibrated on the real Seattle 2016 listings (README: airbnb).
  It writes the 2016 detailed schema, so the same parser reads it.

`canonical` returns the table with the columns it could fill and the list it could not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Dataset, read_table, required_path

SUMMARY = {"id", "host_id", "neighbourhood_group", "neighbourhood", "latitude", "longitude",
           "room_type", "price", "minimum_nights", "number_of_reviews", "last_review",
           "reviews_per_month", "calculated_host_listings_count", "availability_365"}
CANONICAL = ["listing_id", "host_id", "neighbourhood", "neighbourhood_group", "latitude",
             "longitude", "room_type", "property_type", "accommodates", "bedrooms", "beds",
             "bathrooms", "bathrooms_shared", "amenities", "host_years", "host_is_superhost",
             "host_listings", "host_response_rate", "number_of_reviews", "review_score",
             "days_since_last_review", "reviews_per_month", "minimum_nights",
             "availability_365", "instant_bookable", "price"]


# ------------------------------------------------------------------------------------- parsing
CURRENCY = r"[$€£¥₹₩₺₽₪฿₫₱R\s]|[A-Z]{3}|kr|zł|Kč|Ft|lei"


def parse_price(values: pd.Series) -> pd.Series:
    """'$1,234.00', '€85.00', '1,234.00 DKK' -> the number (in the file's own currency);
    numbers pass through; anything else becomes missing."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.replace(CURRENCY, "", regex=True).str.replace(",", "")
    return pd.to_numeric(text, errors="coerce").astype(float)


def currency_symbols(values: pd.Series) -> list[str]:
    """The currency marks a price column carries ('$', '€', 'DKK'), most common first."""
    if pd.api.types.is_numeric_dtype(values):
        return []
    marks = values.dropna().astype(str).str.findall(r"[^\d.,\s-]+").explode().dropna()
    return marks.value_counts().index.tolist()


def parse_percent(values: pd.Series) -> pd.Series:
    """'96%' -> 96.0; 'N/A' and blanks become missing."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    return pd.to_numeric(values.astype("string").str.rstrip("%"), errors="coerce").astype(float)


def parse_flag(values: pd.Series) -> pd.Series:
    return values.map({"t": 1.0, "f": 0.0, True: 1.0, False: 0.0}).astype(float)


def parse_amenities(value) -> list[str]:
    """Both formats: '{TV,"Cable TV",Internet}' (2016) and '["Wifi", "Kitchen"]' (JSON)."""
    if not isinstance(value, str) or not value.strip():
        return []
    v = value.strip()
    if v.startswith("["):
        try:
            items = json.loads(v)
        except json.JSONDecodeError:
            items = re.findall(r'"((?:[^"\\]|\\.)*)"', v)
    else:
        items = re.findall(r'"([^"]*)"|([^,{}]+)', v.strip("{}"))
        items = [a or b for a, b in items]
    out = []
    for item in items:
        item = str(item).strip()
        if item and not item.lower().startswith("translation missing"):
            out.append(item)
    return out


def parse_bathrooms_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'1.5 shared baths' -> (1.5, 1); 'Half-bath' -> (0.5, 0); '2 baths' -> (2.0, 0)."""
    text = values.astype("string").str.lower()
    number = pd.to_numeric(text.str.extract(r"(\d+(?:\.\d+)?)")[0], errors="coerce")
    half = text.str.contains("half", na=False)
    number = number.where(~(half & number.isna()), 0.5)
    shared = text.str.contains("shared", na=False).astype(float).where(text.notna())
    return number.astype(float), shared


def parse_name_counts(names: pd.Series) -> pd.DataFrame:
    """Bedrooms, beds and bathrooms from a listing's name, where today's files put them
    ("Condo in Seattle · ★4.89 · 2 bedrooms · 3 beds · 1.5 baths"; "Studio" is 0 bedrooms);
    missing where the name does not say."""
    text = names.astype("string").str.lower()

    def number(pattern: str) -> pd.Series:
        return pd.to_numeric(text.str.extract(pattern)[0], errors="coerce").astype(float)

    bedrooms = number(r"(\d+)\s*bedrooms?\b").where(~text.str.contains(r"\bstudio\b", na=False),
                                                     0.0)
    baths = number(r"(\d+(?:\.\d+)?)\s*(?:shared\s+|private\s+)?baths?\b")
    half = text.str.contains(r"\bhalf-bath", na=False)
    return pd.DataFrame({"bedrooms": bedrooms, "beds": number(r"(\d+)\s*beds?\b"),
                         "bathrooms": baths.where(~(half & baths.isna()), 0.5)})


# the simulator's noise-free log price for the Bayes floor (lifecycle/floor.py), never a feature
TRUTH = "truth_log_price"
# columns every later stage needs, whatever the file: never dropped as unusable
KEPT = ("listing_id", "host_id", "neighbourhood", "room_type", "price", TRUTH)


def unusable_columns(table: pd.DataFrame) -> dict[str, str]:
    """Columns no model can learn from in this file, with the reason: empty in every row, or
    one value in every row (files scraped since 2023 blank out e.g. `bedrooms`)."""
    out = {}
    for c in table.columns:
        if c in KEPT:
            continue
        values = table[c]
        if c == "amenities":
            values = values.map(lambda items: json.dumps(sorted(items)) if items else None)
        known = values.dropna()
        if known.empty:
            out[c] = "empty in every row"
        elif known.nunique() == 1 and len(known) == len(values):
            out[c] = f"the same value in every row ({known.iloc[0]})"
    return out


def slug(name: str) -> str:
    return "amen_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# ------------------------------------------------------------------------------------- schemas
def detect_schema(columns) -> str:
    cols = set(columns)
    if {"price", "room_type"} <= cols and "amenities" in cols:
        return "detailed"
    if SUMMARY <= cols:
        return "summary"
    raise CasebookError(
        "unrecognised listings schema: expected an Inside Airbnb detailed listings file "
        "(with price, room_type and amenities) or the 16-column summary schema ("
        + ", ".join(sorted(SUMMARY)) + f"); found {', '.join(map(str, list(columns)[:30]))}")


def canonical(raw: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, str, list[str]]:
    """(table, schema, columns it could not fill)."""
    schema = detect_schema(raw.columns)
    out = pd.DataFrame(index=raw.index)

    def take(name, source=None, fn=None):
        src = source or name
        if src in raw:
            out[name] = fn(raw[src]) if fn else raw[src]

    take("listing_id", "id", lambda s: s.astype(str))
    take("host_id", fn=lambda s: s.astype(str))
    take("neighbourhood", "neighbourhood_cleansed" if "neighbourhood_cleansed" in raw
         else "neighbourhood", lambda s: s.astype("string").fillna("Unknown").astype(str))
    take("neighbourhood_group", "neighbourhood_group_cleansed" if
         "neighbourhood_group_cleansed" in raw else "neighbourhood_group",
         lambda s: s.astype("string").fillna("Unknown").astype(str))
    for c in ("latitude", "longitude", "accommodates", "bedrooms", "beds", "number_of_reviews",
              "reviews_per_month", "minimum_nights", "availability_365"):
        take(c, fn=lambda s: pd.to_numeric(s, errors="coerce").astype(float))
    # many-level text columns some files have (2016: street, zipcode): the encodings test
    for c in ("street", "zipcode"):
        take(c, fn=lambda s: s.astype("string").fillna("Unknown").astype(str))
    take("room_type", fn=lambda s: s.astype(str))
    take("property_type", fn=lambda s: s.astype("string").fillna("Other").astype(str))
    if "bathrooms" in raw and pd.to_numeric(raw["bathrooms"], errors="coerce").notna().any():
        out["bathrooms"] = pd.to_numeric(raw["bathrooms"], errors="coerce").astype(float)
    if "bathrooms_text" in raw:
        number, shared = parse_bathrooms_text(raw["bathrooms_text"])
        if "bathrooms" not in out:
            out["bathrooms"] = number
        out["bathrooms_shared"] = shared
    take("amenities", fn=lambda s: s.map(parse_amenities))
    take("host_is_superhost", fn=parse_flag)
    take("instant_bookable", fn=parse_flag)
    take("host_response_rate", fn=parse_percent)
    take("host_listings", "calculated_host_listings_count" if
         "calculated_host_listings_count" in raw else "host_listings_count",
         lambda s: pd.to_numeric(s, errors="coerce").astype(float))
    if "review_scores_rating" in raw:
        score = pd.to_numeric(raw["review_scores_rating"], errors="coerce").astype(float)
        out["review_score"] = score * 20 if score.max() <= 5 else score  # today's files: of 5
    # dates into ages, relative to the scrape date (summary files: the latest review)
    ref = None
    if "last_scraped" in raw:
        ref = pd.to_datetime(raw["last_scraped"], errors="coerce").max()
    if "last_review" in raw:
        last = pd.to_datetime(raw["last_review"], errors="coerce")
        ref = ref if ref is not None and not pd.isna(ref) else last.max()
        out["days_since_last_review"] = (ref - last).dt.days.astype(float)
    if "host_since" in raw and ref is not None:
        out["host_years"] = ((ref - pd.to_datetime(raw["host_since"], errors="coerce")).dt.days
                             / 365.25).astype(float)
    if "price" not in raw:
        raise CasebookError(f"{origin}: no price column")
    out["price"] = parse_price(raw["price"])
    take(TRUTH, fn=lambda s: s.astype(float))  # the simulator's only
    # known when a listing is priced, in the files that have them (never a price field: the
    # weekly, monthly, cleaning or deposit prices and extra_people are the price by another name)
    for c in ("name", "summary", "description"):  # the listing's own text
        if c in raw:
            out[c] = raw[c].astype("string").fillna("").astype(str)
    for c in ("guests_included", "availability_30", "availability_90",
              "review_scores_location", "review_scores_value", "review_scores_cleanliness"):
        take(c, fn=lambda s: pd.to_numeric(s, errors="coerce").astype(float))
    for c in ("bed_type", "cancellation_policy"):
        take(c, fn=lambda s: s.astype("string").fillna("Unknown").astype(str))
    take("host_identity_verified", fn=parse_flag)
    if "first_review" in raw and ref is not None:
        out["days_since_first_review"] = (
            ref - pd.to_datetime(raw["first_review"], errors="coerce")).dt.days.astype(float)
    missing = [c for c in CANONICAL if c not in out]
    return out.reset_index(drop=True), schema, missing


# ------------------------------------------------------------------------------------- loading
def load(data: Mapping, raw_dir: Path) -> Dataset:
    source = data.get("source")
    if source == "simulator":
        raw = simulate(data["world"])
        origin, files = "simulator", []
        description = "simulated listings calibrated on Seattle 2016 (Inside Airbnb schema)"
    elif source == "real":
        path = required_path(data, "an Inside Airbnb listings.csv(.gz), detailed or summary "
                                   "schema")
        raw = read_table(path, "listings file")
        origin, files = path, [path]
        description = f"Inside Airbnb listings from {Path(path).name} (real)"
    else:
        raise CasebookError(f"case.data.source={source!r}; expected 'simulator' or 'real'")
    table, schema, missing = canonical(raw, origin)
    from_name = []
    if "name" in raw:  # today's files: counts in the name where their own column is blank
        parsed = parse_name_counts(raw["name"].reset_index(drop=True))
        for c in parsed:
            filled = table[c].combine_first(parsed[c]) if c in table else parsed[c]
            if filled.notna().sum() > (table[c].notna().sum() if c in table else 0):
                table[c] = filled
                from_name.append(c)
    table, rules = clean(table, data["clean"])
    dropped = unusable_columns(table)
    table = table.drop(columns=list(dropped))
    if "amenities" in table:  # stored as JSON text: tables are hashed and written as parquet
        table["amenities"] = table["amenities"].map(json.dumps)
    notes = [f"{c} (not in the file)" for c in missing if c not in dropped]
    notes += [f"{c} ({why})" for c, why in dropped.items()]
    info = pd.DataFrame({"schema": [schema], "unusable": ["; ".join(notes)],
                         "raw_rows": [len(raw)], "from_name": [", ".join(from_name)],
                         "currency": [", ".join(currency_symbols(raw["price"]))]})
    return Dataset(tables={"listings": table, "cleaning": rules, "schema": info},
                   source=source, description=description + f" [{schema} schema]", files=files)


def clean(table: pd.DataFrame, c: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Price rules, each counted (a listing counts under the first rule it breaks)."""
    price = table["price"]
    rules = [
        ("price_unparsed", "price missing or not a number", price.isna()),
        ("price_zero", "price of $0 (not a real nightly price)", price <= 0),
        ("price_too_low", f"under ${c['min_price']}", price < float(c["min_price"])),
        ("price_too_high", f"over ${c['max_price']} (extreme: event or placeholder prices)",
         price > float(c["max_price"])),
        ("no_room_type", "room type missing", table["room_type"].isna()
         | table["room_type"].isin(["nan", "None", ""])),
    ]
    removed = pd.Series(False, index=table.index)
    rows = []
    for name, text, broken in rules:
        broken = broken.fillna(False).astype(bool)
        rows.append({"rule": name, "meaning": text, "removed": int((broken & ~removed).sum())})
        removed |= broken
    rows.append({"rule": "kept", "meaning": "listings left", "removed": int((~removed).sum())})
    return table[~removed].reset_index(drop=True), pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- simulator
AMENITY_EFFECTS = {  # log-price effect, share of listings (Seattle 2016 shares)
    "Wireless Internet": (0.0, 0.96), "Heating": (0.0, 0.95), "Kitchen": (0.05, 0.90),
    "Smoke Detector": (0.0, 0.86), "Essentials": (0.0, 0.85), "Dryer": (0.03, 0.78),
    "Washer": (0.03, 0.78), "TV": (0.06, 0.67), "Free Parking on Premises": (0.0, 0.57),
    "Family/Kid Friendly": (0.05, 0.51), "Cable TV": (0.04, 0.38),
    "Indoor Fireplace": (0.06, 0.23), "Elevator in Building": (0.05, 0.21),
    "Air Conditioning": (0.08, 0.18), "Gym": (0.06, 0.12), "Hot Tub": (0.12, 0.08),
    "Pool": (0.10, 0.05), "Breakfast": (-0.02, 0.08), "Pets Allowed": (0.0, 0.12),
    "Wheelchair Accessible": (0.0, 0.08),
}


def simulate(w: Mapping) -> pd.DataFrame:
    """Listings in the 2016 Inside Airbnb schema. Price (log) = room type base + neighbourhood
    premium (larger for entire homes) + capacity (steep for entire homes, flat for rooms) +
    bathrooms + amenities + a penalty below a review score of 90 + professional hosts + the host's
    own pricing taste + noise, and interactions and thresholds on purpose: the premium grows with
    capacity in dear neighbourhoods, a hot tub pays only for entire homes, monthly rentals are
    discounted, rarely available entire homes cost more."""
    rng = np.random.default_rng(int(w["seed"]))
    n, nn = int(w["listings"]), int(w["neighbourhoods"])
    share = rng.gamma(0.9, 1.0, nn)
    n_lat = rng.uniform(47.50, 47.73, nn)
    n_lon = rng.uniform(-122.41, -122.25, nn)
    dist = np.hypot(n_lat - 47.61, (n_lon + 122.335) * 0.67)
    premium = -2.0 * dist + rng.normal(0, float(w["neighbourhood_sd"]), nn)
    premium -= np.average(premium, weights=share)
    groups = np.minimum((np.argsort(np.argsort(n_lat)) * 17) // nn, 16)
    hood = rng.choice(nn, n, p=share / share.sum())
    # hosts: most have one listing, professionals many (and price them higher)
    pro = rng.uniform(size=n) < float(w["professional_host_share"])
    per_host = np.where(pro, rng.integers(3, 21, n), 1 + (rng.uniform(size=n) < 0.12))
    host = rng.permutation(np.repeat(np.arange(n), per_host)[:n])
    n_hosts = int(host.max()) + 1
    host_taste = rng.normal(0, float(w["host_sd"]), n_hosts)
    room = rng.choice(["Entire home/apt", "Private room", "Shared room"], n, p=w["room_shares"])
    entire, private = room == "Entire home/apt", room == "Private room"
    acc = np.where(entire, rng.choice([2, 3, 4, 5, 6, 7, 8, 10, 12, 16], n,
                                      p=[.30, .10, .25, .07, .12, .03, .07, .03, .02, .01]),
                   rng.choice([1, 2, 3, 4], n, p=[.25, .62, .08, .05])).astype(float)
    bedrooms = np.where(entire, np.clip(np.round(acc / 2 + rng.normal(0, 0.6, n)), 0, 7),
                        1.0)
    beds = np.clip(np.round(acc / 1.6 + rng.normal(0, 0.5, n)), 1, 12)
    baths = np.where(entire, np.clip(np.round((0.7 + bedrooms * 0.4 + rng.normal(0, 0.3, n))
                                              * 2) / 2, 0.5, 5), 1.0)
    prop = np.where(entire & (bedrooms >= 2), rng.choice(["House", "Townhouse", "Apartment"], n,
                                                         p=[.65, .1, .25]),
                    rng.choice(["Apartment", "House", "Condominium", "Loft"], n,
                               p=[.6, .3, .07, .03]))
    amen_names = list(AMENITY_EFFECTS)
    has = rng.uniform(size=(n, len(amen_names))) < np.array([v[1] for v in AMENITY_EFFECTS.values()])
    n_reviews = np.floor(rng.exponential(float(w["mean_reviews"]), n))
    no_reviews = rng.uniform(size=n) < 0.16
    n_reviews[no_reviews] = 0
    score = np.where(no_reviews, np.nan, np.clip(np.round(100 - rng.gamma(1.3, 4.2, n)), 20, 100))
    superhost = (rng.uniform(size=n) < 0.2) & ~no_reviews
    host_listings = np.bincount(host, minlength=n_hosts)[host].astype(float)
    years = np.round(rng.uniform(0.1, 7.5, n), 2)
    min_nights = rng.choice([1, 1, 2, 2, 3, 7, 30], n)
    availability = rng.integers(0, 366, n)
    hot_tub = has[:, amen_names.index("Hot Tub")]
    noise = rng.normal(0, float(w["noise_sd"]), n)  # drawn where the sum below used to draw it
    log_price = (
        np.select([entire, private], [float(w["base"][0]), float(w["base"][1])],
                  float(w["base"][2]))
        + premium[hood] * np.where(entire, 1.0, 0.5)
        + np.where(entire, float(w["capacity_entire"]) * np.log(acc / 2)
                   + 0.05 * bedrooms, 0.05 * np.log(acc))
        + 0.1 * (baths - 1) + has @ np.array([v[0] for v in AMENITY_EFFECTS.values()])
        - float(w["low_score_penalty"]) * np.nan_to_num(score < 90, nan=0.0)
        + 0.05 * superhost + 0.12 * (host_listings >= 10) + host_taste[host]
        - 0.015 * np.log1p(n_reviews)
        # interactions and thresholds a linear model cannot draw
        + float(w["premium_x_capacity"]) * premium[hood] * np.where(entire, np.log(acc / 2), 0)
        + 0.12 * (hot_tub & entire)
        - float(w["monthly_discount"]) * (min_nights >= 30)
        + 0.15 * ((availability < 60) & entire)
        + noise)
    # the Bayes floor's prediction (lifecycle/floor.py): the log price without what no model can
    # know of a test listing, its own noise and its host's taste (test hosts are never in training)
    truth = log_price - noise - host_taste[host]
    price = np.round(np.exp(log_price))
    amenities = ["{" + ",".join(f'"{a}"' if " " in a or "/" in a else a
                                for a, h in zip(amen_names, row) if h) + "}" for row in has]
    ref = pd.Timestamp(w["scraped"])
    last = ref - pd.to_timedelta(np.floor(rng.exponential(60, n)), unit="D")
    listings = pd.DataFrame({
        "id": np.arange(1, n + 1), "last_scraped": str(ref.date()),
        "host_id": 1000 + host, "host_since": (ref - pd.to_timedelta(years * 365.25, unit="D")
                                               ).strftime("%Y-%m-%d"),
        "host_response_rate": [f"{int(v)}%" for v in np.clip(np.round(rng.normal(95, 8, n)), 20,
                                                                     100)],
        "host_is_superhost": np.where(superhost, "t", "f"),
        "host_listings_count": host_listings,
        "neighbourhood_cleansed": [f"Hood {i:02d}" for i in hood],
        "neighbourhood_group_cleansed": [f"District {g:02d}" for g in groups[hood]],
        "latitude": np.round(n_lat[hood] + rng.normal(0, 0.004, n), 5),
        "longitude": np.round(n_lon[hood] + rng.normal(0, 0.005, n), 5),
        "property_type": prop, "room_type": room, "accommodates": acc.astype(int),
        "bathrooms": baths, "bedrooms": bedrooms, "beds": beds, "amenities": amenities,
        "price": [f"${p:,.2f}" for p in price],
        "minimum_nights": min_nights, "availability_365": availability,
        "number_of_reviews": n_reviews.astype(int),
        "last_review": np.where(no_reviews, None, last.strftime("%Y-%m-%d")),
        "review_scores_rating": score,
        "instant_bookable": np.where(rng.uniform(size=n) < 0.15, "t", "f"),
        "reviews_per_month": np.where(no_reviews, np.nan, np.round(n_reviews / np.maximum(
            years * 12, 1), 2)),
        TRUTH: truth,
    })
    # an additive block: the street, from its own random stream, so every column above keeps
    # its value for the same seed
    listings["street"] = streets(noise / float(w["noise_sd"]), w["streets"], int(w["seed"]))
    return listings


def streets(noise: np.ndarray, s: Mapping, seed: int) -> np.ndarray:
    """A many-level categorical: each listing's street. Street popularity falls as a power of
    its rank (`popularity`), so a few streets hold many listings and most hold one or two (and
    test listings meet streets training never saw). A street carries a premium: listings are
    laid along streets in the order of a score that correlates `signal` with their standardised
    price noise, so a street's listings share part of what any model without the street must
    call noise. Drawn from its own stream ([seed, 1]): the other columns do not move."""
    rng = np.random.default_rng([seed, 1])
    n, levels, rho = len(noise), int(s["levels"]), float(s["signal"])
    weights = np.arange(1, levels + 1, dtype=float) ** -float(s["popularity"])
    sizes = rng.multinomial(n, weights / weights.sum())
    sizes = sizes[rng.permutation(levels)]  # streets in a random order: a name is not a rank
    score = rho * noise + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    street = np.empty(n, dtype=np.int64)
    street[np.argsort(score, kind="stable")] = np.repeat(np.arange(levels), sizes)
    names = rng.permutation(levels)  # names drawn apart from the order along the score
    return np.array([f"Street {k:04d}" for k in names])[street]
