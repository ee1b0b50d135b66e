"""Airbnb: every price, percentage, amenities and bathrooms format; schema detection; target
encoding without leakage; folds grouped by host."""

import json

import numpy as np
import pandas as pd
import pytest

from cases.airbnb import data as ad
from cases.airbnb.features import HOST, TEXT, Words, build
from cases.airbnb.tasks import (
    Encode,
    NeighbourPrice,
    build_model,
    make_tasks,
    reference_model,
)
from cases.config import compose
from cases.errors import CasebookError
from cases.lifecycle.selection import group_folds


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=airbnb"]).case


def test_prices_percentages_and_flags_parse_in_every_format():
    prices = pd.Series(["$85.00", "$1,234.00", " $10 ", "", None, "free"])
    out = ad.parse_price(prices)
    assert out.iloc[:3].tolist() == [85.0, 1234.0, 10.0] and out.iloc[3:].isna().all()
    assert ad.parse_price(pd.Series([149, 0])).tolist() == [149.0, 0.0]  # NYC summary: numbers
    assert ad.parse_percent(pd.Series(["96%", "100%", "N/A", None])).iloc[:2].tolist() == [96.0,
                                                                                           100.0]
    assert ad.parse_percent(pd.Series(["N/A"])).isna().all()
    assert ad.parse_flag(pd.Series(["t", "f", None])).iloc[:2].tolist() == [1.0, 0.0]


def test_amenities_parse_in_both_formats():
    old = '{TV,"Cable TV",Internet,"Wireless Internet","Family/Kid Friendly",Washer}'
    assert ad.parse_amenities(old) == ["TV", "Cable TV", "Internet", "Wireless Internet",
                                       "Family/Kid Friendly", "Washer"]
    new = '["Wifi", "Kitchen", "Hot water", "Dedicated workspace", "Sony 55\\" HDTV"]'
    assert ad.parse_amenities(new) == ["Wifi", "Kitchen", "Hot water", "Dedicated workspace",
                                       'Sony 55" HDTV']
    assert ad.parse_amenities("{}") == [] and ad.parse_amenities(None) == []
    assert ad.parse_amenities('{"translation missing: en.hosting_amenity_49",TV}') == ["TV"]


def test_bathrooms_text_becomes_a_number_and_a_shared_flag():
    n, shared = ad.parse_bathrooms_text(pd.Series(["1 bath", "1.5 shared baths", "Half-bath",
                                                   "Shared half-bath", "2 baths", None]))
    assert n.iloc[:5].tolist() == [1.0, 1.5, 0.5, 0.5, 2.0] and np.isnan(n.iloc[5])
    assert shared.iloc[:5].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]


def today_file() -> pd.DataFrame:
    """A few rows in today's 75-column detailed schema (the columns the parser reads)."""
    return pd.DataFrame({
        "id": [1, 2, 3], "host_id": [10, 10, 11], "last_scraped": "2024-06-30",
        "host_since": ["2015-06-30", "2015-06-30", "2023-06-30"],
        "host_response_rate": ["100%", "100%", "N/A"], "host_is_superhost": ["t", "t", "f"],
        "calculated_host_listings_count": [2, 2, 1],
        "neighbourhood_cleansed": ["Ballard", "Ballard", "Fremont"],
        "neighbourhood_group_cleansed": ["Other", "Other", "Other"],
        "latitude": [47.66, 47.67, 47.65], "longitude": [-122.38, -122.38, -122.35],
        "property_type": ["Entire home", "Private room in home", "Entire condo"],
        "room_type": ["Entire home/apt", "Private room", "Entire home/apt"],
        "accommodates": [4, 2, 3], "bathrooms": [np.nan] * 3,
        "bathrooms_text": ["1.5 baths", "1 shared bath", "Half-bath"],
        "bedrooms": [2, 1, 1], "beds": [2, 1, 1],
        "amenities": ['["Wifi", "Kitchen"]', '["Wifi"]', "[]"],
        "price": ["$1,234.00", "$85.00", "$0.00"], "minimum_nights": [2, 30, 1],
        "availability_365": [100, 20, 300], "number_of_reviews": [10, 0, 3],
        "last_review": ["2024-06-01", None, "2024-01-01"],
        "review_scores_rating": [4.9, np.nan, 4.2], "instant_bookable": ["f", "t", "f"],
        "reviews_per_month": [0.5, np.nan, 0.1]})


