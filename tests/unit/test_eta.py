"""ETA: cleaning rules, features on known points, the time split, both real schemas on small
generated files, zone-pair statistics."""

import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.eta import data as ed
from cases.eta.analysis import plateau
from cases.eta.features import (
    METER,
    build,
    classical_mds,
    fit_zone_geometry,
    grid_features,
    split_by_weeks,
    time_features,
)
from cases.eta.tasks import (
    PairStats,
    SpeedBaseline,
    ZoneGeometry,
    duration_metrics,
    lgbm_settings,
    make_tasks,
)
from cases.lifecycle.models import PLAIN


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=eta"]).case


def kaggle_rows():
    """One clean trip and one trip breaking each rule, in the Kaggle schema (New York)."""
    base = dict(vendor_id=2, passenger_count=1, pickup_longitude=-73.98, pickup_latitude=40.74,
                dropoff_longitude=-73.96, dropoff_latitude=40.76, store_and_fwd_flag="N")
    t0 = pd.Timestamp("2016-03-01 08:00:00")

    def trip(i, seconds, clock_shift=0, **kw):
        return {"id": f"id{i}", **base, **kw, "pickup_datetime": str(t0 + pd.Timedelta(days=i)),
                "dropoff_datetime": str(t0 + pd.Timedelta(days=i, seconds=seconds + clock_shift)),
                "trip_duration": seconds}

    return pd.DataFrame([
        trip(0, 600),                                   # clean
        trip(1, 600, clock_shift=-3600),                # clock error
        trip(2, 30),                                    # too short
        trip(3, 20 * 3600),                             # meter left running
        trip(4, 600, dropoff_longitude=-79.5),          # outside the city
        trip(5, 600, dropoff_longitude=-73.98, dropoff_latitude=40.74),  # zero distance
        trip(6, 61, dropoff_longitude=-73.70, dropoff_latitude=40.95),   # 30 km in a minute
        trip(7, 900),                                   # clean
    ])


def test_each_cleaning_rule_counts_its_trip(cfg):
    trips = kaggle_rows()
    for c in ("pickup_datetime", "dropoff_datetime"):
        trips[c] = pd.to_datetime(trips[c])
    clean, rules = ed.apply_cleaning(trips, "coords", cfg.data.clean, cfg.data.real_bbox)
    counts = dict(zip(rules["rule"], rules["removed"]))
    assert counts == {"clock_error": 1, "too_short": 1, "too_long": 1, "outside_city": 1,
                      "zero_distance": 1, "impossible_speed": 1, "kept": 2}
    assert clean["id"].tolist() == ["id0", "id7"]


def test_distances_and_bearing_on_known_points():
    # one degree of latitude is 111.19 km on the mean earth radius
    assert ed.haversine_km(0, 0, 1, 0) == pytest.approx(111.195, abs=0.01)
    # JFK to LaGuardia, about 17.1 km in a straight line
    assert ed.haversine_km(40.6413, -73.7781, 40.7769, -73.8740) == pytest.approx(17.1, abs=0.2)
    # a grid trip: 1 km north and 1 km east is 2 km by the streets, sqrt(2) as the crow flies
    dlat, dlon = 1 / 111.195, 1 / (111.195 * np.cos(np.radians(47.6)))
    assert ed.manhattan_km(47.6, -122.3, 47.6 + dlat, -122.3 + dlon) == pytest.approx(2.0, abs=0.01)
    assert ed.bearing_deg(47.6, -122.3, 47.7, -122.3) == pytest.approx(0.0, abs=1e-6)
    assert ed.bearing_deg(0, 0, 0, 1) == pytest.approx(90.0)
    assert ed.bearing_deg(0, 0, -1, 0) == pytest.approx(180.0)


def test_time_features_flag_holidays_and_weekdays():
    f = time_features(pd.Series(pd.to_datetime(["2016-01-18 08:30", "2016-01-19 17:05",
                                                "2016-07-04 00:00"])))
    assert f["holiday"].tolist() == [1.0, 0.0, 1.0]  # MLK day, a Tuesday, Independence Day
    assert f["weekday"].tolist() == [0.0, 1.0, 0.0]
    assert f["minute_of_day"].tolist() == [510.0, 1025.0, 0.0]
    assert f["hour_of_week"].tolist() == [8.0, 24 + 17.0, 0.0]


