"""The Bayes floor (lifecycle/floor.py): exact on a world without noise, reached by a model that
knows the true function, absent where the truth is unknown, and never a feature."""

import numpy as np
import pandas as pd
import pytest

from cases.errors import CasebookError
from cases.lifecycle import bootstrap as bs
from cases.lifecycle import evaluate as ev
from cases.lifecycle import floor as fl
from cases.lifecycle.features import check_views


def _floor_entry(kind, y, preds: dict, truth, metric, seed=0, n=400):
    """Score every prediction and the truth as evaluate does, on the same resamples."""
    rows = pd.DataFrame({"x": np.zeros(len(y))})
    no_segments = lambda y, rows, cfg: {}  # noqa: E731
    no_extra = lambda y, pred, rows, cfg: {}  # noqa: E731
    score = ev.scorer(kind, None, no_segments, no_extra, {})
    stats = bs.statistics(kind, None, no_segments, no_extra, {})
    points = {name: score(y, p, rows) for name, p in preds.items()}
    st = {name: stats(y, p, rows) for name, p in preds.items()}
    st["floor"] = stats(y, truth, rows)
    rs = bs.Resamples(np.arange(len(y)), n, seed)
    boot = bs.resample_all(st, rs)
    return fl.summarise(points, score(y, truth, rows), boot, "model", metric, "truth"), points


def test_a_world_without_noise_has_an_exact_floor():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = 3 * x + 1  # no noise: the truth is the target
    entry, points = _floor_entry("regression", y, {"model": 2.5 * x + 1, "baseline": np.full(
        500, y.mean())}, 3 * x + 1, "rmse")
    assert entry["test"]["rmse"] == 0 and entry["interval"]["rmse"] == [0.0, 0.0]
    assert entry["above_floor"] > 0
    share = (points["baseline"]["rmse"] - points["model"]["rmse"]) / points["baseline"]["rmse"]
    assert entry["gap_closed"] == pytest.approx(share)
    # a degenerate truth (every probability 0 or 1, and right): the log loss of the clip
    labels = (x > 0).astype(int)
    entry, _ = _floor_entry("binary", labels, {"model": np.full(500, 0.5),
                                               "baseline": np.full(500, labels.mean())},
                            labels.astype(float), "log_loss")
    assert entry["test"]["log_loss"] == pytest.approx(-np.log(1 - 1e-7), rel=1e-6)
    assert entry["test"]["auc"] == 1.0


def test_a_model_handed_the_true_function_reaches_the_floor_within_its_interval():
    rng = np.random.default_rng(1)
    n = 4000
    x = rng.normal(size=(2 * n, 2))
    mean = 1.5 * x[:, 0] - x[:, 1]
    y = mean + rng.normal(0, 0.7, 2 * n)
    from sklearn.linear_model import LinearRegression, LogisticRegression

    fit = LinearRegression().fit(x[:n], y[:n])  # the true function's family, fitted
    entry, points = _floor_entry("regression", y[n:], {"model": fit.predict(x[n:]),
                                                       "baseline": np.full(n, y[:n].mean())},
                                 mean[n:], "rmse")
    lo, hi = entry["interval"]["rmse"]
    assert lo <= points["model"]["rmse"] <= hi
    assert entry["near_floor"] and entry["gap_closed"] > 0.99
    p = 1 / (1 + np.exp(-mean))
    labels = (rng.uniform(size=2 * n) < p).astype(int)
    clf = LogisticRegression().fit(x[:n], labels[:n])
    entry, points = _floor_entry("binary", labels[n:], {
        "model": clf.predict_proba(x[n:])[:, 1], "baseline": np.full(n, labels[:n].mean())},
        p[n:], "log_loss")
    lo, hi = entry["interval"]["log_loss"]
    assert lo <= points["model"]["log_loss"] <= hi
    diff = entry["model_minus_floor"]["log_loss"]
    assert diff["lo"] <= 0 <= diff["hi"] or diff["diff"] < 0.002
    # a model far from the truth is far above the floor, and the line says so
    worse, _ = _floor_entry("binary", labels[n:], {"model": 1 - p[n:],
                                                   "baseline": np.full(n, labels[:n].mean())},
                            p[n:], "log_loss")
    assert not worse["near_floor"] and worse["gap_closed"] < 0
    assert "above it" in fl.line(worse)
    # a score (higher is better): the model is below its floor, and the line says so
    scored, _ = _floor_entry("binary", labels[n:], {"model": 1 - p[n:],
                                                    "baseline": np.full(n, labels[:n].mean())},
                             p[n:], "average_precision")
    assert scored["above_floor"] > 0.05 and "below it" in fl.line(scored)