def test_schema_detection_and_what_each_schema_cannot_supply():
    t, schema, missing = ad.canonical(today_file(), "today.csv")
    assert schema == "detailed" and missing == []
    assert t["bathrooms"].tolist() == [1.5, 1.0, 0.5] and t["bathrooms_shared"].tolist() == [
        0.0, 1.0, 0.0]
    assert t["review_score"].tolist()[0] == pytest.approx(98.0)  # of 5 -> of 100
    assert t["host_years"].iloc[0] == pytest.approx(9.0, abs=0.01)
    assert t["days_since_last_review"].iloc[0] == 29
    nyc = pd.DataFrame({c: [1] for c in ad.SUMMARY} | {"price": [149], "room_type": ["x"],
                                                       "last_review": ["2019-07-01"]})
    _, schema, missing = ad.canonical(nyc, "AB_NYC_2019.csv")
    assert schema == "summary" and {"accommodates", "amenities", "bedrooms"} <= set(missing)
    with pytest.raises(CasebookError, match="unrecognised listings schema.*found a, b"):
        ad.canonical(pd.DataFrame({"a": [1], "b": [2]}), "odd.csv")


def test_cleaning_counts_every_price_rule(cfg):
    t, _, _ = ad.canonical(today_file(), "today.csv")
    t = pd.concat([t, t.assign(price=[np.nan, 5.0, 5000.0])], ignore_index=True)
    kept, rules = ad.clean(t, cfg.data.clean)
    counts = dict(zip(rules["rule"], rules["removed"]))
    assert counts == {"price_unparsed": 1, "price_zero": 1, "price_too_low": 1,
                      "price_too_high": 1, "no_room_type": 0, "kept": 2}
    assert kept["price"].tolist() == [1234.0, 85.0]


def test_a_file_in_todays_schema_loads_and_builds_features(tmp_path, cfg):
    path = tmp_path / "listings.csv.gz"
    frame = pd.concat([today_file().assign(id=lambda d, k=k: d["id"] + 10 * k,
                                           host_id=lambda d, k=k: d["host_id"] + 10 * k)
                       for k in range(20)], ignore_index=True)
    frame.to_csv(path, index=False)
    ds = ad.load({**cfg.data, "source": "real", "path": str(path)}, tmp_path)
    assert "detailed schema" in ds.description and len(ds.tables["listings"]) == 40
    ft = build(ds.tables, cfg)
    assert {"amen_wifi", "amen_kitchen", "n_amenities", "bathrooms_shared"} <= set(
        ft.views["listing"])
    assert ft.frame["amen_wifi"].tolist()[:2] == [1.0, 1.0]
    # a host's listings are all on one side of the split
    hosts = pd.Series(ft.groups.to_numpy())
    assert hosts.groupby(ft.split.to_numpy()).apply(set).pipe(
        lambda s: not (s.get("train", set()) & s.get("test", set())))


def test_target_encoding_never_uses_a_rows_own_price():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"neighbourhood": rng.choice(list("abcdefgh"), 400), "x": 1.0})
    y = rng.normal(size=400)
    base = Encode("neighbourhood", "target").fit_transform(X, y)["neighbourhood_te"].to_numpy()
    y2 = y.copy()
    y2[7] = 1e6  # a wild price on one training row
    moved = Encode("neighbourhood", "target").fit_transform(X, y2)["neighbourhood_te"].to_numpy()
    assert moved[7] == base[7]  # its own encoding comes from the other folds
    assert not np.allclose(moved, base)  # (the other rows of its level do see it)
    # held-out rows are encoded by the fit on training rows only
    enc = Encode("neighbourhood", "target").fit(X.iloc[:300], y[:300])
    a = enc.transform(X.iloc[300:])
    enc2 = Encode("neighbourhood", "target").fit(X.iloc[:300], y[:300])
    pd.testing.assert_frame_equal(a, enc2.transform(X.iloc[300:]))


def test_tree_buckets_group_levels_by_their_mean_price():
    X = pd.DataFrame({"neighbourhood": list("aabbccdd") * 30})
    y = pd.Series(list("aabbccdd") * 30).map({"a": 1.0, "b": 1.1, "c": 5.0, "d": 5.2}).to_numpy()
    out = Encode("neighbourhood", "tree", buckets=2).fit_transform(X, y)["neighbourhood_bucket"]
    groups = out.groupby(X["neighbourhood"]).first()
    assert groups["a"] == groups["b"] != groups["c"] == groups["d"]


def test_folds_never_split_a_host():
    hosts = pd.Series(np.repeat(np.arange(50), 3))
    for tr, va in group_folds(hosts, 5, seed=0):
        assert not set(hosts.iloc[tr]) & set(hosts.iloc[va])


