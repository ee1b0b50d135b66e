import numpy as np
import pandas as pd
import pytest

from cases.errors import CasebookError
from cases.lifecycle.selection import CVResult, expanding_time_folds, select


def test_expanding_folds_train_strictly_before_validation():
    period = pd.Series([1, 1, 2, 2, 3, 3, 4, 4, 5])
    folds = expanding_time_folds(period, 3)
    assert len(folds) == 3
    for (train, val), expected_val in zip(folds, (3, 4, 5)):
        assert set(period.iloc[val]) == {expected_val}
        assert period.iloc[train].max() < expected_val
        assert not set(train) & set(val)
    assert len(folds[0][0]) == 4 and len(folds[2][0]) == 8  # the window expands


def test_too_few_periods_is_a_clear_error():
    with pytest.raises(CasebookError, match="needs at least 4 training periods"):
        expanding_time_folds(pd.Series([1, 2, 3]), 3)


def test_select_respects_metric_direction():
    a = CVResult("a", {}, [{"mae": 2.0, "auc": 0.7}])
    b = CVResult("b", {}, [{"mae": 1.0, "auc": 0.6}])
    assert select([a, b], "mae") == "b"
    assert select([a, b], "auc") == "a"
    with pytest.raises(CasebookError, match="not computed"):
        select([a], "rmse")


def test_training_data_in_separate_stretches_is_validated_a_whole_stretch_at_a_time():
    from cases.lifecycle.selection import describe_folds, expanding_time_folds, period_blocks

    weeks = np.r_[np.arange(0, 13), np.arange(52, 65), np.arange(104, 117)]  # 3 quarters
    period = pd.Series(np.repeat(weeks, 3))
    assert period_blocks(period).tolist() == [0] * 13 + [1] * 13 + [2] * 13
    folds = expanding_time_folds(period, 3)
    assert len(folds) == 2  # one fewer than the stretches
    for (tr, va), (lo, hi) in zip(folds, [(52, 64), (104, 116)]):
        assert set(period[va]) == set(range(lo, hi + 1)) and period[tr].max() < lo
    assert describe_folds(True, False, 3, period).startswith("2 expanding time folds over 3")
    # contiguous weeks (and a missing week or two) keep the weekly folds
    weekly = pd.Series(np.r_[0, 1, 2, 4, 5, 6])
    assert period_blocks(weekly).tolist() == list(range(6))
    assert [set(weekly[va]) for _, va in expanding_time_folds(weekly, 2)] == [{5}, {6}]
