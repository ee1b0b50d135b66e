"""The cluster bootstrap: each statistic's point value is the metric the evaluate stage reports,
its fast paths agree with the row-weight path, intervals cover the truth, a resample draws whole
units, identical models differ by exactly nothing, and a gate cannot pass on a tie."""

import numpy as np
import pandas as pd
import pytest

from cases.errors import CasebookError
from cases.eta.tasks import duration_metrics, duration_statistics
from cases.fraud.tasks import rare_event_metrics, rare_event_statistics
from cases.lifecycle import bootstrap as bs
from cases.lifecycle import evaluate as ev
from cases.lifecycle.features import Rows

RNG = np.random.default_rng(0)
N = 3000
Y = RNG.normal(20, 40, N)
PRED = Y + RNG.normal(0, 30, N)
LABEL = (RNG.random(N) < 0.2).astype(int)
SCORE = np.round(np.clip(0.3 * LABEL + 0.7 * RNG.random(N), 0, 1), 2)  # ties on purpose
DAYS = RNG.integers(0, 40, N)


def _same(metrics: dict, stats: dict):
    assert set(metrics) == set(stats)
    for m, value in metrics.items():
        assert stats[m].point() == pytest.approx(value, rel=1e-9, abs=1e-12), m


def test_point_values_are_the_reported_metrics():
    _same(ev.regression_metrics(Y, PRED, {"tail": Y >= 60}),
          bs.regression_statistics(Y, PRED, {"tail": Y >= 60}))
    _same(ev.binary_metrics(LABEL, SCORE), bs.binary_statistics(LABEL, SCORE))
    classes = RNG.integers(0, 4, N)
    proba = RNG.random((N, 4)) + np.eye(4)[classes]
    _same(ev.multiclass_metrics(classes, proba, list("abcd")),
          bs.multiclass_statistics(classes, proba, list("abcd")))
    _same(ev.log_target_metrics(Y / 40, PRED / 40), bs.log_target_statistics(Y / 40, PRED / 40))
    secs, est = np.abs(Y) * 30 + 60, np.abs(PRED) * 30 + 60
    _same(duration_metrics(secs, est, None, {}), duration_statistics(secs, est, None, {}))
    cfg = {"metrics": {"alert_rate": 0.05, "target_recall": 0.8},
           "analysis": {"costs": {"sms": 0.05, "friction": 1.0, "block_good": 15.0,
                                  "fraud_share_lost": 1.0}, "no_reply": "block"}}
    rows = pd.DataFrame({"amount": np.abs(Y) * 10 + 5, "reply_p": RNG.random(N)})
    _same(rare_event_metrics(LABEL, SCORE, rows, cfg),
          rare_event_statistics(LABEL, SCORE, rows, cfg))


@pytest.mark.parametrize("make", [
    lambda: bs.Quantile(np.abs(PRED - Y), 0.5),
    lambda: bs.Quantile(np.abs(PRED - Y), 0.9, Y > 30),
    lambda: bs.AUC(LABEL, SCORE),
    lambda: bs.AveragePrecision(LABEL, SCORE),
    lambda: bs.PrecisionAtRecall(LABEL, SCORE, 0.8),
    lambda: bs.TopShare(LABEL, SCORE, 0.05),
])
def test_fast_paths_for_few_units_equal_the_row_weight_path(make, monkeypatch):
    rs = bs.Resamples(DAYS, 60, seed=1)
    fast = make().resample(rs)
    monkeypatch.setattr(bs, "UNIT_MATRIX_MAX", 0)
    slow = make().resample(rs)
    assert np.allclose(fast[:len(slow)], slow, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("make", [
    lambda y, s: bs.AUC(y, s),
    lambda y, s: bs.AveragePrecision(y, s),
    lambda y, s: bs.PrecisionAtRecall(y, s, 0.8),
    lambda y, s: bs.MeanOf([bs.AUC(y, s), bs.AUC(1 - y, 1 - s)]),
])
def test_many_unit_paths_equal_the_row_weight_path_bit_for_bit(make, ties, monkeypatch):
    """Many units (a driver, a host, a row): the ranked statistics come from running sums over
    the positive and the negative rows, and every value must stay the float the row weights
    give (the intervals in metrics.json are bit-identical)."""
    rng = np.random.default_rng(7)
    n = 2500
    y = (rng.random(n) < 0.25).astype(int)
    score = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    score = np.round(score, 2) if ties else score
    units = rng.integers(0, 900, n)
    tiny = (np.array([0, 0, 0, 0, 1, 0]), np.array([0.1, 0.2, 0.2, 0.4, 0.3, 0.9]))
    monkeypatch.setattr(bs, "UNIT_MATRIX_MAX", 0)  # every statistic takes the many-unit path
    for stat, rs in ((make(y, score), bs.Resamples(units, 120, seed=3, n_rowwise=90)),
                     (make(*tiny), bs.Resamples(np.arange(6), 40, seed=0))):
        for part in (stat.parts if isinstance(stat, bs.MeanOf) else [stat]):
            slow = part.by_row_weights(rs)
            fast = part.resample(rs)
            assert len(fast) == rs.n_rowwise
            assert np.array_equal(fast, slow, equal_nan=True)
    # the tiny sample has resamples with no positive or no negative: undefined, as before
    assert np.isnan(fast).any()


@pytest.mark.parametrize("make", [
    lambda y, s: bs.AveragePrecision(y, s),
    lambda y, s: bs.PrecisionAtRecall(y, s, 0.7),
])
def test_few_unit_precision_recall_routes_agree_bit_for_bit(make):
    """Few units: products with each unit's counts or running counts over the rows, whichever
    costs less, must give the same floats on every resample."""
    rng = np.random.default_rng(4)
    for n, ties in ((3000, 2), (3000, 8), (400, 1)):
        y = (rng.random(n) < 0.3).astype(int)
        stat = make(y, np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), ties))
        rs = bs.Resamples(rng.integers(0, 40, n), 150, seed=2, n_rowwise=60)
        ends = np.r_[stat.starts[1:], n] - 1
        positive = np.add.reduceat(stat.y, stat.starts) > 0
        products = stat._all_by_unit_products(rs, ends[positive], stat.starts[positive] - 1)
        running = stat._all_by_running_counts(rs)
        assert len(running) == rs.n and np.array_equal(running, products, equal_nan=True)