def test_every_model_encoding_pair_fits_and_unsupported_ones_are_refused(cfg):
    raw = ad.simulate({**cfg.data.world, "listings": 600})
    t, _, _ = ad.canonical(raw, "sim")
    t, _ = ad.clean(t, cfg.data.clean)
    t["amenities"] = t["amenities"].map(json.dumps)
    small = {**cfg, "train": {**cfg.train, "forest": {**cfg.train.forest, "n_estimators": 10},
                              "lgbm": {**cfg.train.lgbm, "n_estimators": 20}}}
    ft = build({"listings": t, "schema": pd.DataFrame({"schema": ["detailed"]})}, small)
    cols = ft.views["listing"]
    for cand in make_tasks(small, 0)[0].candidates("listing", cols):
        pred = cand.build().fit(ft.frame[cols], ft.frame["log_price"]).predict(ft.frame[cols])
        assert np.isfinite(pred).all(), cand.name
    bad = {**cfg, "train": {**cfg.train, "encodings": {**cfg.train.encodings,
                                                        "linear": ["native"]}}}
    with pytest.raises(CasebookError, match="unsupported linear-native"):
        make_tasks(bad, 0)
    with pytest.raises(CasebookError, match="unknown model"):
        build_model("svm", "onehot", cols, cfg, 0)


def test_counts_come_from_todays_listing_names():
    got = ad.parse_name_counts(pd.Series([
        "Condo in Seattle · ★4.89 · 2 bedrooms · 3 beds · 1.5 baths",
        "Guest suite · Studio · 1 bed · 1 shared bath", "Home · 1 bedroom · Half-bath",
        "Cozy place near the park", None]))
    assert got["bedrooms"].tolist()[:3] == [2.0, 0.0, 1.0] and got["bedrooms"][3:].isna().all()
    assert got["beds"].tolist()[:2] == [3.0, 1.0] and np.isnan(got["beds"][2])
    assert got["bathrooms"].tolist()[:3] == [1.5, 1.0, 0.5]


def test_prices_in_other_currencies_parse_and_are_named():
    prices = pd.Series(["€1,234.00", "£85.00", "85.50 DKK", None, "N/A"])
    assert ad.parse_price(prices).tolist()[:3] == [1234.0, 85.0, 85.5]
    assert ad.parse_price(prices)[3:].isna().all()
    assert ad.currency_symbols(pd.Series(["€10.00", "€12.00", "$3.00"])) == ["€", "$"]


def test_empty_and_constant_columns_are_named_with_the_reason():
    t = pd.DataFrame({"listing_id": ["1", "2"], "price": [10.0, 10.0], "bedrooms": [np.nan] * 2,
                      "beds": [1.0, 1.0], "baths": [1.0, np.nan], "amenities": [[], []],
                      "accommodates": [2.0, 3.0]})
    assert ad.unusable_columns(t) == {"bedrooms": "empty in every row",
                                      "beds": "the same value in every row (1.0)",
                                      "amenities": "empty in every row"}


def test_the_street_block_moves_no_other_column_and_has_many_rare_informative_levels(cfg):
    world = {**cfg.data.world, "listings": 4000}
    raw = ad.simulate(world)
    fewer = ad.simulate({**world, "streets": {**world["streets"], "levels": 50}})
    pd.testing.assert_frame_equal(raw.drop(columns="street"), fewer.drop(columns="street"))
    counts = raw["street"].value_counts()
    assert len(counts) > 1000 and (counts < 5).mean() > 0.5
    assert fewer["street"].nunique() <= 50
    # informative: listings of a street share part of the price the other columns miss
    price = np.log(ad.parse_price(raw["price"]))
    big = counts[counts >= 20].index
    means = price[raw["street"].isin(big)].groupby(raw["street"]).mean()
    no_signal = ad.simulate({**world, "streets": {**world["streets"], "signal": 0.0}})
    means0 = price.groupby(no_signal["street"]).mean()[
        no_signal["street"].value_counts().loc[lambda s: s >= 20].index]
    assert means.std() > 1.3 * means0.std()  # a street without signal: only sampling spread


