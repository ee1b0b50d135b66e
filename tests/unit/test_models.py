import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression

from cases.flights.models import TargetStrategyRegressor
from cases.lifecycle.models import (
    CategoricalCaster,
    GroupBaseline,
    MedianImputer,
    lgbm_pipeline,
    linear_pipeline,
)

X = pd.DataFrame({"carrier": ["AA", "AA", "AA", "UA", "UA", "DL"],
                  "hour": [5, 5, 6, 5, 5, 7]})
Y = np.array([10.0, 20.0, 30.0, 0.0, 4.0, 100.0])


def test_group_baseline_backs_off_to_coarser_groups():
    model = GroupBaseline(levels=[["carrier", "hour"], ["carrier"]], min_count=2).fit(X, Y)
    new = pd.DataFrame({"carrier": ["AA", "AA", "UA", "DL", "XX"], "hour": [5, 6, 5, 7, 5]})
    # AA@5 has 2 rows -> 15; AA@6 has 1 row -> AA mean 20; UA@5 -> 2; DL has 1 row -> global
    assert model.predict(new).tolist() == pytest.approx([15.0, 20.0, 2.0, Y.mean(), Y.mean()])


def test_group_baseline_classifies_with_rates():
    y = np.array([1, 0, 1, 0, 0, 1])
    model = GroupBaseline(levels=[["carrier"]], min_count=2, kind="binary").fit(X, y)
    proba = model.predict_proba(pd.DataFrame({"carrier": ["AA", "UA"], "hour": [1, 1]}))
    assert proba[:, 1] == pytest.approx([2 / 3, 1e-6])
    multi = GroupBaseline(levels=[["carrier"]], min_count=2, kind="multiclass").fit(
        X, np.array([0, 1, 1, 2, 2, 0]))
    p = multi.predict_proba(pd.DataFrame({"carrier": ["UA"], "hour": [1]}))
    assert p.argmax() == 2 and p.sum() == pytest.approx(1.0)


def test_filter_tail_drops_exactly_the_rows_above_the_limit():
    model = TargetStrategyRegressor(DummyRegressor(), strategy="filter_tail", max_target=25)
    model.fit(X[["hour"]], Y)
    assert model.n_dropped_ == 2  # 30 and 100 dropped, 25 would be kept
    assert model.predict(X[["hour"]].head(1))[0] == pytest.approx(np.mean([10, 20, 0, 4]))


def test_winsorize_clips_training_target_only():
    model = TargetStrategyRegressor(DummyRegressor(), strategy="winsorize", quantile=0.8)
    model.fit(X[["hour"]], Y)
    lo, hi = model.bounds_
    assert hi == pytest.approx(np.quantile(Y, 0.8)) and lo == pytest.approx(np.quantile(Y, 0.2))
    assert model.predict(X[["hour"]].head(1))[0] == pytest.approx(np.clip(Y, lo, hi).mean())


def test_log_transform_predicts_on_the_original_scale():
    x = pd.DataFrame({"v": np.linspace(-3, 3, 50)})
    y = np.sign(x["v"]) * np.expm1(np.abs(x["v"]))
    model = TargetStrategyRegressor(LinearRegression(), strategy="log_transform").fit(x, y)
    assert model.predict(x) == pytest.approx(y.to_numpy(), rel=1e-6, abs=1e-9)


def test_categorical_caster_maps_unseen_levels_to_missing():
    caster = CategoricalCaster(["carrier"]).fit(X)
    out = caster.transform(pd.DataFrame({"carrier": ["AA", "ZZ"], "hour": [1, 2]}))
    assert out["carrier"].isna().tolist() == [False, True]
    assert list(out["carrier"].cat.categories) == ["AA", "DL", "UA"]


@pytest.mark.parametrize("loss", ["squared", "huber", "quantile"])
def test_pipelines_fit_on_raw_frames_with_missing_values(loss):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c": rng.choice(["a", "b", None], 300), "n": rng.normal(size=300),
                          "h": rng.integers(0, 5, 300).astype(float)})
    frame.loc[::7, "n"] = np.nan
    y = (frame["c"] == "a") * 5.0 + frame["h"]
    for model in (linear_pipeline("regression", ["n"], ["c", "h"], loss=loss),
                  lgbm_pipeline("regression", ["c"], loss=loss, params={"n_estimators": 20})):
        pred = model.fit(frame, y).predict(frame)
        assert pred.shape == (300,) and np.isfinite(pred).all()


def test_lgbm_is_bit_reproducible_with_a_fixed_seed_and_thread_count():
    from cases.lifecycle.models import lgbm_params

    base = lgbm_params(3, {"n_estimators": 20})
    assert base["deterministic"] and base["force_row_wise"] and base["n_jobs"] == 2
    assert base["random_state"] == 3
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"c": rng.choice(["a", "b", None], 500), "n": rng.normal(size=500)})
    y = frame["n"] * 2 + (frame["c"] == "a") + rng.normal(size=500)
    params = {"n_estimators": 20, "subsample": 0.7, "subsample_freq": 1,
              "colsample_bytree": 0.5}
    one = lgbm_pipeline("regression", ["c"], params=params, seed=3).fit(frame, y).predict(frame)
    two = lgbm_pipeline("regression", ["c"], params=params, seed=3).fit(frame, y).predict(frame)
    assert np.array_equal(one, two)


def test_median_imputer_matches_simple_imputer_bit_for_bit():
    from sklearn.impute import SimpleImputer

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(501, 4)), columns=list("abcd"))
    frame.loc[rng.random(501) < 0.3, "a"] = np.nan
    frame["b"] = frame["b"].round()  # ties: an even count of observed values takes the mean
    frame.loc[::2, "b"] = np.nan
    frame["empty"] = np.nan          # no observed value: dropped, as SimpleImputer does
    frame["n"] = pd.array([1, None, 3] * 167, dtype="Int64")
    new = frame.sample(frac=1.0, random_state=1)
    ours = MedianImputer().fit(frame)
    theirs = SimpleImputer(strategy="median").fit(frame)
    assert np.array_equal(ours.statistics_, theirs.statistics_, equal_nan=True)
    assert np.array_equal(ours.transform(new), theirs.transform(new))
    assert list(ours.get_feature_names_out()) == list(theirs.get_feature_names_out())
    assert list(ours.get_feature_names_out()) == ["a", "b", "c", "d", "n"]
