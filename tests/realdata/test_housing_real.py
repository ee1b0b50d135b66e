"""The King County sales file as published (../shared/data/kc_house_data.csv): the reader keeps
its quirks, the sum rule holds after masking, the simulator matches its calibration figures, and
the whole case runs on it."""

import json

import numpy as np
import pytest

from cases.config import compose
from cases.housing import data as hd
from tests.integration.test_housing_pipeline import run_case

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def kc_path():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "kc_house_data.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def test_the_file_is_read_as_published(kc_path):
    frame = hd.read_kc(str(kc_path))
    assert len(frame) == 21_613
    assert int(frame["id"].str.startswith("0").sum()) == 2_059
    assert frame["id"].nunique() == 21_436  # homes sold more than once are kept
    assert frame["price"].max() == 7_700_000 and round(frame["price"].mean(), 2) == 540_088.14
    assert frame["bedrooms"].max() == 33
    assert str(frame["sale_date"].min().date()) == "2014-05-02"


def test_the_sum_rule_holds_after_masking_the_real_file(kc_path):
    cfg = compose(["case=housing"]).case
    masked = hd.mask(hd.read_kc(str(kc_path)), cfg.data.mask)
    for mech in hd.MECHANISMS:
        miss = masked[f"missing_{mech}"]
        assert miss.sum() == round(0.2 * 21_613)
        assert masked.loc[miss, [f"{c}_{mech}" for c in hd.SQFT]].isna().all().all()
        kept = masked[~miss]
        np.testing.assert_allclose(kept[f"sqft_above_{mech}"] + kept[f"sqft_basement_{mech}"],
                                   kept[f"sqft_living_{mech}"])


def test_the_simulator_is_calibrated_on_the_real_sales(kc_path):
    cfg = compose(["case=housing"]).case
    real = hd.calibration_stats(hd.read_kc(str(kc_path)))
    sim = hd.calibration_stats(hd.simulate(cfg.data.world))
    close = {"sd_log_price": 0.05, "sd_log_sqft": 0.02, "corr_log_price_log_sqft": 0.05,
             "corr_log_sqft_grade": 0.05, "corr_log_sqft_bathrooms": 0.05,
             "corr_log_sqft_bedrooms": 0.05, "corr_log_sqft_yr_built": 0.05,
             "basement_share": 0.03, "basement_fraction_when_present": 0.03,
             "elasticity_log_sqft_within_zip": 0.05, "grade_coef_within_zip": 0.03,
             "resid_sd_within_zip": 0.03}
    for key, tol in close.items():
        assert abs(sim[key] - real[key]) <= tol, (key, sim[key], real[key])
    assert abs(sim["median_price"] / real["median_price"] - 1) < 0.1
    assert sim["median_sqft"] == real["median_sqft"] and sim["zipcodes"] == real["zipcodes"]


@pytest.mark.slow
def test_the_whole_case_runs_on_the_real_file(kc_path, tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.source=real", f"case.data.path={kc_path}")
    assert m["source"] == "real" and m["rows"] == 21_613
    assert "King County" in (rep / "rollout.md").read_text()
    oracle = m["tasks"]["price"]["oracle"]["test"]["lgbm"]
    assert oracle["r2"] > 0.8  # log price from size, grade and location
    assert json.loads((rep / "../../data/housing/ingest.json").read_text())["source"] == "real"