def test_grid_features_measure_along_the_turned_street_grid():
    # 1 km along Manhattan's avenues (29 degrees east of north): 1 km by the grid, not 1.36 as
    # by the meridians; with no turn the grid distance is the north-south plus east-west legs
    lat0, lon0, a = 40.75, -73.98, np.radians(29.0)
    dlat = np.cos(a) / 111.2
    dlon = np.sin(a) / (111.2 * np.cos(np.radians(lat0)))
    t = pd.DataFrame({"pickup_latitude": [lat0], "pickup_longitude": [lon0],
                      "dropoff_latitude": [lat0 + dlat], "dropoff_longitude": [lon0 + dlon]})
    g = grid_features(t, 29.0, (lat0, lon0))
    assert g["grid_km"].iloc[0] == pytest.approx(1.0, abs=0.01)
    assert g["dropoff_y"].iloc[0] - g["pickup_y"].iloc[0] == pytest.approx(1.0, abs=0.01)
    assert g["pickup_x"].iloc[0] == g["pickup_y"].iloc[0] == 0.0  # the origin
    assert grid_features(t, 0.0, (40.7, -74.0))["grid_km"].iloc[0] == pytest.approx(
        ed.manhattan_km(lat0, lon0, lat0 + dlat, lon0 + dlon)[()], abs=0.01)


def test_plain_reference_sees_only_the_raw_places_and_times(cfg):
    cols = ["gc_km", "grid_km", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
            "dropoff_longitude", "pickup_cluster", "dropoff_cluster", "hour", "weekday",
            "hour_of_week", "minute_of_day", "vendor_id"]
    cands = {c.name: c for c in make_tasks(cfg, 0)[0].candidates("trip", cols)}
    assert list(cands) == ["linear", PLAIN, "lgbm"]
    model = cands[PLAIN].build()
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(1, 2, (300, len(cols))), columns=cols).assign(
        pickup_cluster="a", dropoff_cluster="b")
    y = np.exp(rng.normal(6, 0.5, 300))
    inner = model.fit(X, y).regressor_.named_steps["model"].named_steps["model"]
    assert inner.feature_name_ == ["pickup_latitude", "pickup_longitude", "dropoff_latitude",
                                   "dropoff_longitude", "hour", "weekday", "minute_of_day"]
    assert inner.n_estimators == 100 and inner.num_leaves == 31  # the library's defaults


def test_lgbm_settings_follow_the_data_source():
    """The simulator fits the light settings; the real files get `lgbm_real`'s keys (the
    settings checked on their CV folds) over the rest of `lgbm`, in the candidate itself."""
    cols = ["gc_km", "pickup_cluster", "dropoff_cluster", "hour", "weekday"]

    def fitted_lgbm(source):
        case = compose(["case=eta", f"case.data.source={source}"]).case
        lgbm = {c.name: c for c in make_tasks(case, 0)[0].candidates("trip", cols)}["lgbm"]
        return case, lgbm.build().regressor.named_steps["model"].named_steps["model"]

    sim_cfg, sim = fitted_lgbm("simulator")
    real_cfg, real = fitted_lgbm("real")
    assert lgbm_settings(sim_cfg) == dict(sim_cfg.train.lgbm)
    assert (sim.n_estimators, sim.num_leaves) == (sim_cfg.train.lgbm.n_estimators,
                                                  sim_cfg.train.lgbm.num_leaves)
    assert (real.n_estimators, real.num_leaves, real.learning_rate) == (
        real_cfg.train.lgbm_real.n_estimators, real_cfg.train.lgbm_real.num_leaves,
        real_cfg.train.lgbm_real.learning_rate)
    assert real.n_estimators > sim.n_estimators  # the real files keep the heavier settings
    assert real.colsample_bytree == sim.colsample_bytree == sim_cfg.train.lgbm.colsample_bytree