def test_the_truth_is_read_only_where_it_is_known():
    cfg = {"evaluate": {"floor": {"price": "truth_log_price"}}}
    frame = pd.DataFrame({"truth_log_price": [1.0, 2.0]})
    assert fl.truth_prediction(frame, "price", cfg, "simulator").tolist() == [1.0, 2.0]
    assert fl.truth_prediction(frame, "other", cfg, "simulator") is None
    assert fl.truth_prediction(frame.drop(columns="truth_log_price"), "price", cfg, "real") is None
    with pytest.raises(CasebookError, match="truth_log_price"):
        fl.truth_prediction(frame.drop(columns="truth_log_price"), "price", cfg, "simulator")
    with pytest.raises(CasebookError, match="missing in 1 of 2"):
        fl.truth_prediction(pd.DataFrame({"truth_log_price": [1.0, np.nan]}), "price", cfg,
                            "simulator")
    assert fl.line(fl.unavailable()) == fl.NO_FLOOR == "no floor (truth unknown)"


def test_a_truth_column_in_a_view_is_refused():
    frame = pd.DataFrame({"a": [1.0], "truth_log_price": [1.0], "log_price": [1.0]})
    with pytest.raises(CasebookError, match="truth_log_price"):
        check_views(frame, {"v": ["a", "truth_log_price"]}, ["log_price"], ["truth_log_price"])
    check_views(frame, {"v": ["a"]}, ["log_price"], ["truth_log_price"])


def test_one_dispatcher_gives_metrics_and_statistics_the_same_names():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    p = rng.uniform(size=200)
    rows = pd.DataFrame({"x": np.zeros(200)})
    extra = lambda y, pred, rows, cfg: {"share": float(np.mean(pred))}  # noqa: E731
    extra_stats = lambda y, pred, rows, cfg: {"share": bs.mean_of(pred)}  # noqa: E731
    seg = lambda y, rows, cfg: {}  # noqa: E731
    for kind, pred in (("binary", p), ("regression", p)):
        metrics = ev.scorer(kind, None, seg, extra, {})(y, pred, rows)
        stats = bs.statistics(kind, None, seg, extra_stats, {})(y, pred, rows)
        assert set(metrics) == set(stats)
        for m, value in metrics.items():
            assert stats[m].point() == pytest.approx(value)
    with pytest.raises(ValueError, match="ordinal"):
        ev.scorer("ordinal", None, seg, extra, {})


@pytest.mark.parametrize("case", ["acceptance", "airbnb", "eta", "fraud", "housing", "loans"])
def test_every_simulated_world_declares_a_truth_that_no_view_lists(case):
    from cases.config import compose

    cfg = compose([f"case={case}"]).case
    truth = fl.truth_columns(cfg)
    assert truth, f"{case}: no floor declared"
    declared = {c for cols in cfg.features.views.values() for c in cols}
    assert not set(truth.values()) & declared


def test_each_simulator_truth_leaves_exactly_its_noise():
    """The target minus the truth is the noise the world draws: its spread is the configured
    one (housing: the sale's noise; airbnb: the listing's noise and the host's taste; eta: the
    log-normal noise and the tail)."""
    import yaml

    from cases.airbnb.data import simulate as airbnb
    from cases.eta.data import simulate as eta
    from cases.housing.data import simulate as housing

    def world(case, key, n):
        w = yaml.safe_load(open(f"conf/case/{case}.yaml"))["data"]["world"]
        return {**w, key: n}

    w = world("housing", "listings", 20000)
    h = housing(w)
    resid = np.log(h["price"]) - h["truth_log_price"]
    assert resid.std() == pytest.approx(float(w["noise_sd"]), rel=0.05)
    assert abs(resid.mean()) < 0.01
    w = world("airbnb", "listings", 20000)
    b = airbnb(w)
    resid = np.log(b["price"].str.replace(r"[$,]", "", regex=True).astype(float)) - b[
        "truth_log_price"]
    assert resid.std() == pytest.approx(np.hypot(float(w["noise_sd"]), float(w["host_sd"])),
                                        rel=0.05)
    w = world("eta", "trips", 50000)
    t = eta(w)
    clean = t["trip_duration"].between(120, 4 * 3600)  # the dirty records are not noise
    resid = np.log1p(t.loc[clean, "trip_duration"]) - np.log1p(t.loc[clean, "truth_trip_duration"])
    assert abs(resid.mean()) < 0.02  # the truth is the RMSLE-optimal (mean log) prediction
    sd, share, scale = (float(w[k]) for k in ("noise_sd", "tail_share", "tail_scale"))
    expected = np.sqrt(sd ** 2 + share * 2 * scale ** 2 - (share * scale) ** 2)
    assert resid.std() == pytest.approx(expected, rel=0.1)