def _quantile_row_by_row(stat: bs.Quantile, rs: bs.Resamples) -> np.ndarray:
    """The reference: every resample's quantile from its own row weights, one at a time."""
    out = np.full(rs.n_rowwise, np.nan)
    for sl, w in rs.row_weights(stat.rows):
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        pos = stat.q * (total - 1)
        lo = np.floor(pos)
        for i, b in enumerate(range(sl.start, sl.stop)):
            if total[i] >= 1:
                i_lo = np.searchsorted(cum[i], lo[i], side="right")
                i_hi = np.searchsorted(cum[i], min(lo[i] + 1, total[i] - 1), side="right")
                out[b] = stat.sorted[i_lo] + (pos[i] - lo[i]) * (
                    stat.sorted[i_hi] - stat.sorted[i_lo])
    return out


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 1.0])
def test_quantile_with_many_units_equals_row_by_row_bit_for_bit(q, monkeypatch):
    rng = np.random.default_rng(11)
    values = np.round(np.abs(rng.normal(0, 30, 2000)), 1)  # ties on purpose
    mask = rng.random(2000) < 0.3
    units = rng.integers(0, 1500, 2000)
    monkeypatch.setattr(bs, "UNIT_MATRIX_MAX", 0)  # the many-unit path
    rs = bs.Resamples(units, 150, seed=5, n_rowwise=110)
    rare = np.arange(2000) < 2  # two rows: most resamples hold neither (undefined, NaN)
    for stat in (bs.Quantile(values, q), bs.Quantile(values, q, mask),
                 bs.Quantile(values, q, rare)):
        fast = stat.resample(rs)
        assert len(fast) == rs.n_rowwise
        assert np.array_equal(fast, _quantile_row_by_row(stat, rs), equal_nan=True)
    assert np.isnan(fast).any() and not np.isnan(fast).all()


def test_interval_covers_the_truth_on_most_synthetic_samples():
    """MAE of errors ~ N(0, 1): the truth is sqrt(2 / pi); 95% intervals from 40 samples."""
    truth = np.sqrt(2 / np.pi)
    rng = np.random.default_rng(3)
    covered = 0
    for i in range(40):
        err = rng.normal(0, 1, 800)
        rs = bs.Resamples(np.arange(800), 300, seed=i)
        lo, hi = bs.interval(bs.resample_all({"m": {"mae": bs.mean_of(np.abs(err))}}, rs)["m"]["mae"])
        covered += lo <= truth <= hi
    assert covered >= 34  # 95% nominal: 38 expected; far fewer would mean a broken interval


def test_a_resample_draws_whole_units():
    units = np.repeat(np.arange(30), 10)
    rs = bs.Resamples(units, 50, seed=0)
    assert rs.counts.shape == (50, 30) and (rs.counts.sum(axis=1) == 30).all()
    for _, w in rs.row_weights(np.arange(len(units))):
        blocks = w.reshape(len(w), 30, 10)  # every row of a unit has the unit's weight
        assert (blocks == blocks[:, :, :1]).all()
    # rows that err together (one shared error per unit): clustering widens the interval
    err = np.repeat(np.random.default_rng(1).normal(0, 1, 30), 10) + 0.01
    stat = {"m": {"bias": bs.mean_of(err)}}
    by_unit = bs.interval(bs.resample_all(stat, bs.Resamples(units, 400, 0))["m"]["bias"])
    by_row = bs.interval(bs.resample_all(stat, bs.Resamples(np.arange(300), 400, 0))["m"]["bias"])
    assert by_unit[1] - by_unit[0] > 2 * (by_row[1] - by_row[0])


