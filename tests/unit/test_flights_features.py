import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.flights import data as fdata
from cases.flights.features import build, targets
from cases.flights.history import observed_delays, scheduled_departure, window_pending, window_sums
from cases.flights.weather import WEATHER_COLS
from cases.lifecycle.features import check_views
from cases.lifecycle.ingest import validate
from tests.conftest import make_flights


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=flights"]).case


@pytest.fixture(scope="module")
def tables():
    flights, weather, planes = make_flights()
    return {"flights": validate(flights, fdata.FLIGHTS, "t"),
            "weather": validate(weather, fdata.WEATHER, "w"),
            "planes": validate(planes, fdata.PLANES, "p")}


def test_targets_buckets_and_cancelled():
    cfg = {"delayed_min": 15, "bucket_edges": [15, 60, 120, 600]}
    t = targets(pd.Series([-10, 14.9, 15, 59, 60, 119, 120, 599, 600, 750, np.nan]), cfg)
    assert t["bucket"].tolist()[:10] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert t["delayed"].tolist()[:10] == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert t.iloc[10].isna().all()  # a cancelled flight has no target at all


def test_split_is_time_ordered(tables, cfg):
    cfg = compose(["case=flights", "case.features.test_months=[5]"]).case
    ft = build(tables, cfg)
    months = ft.frame["month"]
    assert set(months[ft.split == "train"]) == {1, 2, 3, 4}
    assert set(months[ft.split == "test"]) == {5}
    assert ft.split_info["test"]["months"] == [5]


def test_weather_is_taken_lag_hours_before_departure(tables, cfg):
    ft = build(tables, cfg)
    f = tables["flights"]
    w = tables["weather"].set_index(["origin", "time_hour"])
    for i in (0, 5, 17):
        expected = w.loc[(f.loc[i, "origin"], f.loc[i, "time_hour"] - pd.Timedelta(hours=2)),
                         "temp"]
        assert ft.frame.loc[i, "wx_temp"] == expected


def _asof(f: pd.DataFrame, cfg) -> tuple[pd.Series, pd.Series]:
    """Each flight's prediction time and actual departure (missing: cancelled)."""
    sched = scheduled_departure(f)
    return (sched - pd.Timedelta(hours=float(cfg.features.lead_hours)),
            sched + pd.to_timedelta(f["dep_delay"], unit="min"))


@pytest.fixture(scope="module")
def wide():
    """A history window wide enough for the small table's sparse schedule (an origin's flights
    are hours apart)."""
    return compose(["case=flights", "case.features.history_window_min=600"]).case


def test_features_see_nothing_after_the_prediction_time(tables, wide):
    """The as-of guard, behaviourally: for a flight, every flight that had not left by its
    prediction time (T - lead_hours) is delayed further or cancelled, the weather after T is
    scrambled, and every arrival (time, delay, air time) too: none of the flight's features
    changes. The departures seen by T are what the history features read."""
    cfg = wide
    before = build(tables, cfg)
    f, w = tables["flights"], tables["weather"]
    asof, departed = _asof(f, cfg)
    rng = np.random.default_rng(7)
    cols = before.views["pre_departure"]
    rows = [i for i in range(0, len(f), 37) if before.frame.loc[i, "origin_departed"] > 0]
    assert len(rows) >= 5
    for i in rows:
        later = ~(departed <= asof[i]).to_numpy()  # not departed by T (cancelled included)
        assert later[i]  # the flight itself always
        g = f.copy()
        g.loc[later, "dep_delay"] += rng.integers(1, 300, later.sum())
        cancel = later & (rng.random(len(g)) < 0.3)
        g.loc[cancel, ["dep_time", "dep_delay"]] = np.nan
        for col in ("arr_time", "arr_delay", "air_time"):
            g[col] = rng.permutation(g[col].to_numpy())
        v = w.copy()
        after_t = (v["time_hour"] > asof[i]).to_numpy()
        v.loc[after_t, WEATHER_COLS] = rng.normal(0, 100, (after_t.sum(), len(WEATHER_COLS)))
        after = build({**tables, "flights": g, "weather": v}, cfg)
        pd.testing.assert_series_equal(before.frame.loc[i, cols], after.frame.loc[i, cols])
    # and the test can fail: one departure seen by T, a minute earlier, moves the origin's mean
    i = rows[-1]
    seen = np.flatnonzero(((departed <= asof[i]) & (f["origin"] == f.loc[i, "origin"])
                           & (departed > asof[i] - pd.Timedelta(minutes=590))).to_numpy())
    g = f.copy()
    g.loc[seen[0], "dep_delay"] -= 1
    after = build({**tables, "flights": g}, cfg)
    assert after.frame.loc[i, "origin_dep_delay"] != before.frame.loc[i, "origin_dep_delay"]


def test_history_counts_and_means_match_a_row_by_row_reading(tables, wide):
    """The vectorised as-of windows against the definition, flight by flight."""
    cfg = wide
    ft = build(tables, cfg)
    f = tables["flights"]
    asof, departed = _asof(f, cfg)
    sched = scheduled_departure(f)
    window = pd.Timedelta(minutes=float(cfg.features.history_window_min))
    for i in range(0, len(f), 23):
        in_window = (departed <= asof[i]) & (departed > asof[i] - window)
        here = in_window & (f["origin"] == f.loc[i, "origin"])
        row = ft.frame.loc[i]
        assert row["origin_departed"] == here.sum()
        planned = (sched <= asof[i]) & (sched > asof[i] - window) & (f["origin"] == f.loc[i, "origin"])
        # scheduled in the window and not gone by T (later, or cancelled: no departure at all)
        assert row["origin_not_departed"] == (planned & ~(departed <= asof[i])).sum()
        if here.any():
            assert row["origin_dep_delay"] == pytest.approx(f.loc[here, "dep_delay"].mean())
        else:
            assert np.isnan(row["origin_dep_delay"])
        own = here & (f["carrier"] == f.loc[i, "carrier"])
        assert row["carrier_origin_departed"] == own.sum()
        tail = f.loc[i, "tailnum"]
        prior = (f["tailnum"] == tail) & (departed <= asof[i]) if isinstance(tail, str) else None
        if prior is not None and prior.any():
            last = departed[prior].idxmax()
            assert row["tail_last_dep_delay"] == f.loc[last, "dep_delay"]
            assert row["tail_last_dep_minutes_ago"] == (
                (asof[i] - departed[last]).total_seconds() / 60)
        else:
            assert np.isnan(row["tail_last_dep_delay"])


