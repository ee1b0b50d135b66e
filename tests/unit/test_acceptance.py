import numpy as np
import pandas as pd
import pytest

from cases.acceptance.analysis import recovered_coefficients
from cases.acceptance.data import LINEAR, simulate
from cases.acceptance.features import build
from cases.acceptance.models import ColumnRateBaseline
from cases.config import compose
from cases.lifecycle.models import linear_pipeline
from cases.lifecycle.selection import time_group_folds


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=acceptance"]).case


def test_logistic_recovers_the_true_coefficients_on_a_large_sample(cfg):
    """With the rule's own form (no driver taste, no non-linear terms) and many offers, the
    truth is recoverable: the simulator says what it claims."""
    world = {**cfg.data.world, "offers": 120_000, "driver_effect_sd": 0.0,
             "nonlinear": {"pickup_over_4km_sq": 0.0, "night_x_trip_km": 0.0}}
    frame = simulate(world)
    cols = list(LINEAR)
    model = linear_pipeline("binary", cols, [], alpha=1e-6, max_iter=2000).fit(
        frame[cols], frame["accepted"])
    rec = recovered_coefficients(model, cols)
    for name, true in world["coef"].items():
        assert rec[name] == pytest.approx(float(true), abs=0.1 * abs(float(true)) + 0.01), name


def test_recent_acceptance_rate_uses_only_earlier_offers(cfg):
    frame = simulate({**cfg.data.world, "offers": 4000, "drivers": 50})
    for _, g in list(frame.groupby("driver_id"))[:10]:
        acc = g["accepted"].to_numpy()
        rate = g["recent_acceptance_rate"].to_numpy()
        for i in range(len(g)):
            past = acc[max(0, i - 20):i]
            if len(past) < 3:
                assert np.isnan(rate[i])
            else:
                assert rate[i] == pytest.approx(past.mean())


def test_split_by_time_and_folds_by_time_and_driver(cfg):
    tables = {"offers": simulate({**cfg.data.world, "offers": 6000})}
    ft = build(tables, cfg)
    days = ft.frame["day"]
    assert days[ft.split == "train"].max() < days[ft.split == "test"].min()
    train = ft.split == "train"
    period, groups = ft.period[train].reset_index(drop=True), ft.groups[train].reset_index(drop=True)
    folds = time_group_folds(period, groups, 3)
    for tr, va in folds:
        assert len(tr) and len(va)
        assert period.iloc[tr].max() < period.iloc[va].min()  # no driver's future
        assert not set(groups.iloc[tr]) & set(groups.iloc[va])  # no driver on both sides
    for col in cfg.features.forbidden:
        for view in ft.views.values():
            assert col not in view


def test_baseline_is_the_drivers_recent_rate():
    X = pd.DataFrame({"recent_acceptance_rate": [0.2, np.nan, 0.9]})
    model = ColumnRateBaseline("recent_acceptance_rate").fit(X, [1, 0, 1, 1])
    assert model.predict_proba(X)[:, 1] == pytest.approx([0.2, 0.75, 0.9])
