import numpy as np
import pytest

from cases.lifecycle.evaluate import (
    binary_metrics,
    calibration_table,
    gate,
    greater_is_better,
    multiclass_metrics,
    regression_metrics,
)


def test_regression_metrics_overall_and_segment():
    y = np.array([0.0, 10.0, 200.0, 300.0])
    pred = np.array([1.0, 8.0, 100.0, 350.0])
    m = regression_metrics(y, pred, {"tail": y >= 120})
    assert m["mae"] == pytest.approx((1 + 2 + 100 + 50) / 4)
    assert m["medae"] == pytest.approx(26.0)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 4 + 10000 + 2500) / 4))
    assert m["tail_mae"] == pytest.approx(75.0)
    assert m["tail_bias"] == pytest.approx(-25.0)


def test_binary_metrics_and_perfect_calibration():
    y = np.array([0, 0, 1, 1] * 25)
    p = np.array([0.0, 0.0, 1.0, 1.0] * 25)
    m = binary_metrics(y, p)
    assert m["auc"] == 1.0 and m["ece"] == pytest.approx(0.0, abs=1e-6)
    table = calibration_table(y, np.full(100, 0.5))
    assert table["observed_rate"].tolist() == [0.5] and table["count"].tolist() == [100]


def test_multiclass_recall_per_class_uses_labels():
    y = np.array([0, 0, 1, 2])
    proba = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.1, 0.8, 0.1], [0.5, 0.2, 0.3]])
    m = multiclass_metrics(y, proba, ["on_time", "late", "very_late"])
    assert m["recall_on_time"] == 0.5 and m["recall_late"] == 1.0 and m["recall_very_late"] == 0.0
    assert m["accuracy"] == 0.5


def test_gate_direction():
    assert greater_is_better("auc") and greater_is_better("tail_auc") and not greater_is_better("mae")
    assert gate(9.0, 10.0, "mae", 0.05)["passed"] is True
    assert gate(9.8, 10.0, "mae", 0.05)["passed"] is False
    assert gate(0.70, 0.60, "auc", 0.05)["passed"] is True
    assert gate(0.60, 0.70, "auc", 0.0)["passed"] is False
