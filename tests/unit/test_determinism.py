"""Same seed, same bits: a fitted model predicts the same values on every call."""

import pickle

import numpy as np
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
