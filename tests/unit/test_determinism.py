"""Same seed, same bits: a fitted model predicts the same values on every call."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from cases.lifecycle.selection import SerialForestClassifier, SerialForestRegressor, serial_forest


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    return X, X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + rng.normal(scale=0.3, size=n)


def test_threaded_forest_predicts_the_same_bits_every_call():
    X, y = _data()
    model = SerialForestRegressor(n_estimators=30, min_samples_leaf=3, n_jobs=2,
                                  random_state=0).fit(X, y)
    assert len({model.predict(X).tobytes() for _ in range(8)}) == 1
    assert model.n_jobs == 2  # restored after predict
    plain = RandomForestRegressor(n_estimators=30, min_samples_leaf=3, n_jobs=1,
                                  random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), plain.predict(X))


def test_serial_classifier_matches_a_one_thread_forest():
    X, y = _data()
    kw = dict(n_estimators=30, min_samples_leaf=20, random_state=0)
    model = SerialForestClassifier(n_jobs=2, **kw).fit(X, y > 0)
    plain = RandomForestClassifier(n_jobs=1, **kw).fit(X, y > 0)
    assert len({model.predict_proba(X).tobytes() for _ in range(5)}) == 1
    np.testing.assert_array_equal(model.predict_proba(X), plain.predict_proba(X))


def test_serial_forest_swaps_the_final_step_and_keeps_parameters():
    pipe = Pipeline([("impute", SimpleImputer()),
                     ("model", RandomForestClassifier(n_estimators=7, n_jobs=2, random_state=3))])
    out = serial_forest(pipe)
    assert type(out[-1]) is SerialForestClassifier
    assert out[-1].get_params()["n_estimators"] == 7 and out[-1].n_jobs == 2
    assert type(clone(out)[-1]) is SerialForestClassifier
    X, y = _data(200)
    fitted = out.fit(X, y > 0)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_airbnb_forest_candidate_predicts_serially():
    from cases.airbnb.tasks import build_model

    cfg = {"train": {"forest": {"n_estimators": 5, "n_jobs": 2}, "tree_buckets": 8,
                     "linear_alpha": 1.0, "lgbm": {}},
           "features": {"high_cardinality": "neighbourhood", "categorical": ["room_type"]}}
    model = build_model("forest", "onehot", ["beds", "room_type"], cfg, seed=0)
    assert isinstance(model[-1][-1], SerialForestRegressor)


def test_importing_cases_first_pins_the_openblas_kernels():
    import os
    import subprocess
    import sys
    from pathlib import Path

    flags = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS")}
    code = ("import cases, os, numpy; from threadpoolctl import threadpool_info; "
            "print(os.environ.get('OPENBLAS_CORETYPE'), "
            "{i.get('architecture') for i in threadpool_info() if i['internal_api'] == 'openblas'}, "
            "{i.get('num_threads') for i in threadpool_info() if i['internal_api'] == 'openblas'})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    if " avx2 " in flags and " fma " in flags:
        assert out.startswith("Haswell") and "SkylakeX" not in out
    assert out.rstrip().endswith("{1}")  # one BLAS thread: sums split the same way everywhere
    env["OPENBLAS_CORETYPE"] = "Prescott"  # the user's choice wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("Prescott")


def _cv_problem(n=1500, seed=1):
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "c": rng.choice(["x", "y", "z", "w"], size=n)})
    y = pd.Series((X["a"] + (X["c"] == "x") + rng.normal(size=n) > 0.5).astype(int))
    return X, y


def _cv_candidates():
    from cases.lifecycle.contract import Candidate
    from cases.lifecycle.models import GroupBaseline, lgbm_pipeline, linear_pipeline

    return [
        Candidate("baseline", lambda: GroupBaseline([["c"]], min_count=5, kind="binary"), {}),
        Candidate("logistic", lambda: linear_pipeline("binary", ["a", "b"], ["c"],
                                                      min_frequency=5), {}),
        Candidate("lgbm", lambda: lgbm_pipeline("binary", ["c"], params={"n_estimators": 5},
                                                seed=0), {}),
        Candidate("logistic-strong", lambda: linear_pipeline("binary", ["a", "b"], ["c"],
                                                             alpha=30.0, min_frequency=5), {}),
    ]


def test_parallel_fits_give_the_bits_of_serial_fits(monkeypatch):
    import io

    import joblib

    monkeypatch.setattr("cases.lifecycle.parallel.POOL_MIN_ROWS", 0)  # pool even these few rows
    from cases.lifecycle.evaluate import scorer
    from cases.lifecycle.selection import cross_validate_and_fit, shuffled_folds

    X, y = _cv_problem()
    folds = shuffled_folds(len(X), 3, 0, y)
    score = scorer("binary", None, lambda *a: {}, lambda *a: {}, {})
    runs = [cross_validate_and_fit(_cv_candidates(), X, y, folds, "binary", score, n_workers=w)
            for w in (1, 2, 2)]
    (serial, serial_fits), (pooled, pooled_fits), (again, again_fits) = runs
    assert [r.fold_metrics for r in serial] == [r.fold_metrics for r in pooled]
    assert [r.fold_metrics for r in again] == [r.fold_metrics for r in pooled]
    assert [f for f, _ in again_fits] == [f for f, _ in pooled_fits]
    assert [r.name for r in pooled] == ["baseline", "logistic", "lgbm", "logistic-strong"]
    for (a, _), (b, seconds) in zip(serial_fits, pooled_fits):
        assert seconds >= 0
        assert a == b  # the models' joblib files
        np.testing.assert_array_equal(joblib.load(io.BytesIO(a)).predict_proba(X),
                                      joblib.load(io.BytesIO(b)).predict_proba(X))


def test_only_one_thread_estimators_are_pooled():
    from cases.lifecycle.parallel import single_threaded

    kinds = {c.name: single_threaded(c.build()) for c in _cv_candidates()}
    assert kinds == {"baseline": True, "logistic": True, "lgbm": False, "logistic-strong": True}
    assert not single_threaded(Pipeline([("model", RandomForestRegressor(n_jobs=2))]))
    assert single_threaded(Pipeline([("model", RandomForestRegressor(n_jobs=1))]))


def test_every_pooled_fit_runs_on_one_thread():
    from cases.flights.models import TargetStrategyRegressor
    from cases.lifecycle.models import lgbm_pipeline
    from cases.lifecycle.parallel import one_thread, single_threaded

    lgbm = lgbm_pipeline("binary", ["c"], params={"n_jobs": 2}, seed=0)
    assert one_thread(lgbm) is lgbm and lgbm.get_params()["model__n_jobs"] == 1
    assert single_threaded(lgbm)
    wrapped = TargetStrategyRegressor(lgbm_pipeline("regression", ["c"], params={"n_jobs": 2}))
    assert single_threaded(one_thread(wrapped))
    assert wrapped.get_params()["estimator__model__n_jobs"] == 1
    import lightgbm as lgb

    bare = lgb.LGBMRegressor()  # n_jobs None: LightGBM's default uses every core
    assert not single_threaded(bare) and single_threaded(one_thread(bare))
    forest = Pipeline([("model", RandomForestRegressor(n_jobs=2))])
    assert single_threaded(one_thread(forest))
    from cases.housing.imputers import LGBMFill

    fill = LGBMFill(params={"n_estimators": 5, "n_jobs": 2})
    assert not single_threaded(fill)
    assert single_threaded(one_thread(fill)) and fill.params == {"n_estimators": 5, "n_jobs": 1}


def test_a_fitted_lightgbm_predicts_the_same_bits_on_every_core():
    """`predict_threads` sets every LightGBM model in a fitted model (a wrapper's fitted copy
    too) to predict on more threads, and its predictions are the one-thread ones, bit for bit."""
    from cases.flights.models import TargetStrategyRegressor
    from cases.lifecycle.models import lgbm_pipeline
    from cases.lifecycle.parallel import one_thread, predict_threads

    X, y = _data(n=4000)
    frame = __import__("pandas").DataFrame(X, columns=list("abcdef"))
    model = one_thread(TargetStrategyRegressor(lgbm_pipeline(
        "regression", [], params={"n_estimators": 50}, seed=0))).fit(frame, y)
    alone = model.predict(frame)
    assert predict_threads(model, 2) is model
    assert model.estimator_.get_params()["model__n_jobs"] == 2  # the fitted copy predicts
    assert model.predict(frame).tobytes() == alone.tobytes()
    forest = Pipeline([("model", RandomForestRegressor(n_estimators=3, n_jobs=1))])
    assert predict_threads(forest, 2).get_params()["model__n_jobs"] == 1  # LightGBM only


def test_small_jobs_start_no_worker(monkeypatch):
    import joblib.externals.loky as loky

    from cases.lifecycle.parallel import POOL_MIN_ROWS, Job, predict, run_fits

    def no_pool(*a, **k):
        raise AssertionError("a worker was started for a few rows")

    monkeypatch.setattr(loky, "get_reusable_executor", no_pool)
    X, y = _cv_problem()
    jobs = [Job(c.build(), np.arange(1000), np.arange(1000, 1500), predict)
            for c in _cv_candidates()]
    assert 4 * 1000 < POOL_MIN_ROWS
    assert len(run_fits(jobs, X, y, n_workers=2)) == 4
    monkeypatch.setattr("cases.lifecycle.parallel.POOL_MIN_ROWS", 0)
    with pytest.raises(AssertionError, match="a worker was started"):
        run_fits(jobs, X, y, n_workers=2)


def test_which_process_fits_which_job_depends_on_the_jobs_only():
    import pandas as pd

    from cases.lifecycle.parallel import Job, _lanes

    X = pd.DataFrame({"a": range(100)})
    jobs = [Job(None, np.arange(n)) for n in (10, 50, 30, 20)] + [Job(None, here=True)]
    lanes = _lanes([4], [1, 2, 3, 0], jobs, X, 2)
    assert lanes == [[4, 0], [1, 2, 3]]  # the model on all 100 rows is fitted here
    assert _lanes([], [1, 2, 3, 0], jobs, X, 2) == [[1, 0], [2, 3]]


def _row_norms(X):
    import os

    return np.column_stack([np.sqrt((X.to_numpy() ** 2).sum(axis=1)),
                            np.full(len(X), os.getpid())])


def test_map_rows_stacks_the_blocks_in_order():
    """A row-wise function on blocks of rows side by side gives the array of one call; the
    first block is computed in this process, the others in a worker."""
    import os

    import pandas as pd

    from cases.lifecycle.parallel import map_rows

    X = pd.DataFrame(_data(n=101)[0])
    one = _row_norms(X)
    two = map_rows(_row_norms, X, n_workers=2)
    np.testing.assert_array_equal(two[:, 0], one[:, 0])
    assert (two[:51, 1] == os.getpid()).all() and (two[51:, 1] != os.getpid()).all()
    np.testing.assert_array_equal(map_rows(_row_norms, X, n_workers=1), one)
    assert map_rows(_row_norms, X.iloc[:1], n_workers=2).shape == (1, 2)