def test_window_sums_match_brute_force():
    rng = np.random.default_rng(3)
    ek, et = rng.choice(["a", "b", "c"], 400).astype(object), rng.integers(0, 2000, 400).astype(float)
    et[rng.random(400) < 0.1] = np.nan
    ev = rng.normal(size=400)
    qk, qt = rng.choice(["a", "b", "d"], 150).astype(object), rng.integers(0, 2000, 150).astype(float)
    n, total = window_sums(ek, et, ev, qk, qt, 90)
    for j in range(150):
        hit = (ek == qk[j]) & (et <= qt[j]) & (et > qt[j] - 90)
        assert n[j] == hit.sum() and total[j] == pytest.approx(ev[hit].sum())


def test_window_pending_matches_brute_force():
    rng = np.random.default_rng(4)
    ek = rng.choice(["a", "b", "c"], 500).astype(object)
    sched = rng.integers(0, 3000, 500).astype(float)
    done = sched + rng.integers(-20, 240, 500)
    done[rng.random(500) < 0.1] = np.nan
    qk, qt = rng.choice(["a", "b", "d"], 200).astype(object), rng.integers(0, 3000, 200).astype(float)
    # small chunks: the chunked reading gives the same counts as one pass
    for max_pairs in (7, 4_000_000):
        got = window_pending(ek, sched, done, qk, qt, 120, max_pairs=max_pairs)
        for j in range(200):
            planned = (ek == qk[j]) & (sched <= qt[j]) & (sched > qt[j] - 120)
            assert got[j] == (planned & ~(done <= qt[j])).sum()


def test_origin_not_departed_on_a_hand_made_morning():
    """Five flights out of EWR (and one out of JFK), read 2 h before the 10:00 flight, at 08:00
    UTC, over a 180-minute window (05:00, 08:00]. Scheduled in it: 06:00 (left 06:10: gone),
    07:00 (left 08:30: still on the ground at 08:00), 07:30 (cancelled: never left), 07:45 (left
    07:40, early: gone). The 04:00 flight is outside the window even though it left at 05:30 and
    the 09:00 flight left at 07:55, before 08:00, but was not scheduled in the window. So the
    10:00 flight sees 2 flights not departed; the old 'scheduled minus departed in the window'
    gave 4 - 4 = 0."""
    day = pd.Timestamp("2013-01-01", tz="UTC")
    hours = [4, 6, 7, 7, 7, 9, 10, 7]
    minutes = [0, 0, 0, 30, 45, 0, 0, 0]
    delays = [90, 10, 90, np.nan, -5, -65, 0, 0]
    flights = pd.DataFrame({
        "time_hour": [day + pd.Timedelta(hours=h) for h in hours], "minute": minutes,
        "dep_delay": delays, "origin": ["EWR"] * 7 + ["JFK"], "carrier": "UA",
        "tailnum": [f"N{i}" for i in range(8)]})
    out = observed_delays(flights, lead_hours=2, window_min=180)
    assert out.loc[6, "origin_not_departed"] == 2
    assert out.loc[6, "origin_departed"] == 4      # 05:30, 06:10, 07:40, 07:55
    # at 05:00 (the 07:00 flights): 04:00 is scheduled in (02:00, 05:00] and left at 05:30
    assert out.loc[2, "origin_not_departed"] == 1
    assert out.loc[7, "origin_not_departed"] == 0  # JFK: none of EWR's flights count
    assert (out["origin_not_departed"] >= 0).all()


def test_configured_views_never_use_forbidden_columns(cfg):
    forbidden = set(cfg.features.forbidden)
    assert {"dep_delay", "dep_time", "arr_delay"} <= forbidden
    for view, cols in cfg.features.views.items():
        assert not forbidden & set(cols), view


def test_guard_refuses_departure_delay_as_a_feature(tables, cfg):
    ft = build(tables, cfg)
    frame = ft.frame.assign(dep_delay=tables["flights"]["dep_delay"])
    views = {**ft.views, "pre_departure": [*ft.views["pre_departure"], "dep_delay"]}
    with pytest.raises(CasebookError, match="pre_departure.*dep_delay"):
        check_views(frame, views, ft.targets, cfg.features.forbidden)
    with pytest.raises(CasebookError, match="arr_delay"):
        check_views(ft.frame, {"v": ["carrier", "arr_delay"]}, ft.targets, [])


def test_plane_and_holiday_features(tables, cfg):
    ft = build(tables, cfg)
    f = tables["flights"]
    n1 = (f["tailnum"] == "N1").to_numpy()
    assert (ft.frame.loc[n1, "plane_age"] == 13).all()
    assert ft.frame.loc[f["tailnum"].isna().to_numpy(), "plane_age"].isna().all()
    jan1 = ((f["month"] == 1) & (f["day"] == 1)).to_numpy()
    assert (ft.frame.loc[jan1, "holiday_days"] == 0).all()
