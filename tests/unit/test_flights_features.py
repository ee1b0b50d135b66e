import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.flights import data as fdata
from cases.flights.features import build, targets
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


def test_features_ignore_what_happens_after_departure(tables, cfg):
    """The leakage guard, behaviourally: scrambling departure/arrival facts changes no feature."""
    before = build(tables, cfg)
    scrambled = dict(tables)
    f = tables["flights"].copy()
    rng = np.random.default_rng(1)
    for col in ("dep_time", "dep_delay", "arr_time", "air_time"):
        f[col] = rng.permutation(f[col].to_numpy())
    scrambled["flights"] = f
    after = build(scrambled, cfg)
    for cols in before.views.values():
        pd.testing.assert_frame_equal(before.frame[cols], after.frame[cols])


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