def test_time_split_has_no_overlap(cfg):
    when = pd.Series(pd.date_range("2016-01-04", periods=26 * 7 * 24, freq="h"))
    is_test, week, how = split_by_weeks(when, cfg.features)
    assert when[is_test].min() > when[~is_test].max()
    assert not set(week[is_test]) & set(week[~is_test])
    assert len(set(week[is_test])) == 4 and "last 4 weeks" in how
    short = pd.Series(pd.date_range("2016-01-04", periods=5 * 7 * 24, freq="h"))
    is_test, week, how = split_by_weeks(short, cfg.features)
    assert short[is_test].min() > short[~is_test].max() and 0 < is_test.mean() < 0.4
    with pytest.raises(CasebookError, match="too few to split by time"):
        split_by_weeks(pd.Series(pd.date_range("2016-01-04", periods=24, freq="h")), cfg.features)


def test_kaggle_schema_file_loads_cleans_and_builds_features(tmp_path, cfg):
    path = tmp_path / "train.csv"
    rows = kaggle_rows()
    many = pd.concat([rows.assign(id=rows["id"] + f"_{k}", pickup_datetime=pd.to_datetime(
        rows["pickup_datetime"]) + pd.Timedelta(weeks=k), dropoff_datetime=pd.to_datetime(
        rows["dropoff_datetime"]) + pd.Timedelta(weeks=k)) for k in range(12)])
    many.to_csv(path, index=False)
    data = {**cfg.data, "source": "real", "path": str(path)}
    ds = ed.load(data, tmp_path)
    assert ds.tables["trips"]["schema"].iloc[0] == "coords" and len(ds.tables["trips"]) == 24
    assert "Kaggle" in ds.description
    ft = build(ds.tables, {**cfg, "features": {**cfg.features, "clusters": 2}})
    assert {"gc_km", "manhattan_km", "bearing", "pickup_cluster"} <= set(ft.views["trip"])
    assert "pu_zone" in ft.split_info["unavailable_features"]


def write_tlc(folder, n=300, seed=0):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2021-01-01")
    pick = start + pd.to_timedelta(np.sort(rng.uniform(0, 70 * 86400, n)), unit="s")
    dur = rng.uniform(200, 2000, n)
    frame = pd.DataFrame({
        "VendorID": rng.integers(1, 3, n), "lpep_pickup_datetime": pick,
        "lpep_dropoff_datetime": pick + pd.to_timedelta(dur, unit="s"),
        "store_and_fwd_flag": "N", "RatecodeID": 1.0,
        "PULocationID": rng.choice([7, 74, 75, 264], n, p=[0.4, 0.3, 0.29, 0.01]),
        "DOLocationID": rng.choice([7, 74, 75, 166], n),
        "passenger_count": 1.0, "trip_distance": rng.uniform(0, 5, n).round(2),
        "fare_amount": 10.0})
    frame.loc[:4, "trip_distance"] = 0.0
    frame.to_parquet(folder / "green_tripdata_2021-01.parquet", index=False)
    pd.DataFrame({"LocationID": [7, 74, 75, 166, 264],
                  "Borough": ["Queens", "Manhattan", "Manhattan", "Manhattan", "Unknown"],
                  "Zone": ["Astoria", "East Harlem North", "East Harlem South",
                           "Morningside Heights", "NV"],
                  "service_zone": "Boro Zone"}).to_csv(folder / "taxi_zone_lookup.csv",
                                                      index=False)
    return frame


def test_tlc_schema_folder_loads_with_zones_and_features_fit_it(tmp_path, cfg):
    raw = write_tlc(tmp_path)
    ds = ed.load({**cfg.data, "source": "real", "path": str(tmp_path)}, tmp_path)
    trips, rules = ds.tables["trips"], ds.tables["cleaning"]
    counts = dict(zip(rules["rule"], rules["removed"]))
    assert counts["outside_city"] == int(((raw["PULocationID"] == 264)).sum())
    assert counts["zero_distance"] >= 1
    assert trips["schema"].iloc[0] == "zones" and "TLC" in ds.description
    assert set(trips["borough"]) <= {"Queens", "Manhattan"}
    ft = build(ds.tables, cfg)
    assert {"pu_zone", "do_zone", "pu_borough", "hour"} <= set(ft.views["trip"])
    assert "trip_distance_km" not in ft.views["trip"]  # known only after the trip
    assert "gc_km" in ft.split_info["unavailable_features"]
    allowed = {**cfg, "features": {**cfg.features, "use_meter_distance": True}}
    assert "trip_distance_km" in build(ds.tables, allowed).views["trip"]
    # the meter is there only for the models to fit the zones' geometry on their training rows
    assert METER in ft.views["trip"]
    off = {**cfg, "features": {**cfg.features, "zone_geometry": {
        **cfg.features.zone_geometry, "enabled": False}}}
    assert METER not in build(ds.tables, off).views["trip"]


