"""The housing case whole through the stage scripts on a small simulated market, and on a small
file in the King County schema (the real reader end to end)."""


import json

import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.housing.data import simulate
from tests.conftest import run_case as run_case_stages

pytestmark = pytest.mark.slow
SMALL = ["case.train.lgbm.n_estimators=40", "case.train.imputer_lgbm.n_estimators=40",
         "case.evaluate.latency_samples=20", "case.analysis.learning_curve=[500,1000]",
         "case.analysis.timing_rows=2000"]


def run_case(tmp_path, *overrides):
    return run_case_stages(tmp_path, "housing", *SMALL, *overrides)


def test_housing_pipeline_on_the_simulator(tmp_path):
    m, a, rep = run_case(tmp_path, "case.data.world.listings=3000")
    cfg = compose(["case=housing"]).case
    strategies = set(cfg.train.strategies)
    timing = json.loads((rep / "analysis_timing.json").read_text())  # the machine's figures
    seconds = {(r["mechanism"], r["strategy"]): r["fill_seconds"] for r in timing["fill_seconds"]}
    for mech in ("mcar", "mar", "mnar"):
        assert set(m["tasks"]["price"][mech]["test"]) == strategies | {"baseline"}
        rows = [r for r in a["strategies"] if r["mechanism"] == mech]
        # `drop` is the masked views' baseline: the naive answer every fill must beat
        assert {r["strategy"] for r in rows} == strategies | {"drop", "oracle"}
        for r in rows:  # the analysis quotes the evaluate stage's own test figures
            if r["strategy"] != "oracle":
                name = "baseline" if r["strategy"] == "drop" else r["strategy"]
                assert r["rmse"] == m["tasks"]["price"][mech]["test"][name]["rmse"]
            if r["strategy"] not in ("drop", "native", "oracle"):
                assert r["sqft_mape"] > 0 and seconds[(mech, r["strategy"])] > 0
            assert "fill_seconds" not in r
        assert (rep / f"analysis/downstream_{mech}.png").exists()
    assert {"r2", "mae_dollars", "masked_rmse", "kept_rmse"} <= set(
        m["tasks"]["price"]["mar"]["test"]["knn"])
    assert [r["listings"] for r in a["learning_curve"]][-1] == m["split"]["train_rows"]
    assert (rep / "eda/mask_by_size.png").exists()
    # the Bayes floor: the noise-free log price, never a feature, below every model
    meta = json.loads((tmp_path / "data/housing/features.json").read_text())
    assert all("truth_log_price" not in cols for cols in meta["views"].values())
    floor = m["tasks"]["price"]["mar"]["floor"]
    assert floor["available"] and floor["test"]["rmse"] < m["test"]["rmse"] < m["baseline"]["rmse"]
    assert m["gap_closed"] == floor["gap_closed"] and 0 < m["gap_closed"] < 1
    assert a["floor_test_rmse"] < min(r["test_rmse"] for r in a["learning_curve"])
    assert [r["seeds"] for r in a["learning_curve"]] == [3, 3, 1]
    talk = (rep / "talking_points.md").read_text()
    assert "oracle" in talk and "mnar" in talk
    assert "When the missing rate drifts" in (rep / "rollout.md").read_text()
    # the report stage ran the claims check; rerun on the written files, then plant a figure
    from cases.stages.report import check_files

    run_cfg = compose(["case=housing", *SMALL, "case.data.world.listings=3000",
                       f"paths.root={tmp_path}"])
    assert check_files(run_cfg) == []
    champion, gate = (m["tasks"]["price"]["mar"][k] for k in ("selected", "gate"))
    rollout = (rep / "rollout.md").read_text()
    assert (f"Ship `{champion}`" if gate["passed"] else
            f"`{champion}` (selected for the mar mechanism) failed its gate") in rollout
    other = next(s for s in strategies if s != champion)
    (rep / "rollout.md").write_text(rollout + f"\nShip `{other}` for the mar mechanism.\n"
                                    "The fill saves 12,345 dollars a year.\n")
    reasons = [p.reason for p in check_files(run_cfg)]
    assert any("12,345" in r for r in reasons) and any(f"ships `{other}`" in r for r in reasons)


def test_housing_pipeline_on_a_file_in_the_king_county_schema(tmp_path):
    cfg = compose(["case=housing"]).case
    homes = simulate({**cfg.data.world, "listings": 1500})
    kc = pd.DataFrame({
        "id": homes["id"], "date": homes["sale_date"].dt.strftime("%Y%m%dT000000"),
        "price": homes["price"], "bedrooms": homes["bedrooms"].astype(int),
        "bathrooms": homes["bathrooms"], "sqft_living": homes["sqft_living"].astype(int),
        "sqft_lot": homes["sqft_lot"].astype(int), "floors": "1", "waterfront": 0, "view": 0,
        "condition": 3, "grade": homes["grade"].astype(int),
        "sqft_above": homes["sqft_above"].astype(int),
        "sqft_basement": homes["sqft_basement"].astype(int),
        "yr_built": homes["yr_built"].astype(int), "yr_renovated": 0,
        "zipcode": homes["zipcode"], "lat": homes["lat"], "long": homes["long"],
        "sqft_living15": 1800, "sqft_lot15": 7000})
    path = tmp_path / "kc_house_data.csv"
    kc.to_csv(path, index=False, quoting=1)  # everything quoted, ids keep their zeros
    m, a, _ = run_case(tmp_path, "case.data.source=real", f"case.data.path={path}")
    assert m["source"] == "real" and m["rows"] == 1500
    assert np.isfinite(a["plateau"]["all_rmse"])