def test_host_icc_recovers_a_known_intra_class_correlation():
    from cases.airbnb.analysis import host_icc

    rng = np.random.default_rng(0)
    hosts = np.repeat(np.arange(3000), 3)
    for sd_host, expected in ((0.0, 0.0), (1.0, 0.5)):
        resid = rng.normal(0, sd_host, 3000)[hosts] + rng.normal(0, 1, len(hosts))
        got = host_icc(resid, hosts, 200, 0)
        assert abs(got["icc"] - expected) < 0.05
        assert got["interval"][0] <= got["icc"] <= got["interval"][1]
        assert got["hosts"] == 3000
    # single-listing hosts carry no within-host information and are left out
    got = host_icc(rng.normal(size=9001), np.r_[hosts, [99999]], 50, 0)
    assert got["listings"] == 9000


def test_word_indicators_take_letters_only_never_a_number_from_the_fitted_rows_only():
    X = pd.DataFrame({TEXT: ["Cozy loft $85 a night", "Cozy studio 2 bedrooms", "Loft near 85th",
                             None], "beds": [1.0, 2.0, 1.0, 1.0]})
    words = Words(top=10, min_listings=2).fit(X)
    w = words.transform(X)
    assert {"word_cozy", "word_loft"} <= set(w.columns) and TEXT not in w and "beds" in w
    assert not any(any(ch.isdigit() for ch in c) for c in w.columns)  # no "85", no price
    assert w["word_cozy"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert w["text_length"].iloc[3] == 0.0
    # the vocabulary is the fitted rows' own: a word only scored rows use is never a column
    scored = pd.DataFrame({TEXT: ["Sunny sunny penthouse"] * 5, "beds": 1.0})
    assert not any(c.startswith("word_sunny") for c in words.transform(scored).columns)
    assert "word_sunny" in Words(top=10, min_listings=2).fit(scored).transform(X).columns


def test_neighbour_price_never_reads_a_listings_own_price():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"latitude": 47.6 + rng.normal(0, 0.02, n),
                      "longitude": -122.3 + rng.normal(0, 0.02, n),
                      "room_type": rng.choice(["Entire home/apt", "Private room"], n),
                      HOST: np.arange(n) // 2})
    # pure noise but a host's two listings share their price and sit side by side: only a
    # listing's own host's other listing could know it
    y = rng.normal(size=n // 2).repeat(2)
    X[["latitude", "longitude"]] = X[["latitude", "longitude"]].to_numpy()[::2].repeat(2, axis=0)
    enc = NeighbourPrice(k=2, seed=0)
    out = enc.fit_transform(X, y)
    assert HOST not in out
    inside = out["neighbour_log_price"].to_numpy()
    # a listing's own (or its host's) price in its feature would correlate with it; held out
    # by host it cannot, while folds by row let the twin in
    assert abs(np.corrcoef(inside, y)[0, 1]) < 0.15
    by_row = NeighbourPrice(k=2, seed=0).fit_transform(X.assign(**{HOST: np.arange(n)}), y)
    assert np.corrcoef(by_row["neighbour_log_price"], y)[0, 1] > 0.3
    # a new listing at a training listing's spot reads that listing's price among its k
    again = enc.transform(X)["neighbour_log_price"].to_numpy()
    assert np.corrcoef(again, y)[0, 1] > 0.2
    # a listing without coordinates gets a missing value, not an error
    hole = X.assign(latitude=np.where(np.arange(n) == 0, np.nan, X["latitude"]))
    assert np.isnan(enc.transform(hole)["neighbour_log_price"].iloc[0])
    with pytest.raises(CasebookError, match="latitude"):
        enc.transform(X.drop(columns="latitude"))


def test_the_plain_reference_sees_the_files_own_columns_only(cfg):
    X = pd.DataFrame({"room_type": ["Private room", "Entire home/apt"] * 30,
                      "accommodates": np.arange(60.0) % 6 + 1, "latitude": 47.6, "longitude":
                      -122.3 + np.arange(60) / 1000,
                      TEXT: np.where(np.arange(60) % 2, "cozy loft", "loft"),
                      HOST: np.arange(60) // 3})
    y = np.log(50 + 10 * X["accommodates"])
    plain = reference_model("plain", list(X.columns), cfg, 0).fit(X, y)
    booster = plain.named_steps["model"].named_steps["model"]
    assert list(booster.feature_name_) == ["room_type", "accommodates", "latitude", "longitude"]
    assert booster.get_params()["n_estimators"] == 100  # the library's default
    tuned = reference_model("tuned", list(X.columns), cfg, 0).fit(X, y)
    names = list(tuned.named_steps["model"].named_steps["model"].feature_name_)
    assert {"word_cozy", "neighbour_log_price", "neighbour_km"} <= set(names)
    with pytest.raises(CasebookError, match="references"):
        reference_model("fancy", list(X.columns), cfg, 0)