def _zone_trips(seed=0, n=4000):
    """Trips between six zones at known places (km) on a plane; each trip's meter reads the
    straight line times a detour between 1.1 and 1.5; zone 6 is seen in too few trips to place."""
    rng = np.random.default_rng(seed)
    place = {"1": (0, 0), "2": (4, 0), "3": (0, 3), "4": (4, 3), "5": (8, 6), "6": (20, 20)}
    zones = np.array(list(place)[:5])
    pu, do = rng.choice(zones, n), rng.choice(zones, n)
    pu[:2], do[:2] = "6", "1"
    line = np.array([np.hypot(*np.subtract(place[a], place[b])) for a, b in zip(pu, do)])
    meter = np.where(pu == do, 0.8, line * rng.uniform(1.1, 1.5, n))
    borough = {"1": "A", "2": "A", "3": "A", "4": "B", "5": "B", "6": "B"}
    return pd.DataFrame({"pu_zone": pu, "do_zone": do, "pu_borough": [borough[z] for z in pu],
                         "do_borough": [borough[z] for z in do], METER: meter}), place


def test_classical_mds_recovers_the_distances_of_points_on_a_plane():
    pts = np.array([[0, 0], [4, 0], [0, 3], [4, 3], [8, 6.0]])
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    xy = classical_mds(d, 2)
    np.testing.assert_allclose(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)), d, atol=1e-9)


def test_zone_geometry_places_zones_from_past_meters_only():
    trips, place = _zone_trips()
    geo = fit_zone_geometry(trips["pu_zone"], trips["do_zone"], trips[METER], trips["pu_borough"],
                            trips["do_borough"], min_trips=5)
    # a pair's median is over both directions; zone 6 (two trips) is left unplaced
    both = trips[((trips.pu_zone == "1") & (trips.do_zone == "4"))
                 | ((trips.pu_zone == "4") & (trips.do_zone == "1"))]
    at = geo["pairs"].index("1|4")
    assert geo["pair_km"][at] == pytest.approx(both[METER].median())
    assert geo["pair_trips"][at] == len(both)
    assert set(geo["coords"]) == {"1", "2", "3", "4", "5"}
    # the places come back up to a rotation and the meters' detour (about 1.3)
    xy = {z: np.array(c) for z, c in geo["coords"].items()}
    for a, b in [("1", "2"), ("1", "4"), ("3", "5"), ("2", "3")]:
        true = np.hypot(*np.subtract(place[a], place[b]))
        assert np.linalg.norm(xy[a] - xy[b]) / true == pytest.approx(1.3, abs=0.08)


