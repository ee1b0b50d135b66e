"""ETA on Dask, the parts that need no cluster: the partitioned world's chunks, the exact pair
medians from counts, and a bad scheduler address failing fast."""

import time

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from cases.config import compose
from cases.errors import CasebookError
from cases.eta import data as ed
from cases.eta import distributed as dist
from cases.eta.tasks import PairStats


@pytest.fixture(scope="module")
def case():
    return OmegaConf.to_container(compose(["case=eta"]).case, resolve=True)


def test_the_first_chunk_is_the_smaller_world(case):
    w = {**case["data"]["world"], "trips": 3000}
    first = dist.world_chunk(w, 0, 3000, 3000)
    pd.testing.assert_frame_equal(first, ed.simulate(w))
    second = dist.world_chunk(w, 1, 3000, 3000)
    assert second["id"].str[2:].astype(int).min() == 3000  # ids follow the first chunk's
    assert not np.allclose(second["trip_duration"], first["trip_duration"])
    pd.testing.assert_frame_equal(second, dist.world_chunk(w, 1, 3000, 3000))  # seeded
    assert dist.chunk_sizes(7500, 3000) == [3000, 3000, 1500]
    assert len({dist.chunk_seed(5, i) for i in range(50)}) == 50


def test_pair_medians_from_counts_equal_pandas():
    rng = np.random.default_rng(0)
    n = 5000
    part = pd.DataFrame({"pickup_cluster": rng.integers(0, 6, n).astype(np.int16),
                         "dropoff_cluster": rng.integers(0, 6, n).astype(np.int16),
                         "trip_duration": rng.integers(60, 3000, n).astype(np.float32)})
    # counts from two partitions, summed, as the Dask path gathers them
    counts = pd.concat([dist.pair_counts(part.iloc[:2000], "pickup_cluster", "dropoff_cluster"),
                        dist.pair_counts(part.iloc[2000:], "pickup_cluster", "dropoff_cluster")])
    fitted = dist.fit_pair_stats(counts, "pickup_cluster", "dropoff_cluster", 20.0)
    local = PairStats("pickup_cluster", "dropoff_cluster", 20.0).fit(
        part.astype({"pickup_cluster": str, "dropoff_cluster": str}),
        np.log1p(part["trip_duration"].to_numpy(float)))
    assert fitted.global_ == pytest.approx(local.global_, abs=1e-12)
    assert fitted.origin_ == pytest.approx(local.origin_, abs=1e-12)
    assert fitted.pair_keys_ == local.pair_keys_
    np.testing.assert_allclose(fitted.pair_median_, local.pair_median_, atol=1e-12)
    np.testing.assert_array_equal(fitted.pair_count_, local.pair_count_)
    assert dist.weighted_median(np.array([1.0, 2.0, 4.0]), np.array([1, 1, 2])) == 3.0


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "nohost"])
def test_a_bad_scheduler_address_fails_fast(case, address):
    pytest.importorskip("distributed")
    d = {**case["dask"], "scheduler": address, "connect_timeout_s": 2}
    start = time.perf_counter()
    with pytest.raises(CasebookError, match="scheduler"):
        with dist.cluster(d):
            pass
    assert time.perf_counter() - start < 15


def test_the_split_keeps_the_test_weeks_out_of_training(case):
    train, test = dist.split_weeks(26, case["features"])
    assert test == [22, 23, 24, 25] and train == list(range(22))
    world = {"folder": "/w", "chunks": [{"files": {f"week={w:03d}/chunk-00000.parquet": 1
                                                   for w in range(26)}}]}
    assert {int(f.split("week=")[1][:3]) for f in dist.world_files(world, train)} == set(train)
    with pytest.raises(CasebookError, match="test_weeks"):
        dist.split_weeks(10, case["features"])


def test_real_tlc_files_are_read_lazily_one_partition_a_file(tmp_path):
    pytest.importorskip("dask")
    import dask

    from tests.unit.test_eta import write_tlc

    write_tlc(tmp_path, seed=0)
    (tmp_path / "green_tripdata_2021-01.parquet").rename(tmp_path / "green_tripdata_2020-12.parquet")
    write_tlc(tmp_path, seed=1)
    files = ed.resolve_files(str(tmp_path))
    dist.forget_reads()
    lazy, schema = dist.real_trips(files, None)
    assert schema == "zones" and lazy.npartitions == len(files) == 2
    assert len(dist.files_read()) == 0  # no partition read before compute (the columns: the
    # driver's look at the first file)
    with dask.config.set(scheduler="sync"):
        got = lazy.compute()
    want = ed.read_trips(files)[0]
    key = ["pickup_datetime", "id"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True),
                                  check_dtype=False)  # Dask's strings are pyarrow-backed
    assert sorted(dist.files_read()) == files


def test_the_compute_option_is_checked_before_any_work(capsys):
    from cases.cli import main

    assert main(["train", "case=eta", "case.compute=dask"]) == 2
    assert "runs the case whole" in capsys.readouterr().err
    assert main(["all", "case=eta", "case.compute=spark"]) == 2
    assert "expected 'local' or 'dask'" in capsys.readouterr().err
    assert main(["all", "case=flights", "case.compute=dask"]) == 2  # eta's option only


def test_text_categories_keep_their_identity_on_the_dask_path(case):
    """TLC's boroughs are text: each gets its own code from the training sample (they were all
    -1, LightGBM's missing, when coded as numbers); zone ids stay their number."""
    t = pd.DataFrame({
        "pickup_datetime": pd.date_range("2021-01-04", periods=6, freq="h"),
        "PULocationID": [4, 4, 132, 132, 161, 1], "DOLocationID": [1, 161, 4, 132, 1, 4],
        "borough": ["Manhattan", "Manhattan", "Queens", "Queens", "Manhattan", "EWR"],
        "do_borough": ["EWR", "Manhattan", "Manhattan", "Queens", None, "Manhattan"],
        "trip_duration": [600.0, 700, 800, 900, 1000, 1100]})
    f, cat = case["features"], list(case["features"]["categorical"])
    codes = dist.category_codes(dist.row_features(t, "zones", f, extras=[]), cat)
    assert codes == {"pu_borough": ["EWR", "Manhattan", "Queens"],
                     "do_borough": ["EWR", "Manhattan", "Queens", "Unknown"]}
    out = dist.feature_part(t, "zones", f, None, cat, [], (40.7, -74.0), codes)
    assert out["pu_borough"].tolist() == [1, 1, 2, 2, 1, 0]
    assert out["do_borough"].tolist() == [0, 1, 1, 2, 3, 1]
    assert out["pu_zone"].tolist() == [4, 4, 132, 132, 161, 1]  # numbers: no codes needed
    unseen = dist.feature_part(t.assign(borough="Staten Island"), "zones", f, None, cat, [],
                               (40.7, -74.0), codes)
    assert (unseen["pu_borough"] == -1).all()  # an unseen borough: missing to LightGBM


def test_files_are_balanced_over_the_workers():
    assert dist.balance([5, 1, 1, 1, 4, 0], 2) == [[0, 5], [1, 2, 3, 4]]
    assert dist.balance([3], 2) == [[0], []]


def test_numeric_codes_parse_each_distinct_value_once():
    col = pd.Series(["17", "3", None, "17", "x", "263"])
    assert dist.numeric_codes(col).tolist() == [17, 3, -1, 17, -1, 263]
    assert dist.numeric_codes(pd.Series([], dtype=object)).tolist() == []
    assert dist.numeric_codes(pd.Series([None, None])).tolist() == [-1, -1]
