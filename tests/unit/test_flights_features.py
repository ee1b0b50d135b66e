import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.flights import data as fdata
from cases.flights.features import build, targets
from cases.flights.history import scheduled_departure, window_sums
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
        assert row["origin_not_departed"] == planned.sum() - here.sum()
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