def test_zone_geometry_never_reads_the_predicted_trips_meter():
    trips, _ = _zone_trips()
    fit, new = trips.iloc[:3000], trips.iloc[3000:].reset_index(drop=True)
    g = ZoneGeometry(smoothing=0.0).fit(fit)
    out = g.transform(new)
    assert METER not in out and set(g.columns()) <= set(out.columns)
    blind = g.transform(new.assign(**{METER: np.nan}))
    pd.testing.assert_frame_equal(out, blind)
    pd.testing.assert_frame_equal(out, g.transform(new.drop(columns=[METER])))
    # fitted on its rows only: other training rows change the pair's median
    pair = {"2", "5"}
    seen = fit[fit.pu_zone.isin(pair) & fit.do_zone.isin(pair) & (fit.pu_zone != fit.do_zone)].index
    moved = ZoneGeometry(smoothing=0.0).fit(fit.assign(**{METER: fit[METER].where(
        ~fit.index.isin(seen), 99.0)}))
    row = (new.pu_zone == "2") & (new.do_zone == "5")
    assert (moved.transform(new).loc[row, "pair_km"] == 99.0).all()
    assert (out.loc[row, "pair_km"] < 20).all()
    # a pair never seen, with a zone never placed, falls back on the borough pair's median
    unseen = g.transform(pd.DataFrame({"pu_zone": ["1"], "do_zone": ["9"], "pu_borough": ["A"],
                                       "do_borough": ["B"]}))
    b_km = fit.loc[(fit.pu_borough != fit.do_borough), METER].median()
    assert unseen.loc[0, "pair_km"] == pytest.approx(b_km) and unseen.loc[0, "pair_km_trips"] == 0
    # zone 6 (too few trips) has no place and no line; placed zones have both
    assert out.loc[new.pu_zone != "6", "zone_line_km"].notna().all()
    six = g.transform(pd.DataFrame({"pu_zone": ["6"], "do_zone": ["1"], "pu_borough": ["B"],
                                    "do_borough": ["A"]}))
    assert np.isnan(six.loc[0, "zone_line_km"]) and np.isnan(six.loc[0, "pu_zone_x0"])


def test_unknown_schema_and_missing_zone_lookup_are_named(tmp_path, cfg):
    (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CasebookError, match="unrecognised trip schema.*found a, b"):
        ed.load({**cfg.data, "source": "real", "path": str(tmp_path / "odd.csv")}, tmp_path)
    write_tlc(tmp_path)
    (tmp_path / "taxi_zone_lookup.csv").unlink()
    with pytest.raises(CasebookError, match="taxi zone lookup.*case.data.zones_path"):
        ed.load({**cfg.data, "source": "real", "path": str(tmp_path / "*.parquet")}, tmp_path)
    with pytest.raises(CasebookError, match="no trip files found"):
        ed.load({**cfg.data, "source": "real", "path": str(tmp_path / "none*.parquet")}, tmp_path)


def test_pair_stats_shrink_rare_pairs_and_never_see_other_rows():
    X = pd.DataFrame({"a": ["1"] * 10 + ["2"] * 2, "b": ["x"] * 10 + ["y"] * 2})
    y = np.array([100.0] * 10 + [400.0] * 2)
    ps = PairStats("a", "b", smoothing=2).fit(X, y)
    out = ps.transform(pd.DataFrame({"a": ["1", "2", "9"], "b": ["x", "y", "x"]}))
    assert out["pair_median"].tolist() == [(10 * 100 + 2 * 100) / 12, 400.0, 100.0]
    assert out["pair_trips"].tolist() == [10.0, 2.0, 0.0]


def test_speed_baseline_is_distance_over_the_hours_median_speed():
    X = pd.DataFrame({"gc_km": [1.0, 2.0, 3.0, 1.0], "hour": [8.0, 8.0, 8.0, 3.0]})
    y = np.array([360.0, 720.0, 1080.0, 120.0])  # 10 km/h at 8, 30 km/h at 3
    pred = SpeedBaseline().fit(X, y).predict(pd.DataFrame({"gc_km": [5.0, 5.0],
                                                            "hour": [8.0, 3.0]}))
    np.testing.assert_allclose(pred, [1800.0, 600.0])


def test_duration_metrics_and_plateau_on_hand_numbers():
    m = duration_metrics(np.array([100.0, 200.0]), np.array([110.0, 100.0]), None, None)
    assert m["ape_p50"] == pytest.approx(30.0) and m["ape_p90"] == pytest.approx(46.0)
    assert m["rmsle"] == pytest.approx(np.sqrt((np.log(111 / 101) ** 2
                                                + np.log(101 / 201) ** 2) / 2))
    curve = pd.DataFrame({"model": "m", "trips": [1000, 2000, 4000, 8000],
                          "val_rmsle": [0.50, 0.40, 0.398, 0.397]})
    p = plateau(curve, "m", 1.0)
    assert p["stops_paying_at"] == 2000
    curve.loc[3, "val_rmsle"] = 0.30
    assert plateau(curve, "m", 1.0)["stops_paying_at"] is None