def test_unit_ids_bin_days_and_refuse_unknown_columns():
    frame = pd.DataFrame({"time_s": [0, 100, 86_399, 86_400, 200_000], "x": 1.0,
                          "_split": "test", "_period": [0, 0, 0, 1, 2], "_group": 0})
    rows = Rows(frame)
    name, ids = bs.unit_ids(rows, {"name": "day", "columns": ["time_s"], "width": 86400})
    assert name == "day" and ids.tolist() == [0, 0, 0, 1, 2]
    assert bs.unit_ids(rows, {"name": "applicant", "columns": []})[1].tolist() == [0, 1, 2, 3, 4]
    assert bs.unit_ids(rows, {"columns": ["_period"]})[1].tolist() == [0, 0, 0, 1, 2]
    when = pd.DataFrame({"t": pd.to_datetime(["2013-01-01 03:00", "2013-01-01 06:00"], utc=True),
                         "_split": "test", "_period": 0, "_group": 0})
    ny = bs.unit_ids(Rows(when), {"columns": ["t"], "width": "1D", "timezone": "America/New_York"})
    assert ny[1].tolist() == [0, 1]  # 03:00 UTC is still the evening before in New York
    with pytest.raises(CasebookError, match="column 'host' is not in the test rows"):
        bs.unit_ids(rows, {"columns": ["host"]})


def _view(model_pred, base_pred, min_improvement=0.0, guardrails=()):
    points = {"model": ev.regression_metrics(Y, model_pred), "baseline":
              ev.regression_metrics(Y, base_pred)}
    stats = {k: bs.regression_statistics(Y, p) for k, p in (("model", model_pred),
                                                             ("baseline", base_pred))}
    boot = bs.resample_all(stats, bs.Resamples(DAYS, 200, seed=0))
    return bs.evaluate_view(points, boot, "model", "mae", min_improvement, guardrails)


def test_identical_models_differ_by_exactly_zero_and_the_gate_fails_on_a_tie():
    """The loans gate before this change: the baseline was the selected model itself."""
    out = _view(PRED, PRED.copy(), min_improvement=0.0)
    for m, d in out["paired"]["model"]["vs_baseline"].items():
        assert (d["diff"], d["lo"], d["hi"], d["within_noise"]) == (0.0, 0.0, 0.0, True), m
    assert out["gate"]["improvement_interval"] == [0.0, 0.0]
    assert out["gate"]["passed"] is False
    assert ev.gate(0.3, 0.3, "log_loss", 0.0)["passed"] is False  # without an interval too


def test_gate_uses_the_lower_bound_and_guardrails_can_fail_it():
    better = Y + (PRED - Y) * 0.5
    passed = _view(better, PRED, min_improvement=0.05)
    lo, hi = passed["gate"]["improvement_interval"]
    assert 0.05 < lo < passed["gate"]["relative_improvement"] < hi and passed["gate"]["passed"]
    assert not _view(better, PRED, min_improvement=lo + 0.01)["gate"]["passed"]
    # a model better on MAE but worse on RMSE (a few huge misses): the guardrail is breached
    worse_tail = better.copy()
    worse_tail[:30] += 400
    for action, passes in (("flag", True), ("fail", False)):
        out = _view(worse_tail, PRED, 0.0, [{"metric": "rmse", "tolerance": 0.0,
                                             "action": action}])
        (g,) = out["gate"]["guardrails"]
        assert g["breached"] and g["diff_interval"][0] > 0 and g["action"] == action
        assert out["gate"]["passed"] is passes


def test_an_absolute_guardrail_holds_the_model_to_a_floor_not_to_the_baseline():
    """The four-fifths rule's kind of guardrail: the model's own value must reach `min_value`
    (in practice a ratio such as the adverse impact ratio; any stored metric works)."""
    better = Y + (PRED - Y) * 0.5
    point = ev.regression_metrics(Y, better)["mae"]
    for floor, breached in ((point - 1, False), (point + 1, True)):
        out = _view(better, PRED, 0.0, [{"metric": "mae", "min_value": floor,
                                         "action": "fail"}])
        (g,) = out["gate"]["guardrails"]
        assert g["breached"] is breached and g["min_value"] == floor
        lo, hi = g["model_interval"]
        assert lo < g["model"] < hi
        assert out["gate"]["passed"] is not breached


def test_compare_pairs_each_model_with_the_reference_on_the_same_resamples():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    units = np.repeat(np.arange(40), 10)
    good, bad = y + rng.normal(0, 0.5, 400), y + rng.normal(0, 1.5, 400)
    stats = {m: {"rmse": bs.root_mean_of((y - p) ** 2)}
             for m, p in (("good", good), ("same", good), ("bad", bad))}
    out = bs.compare(stats, units, "good", 300, 0)
    assert out["same"]["vs_good"]["rmse"] == {"diff": 0.0, "lo": 0.0, "hi": 0.0,
                                              "within_noise": True}
    d = out["bad"]["vs_good"]["rmse"]
    assert d["lo"] > 0 and not d["within_noise"] and "vs_good" not in out["good"]
    lo, hi = out["bad"]["interval"]["rmse"]
    assert lo < out["bad"]["point"]["rmse"] < hi
    with pytest.raises(CasebookError, match="reference 'nope'"):
        bs.compare(stats, units, "nope", 10, 0)
