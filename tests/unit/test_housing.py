"""Housing: the masks hit their rate and mechanism, the sum rule survives masking, the King
County reader keeps the file as published, no fill sees test rows, strategies reproduce."""

import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.housing import data as hd
from cases.housing.imputers import STRATEGIES, GroupMedianFill, KNNFill, fill_of, strategy
from cases.housing.tasks import make_tasks
from cases.lifecycle.models import lgbm_pipeline


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=housing"]).case


@pytest.fixture(scope="module")
def homes(cfg):
    world = {**cfg.data.world, "listings": 20000}
    return hd.simulate(world)


def test_masks_hit_rate_exactly_and_hide_the_three_columns_together(cfg, homes):
    masked = hd.mask(homes, cfg.data.mask)
    for mech in hd.MECHANISMS:
        miss = masked[f"missing_{mech}"]
        assert miss.sum() == round(0.2 * len(homes))
        for col in hd.SQFT:
            assert (masked[f"{col}_{mech}"].isna() == miss).all()
        kept = ~miss
        assert np.allclose(masked.loc[kept, f"sqft_above_{mech}"]
                           + masked.loc[kept, f"sqft_basement_{mech}"],
                           masked.loc[kept, f"sqft_living_{mech}"])
    m = {**cfg.data.mask, "rate": 0.35}
    assert hd.mask_rows(homes, "mar", m).sum() == round(0.35 * len(homes))


def test_each_mask_depends_on_what_it_claims(cfg, homes):
    masked = hd.mask(homes, cfg.data.mask)
    size = pd.qcut(homes["sqft_living"], 5, labels=False)
    old = homes["yr_built"] < homes["yr_built"].median()
    rate = {m: masked[f"missing_{m}"].groupby(size).mean() for m in hd.MECHANISMS}
    # completely at random: flat in size and age
    assert rate["mcar"].max() - rate["mcar"].min() < 0.03
    assert abs(masked.loc[old, "missing_mcar"].mean()
               - masked.loc[~old, "missing_mcar"].mean()) < 0.02
    # not at random: larger homes go missing far more often
    assert rate["mnar"].iloc[-1] > 3 * rate["mnar"].iloc[0]
    # at random given observed columns: older homes more often, and within an age band the
    # size of masked and kept homes is close (size matters only through age)
    assert masked.loc[old, "missing_mar"].mean() > 1.5 * masked.loc[~old, "missing_mar"].mean()
    band = homes["yr_built"].between(1965, 1975)
    s = homes.loc[band, "sqft_living"]
    mar = masked.loc[band, "missing_mar"]
    mnar = masked.loc[band, "missing_mnar"]
    assert abs(s[mar].mean() / s[~mar].mean() - 1) < 0.05
    assert s[mnar].mean() / s[~mnar].mean() - 1 > 0.25


def test_mask_rate_must_be_a_share(cfg, homes):
    with pytest.raises(CasebookError, match="mask.rate"):
        hd.mask_rows(homes, "mcar", {**cfg.data.mask, "rate": 20})


def _kc_file(path, rows=None):
    header = ("id,date,price,bedrooms,bathrooms,sqft_living,sqft_lot,floors,waterfront,view,"
              "condition,grade,sqft_above,sqft_basement,yr_built,yr_renovated,zipcode,lat,long,"
              "sqft_living15,sqft_lot15")
    rows = rows or [
        '"7129300520","20141013T000000",221900,3,1,1180,5650,"1",0,0,3,7,1180,0,1955,0,"98178",'
        '47.5112,-122.257,1340,5650',
        '"0822039084","20150319T000000",1.225e+006,33,1.75,1620,6000,"1",0,0,5,7,1040,580,1947,0,'
        '"98103",47.6878,-122.331,1330,4700',
        '"6414100192","20141209T000000",538000,3,2.25,2570,7242,"2",0,0,3,7,2170,400,1951,1991,'
        '"98125",47.721,-122.319,1690,7639',
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_real_reader_keeps_the_file_as_published(tmp_path):
    frame = hd.read_kc(str(_kc_file(tmp_path / "kc.csv")))
    assert frame["id"].tolist()[1] == "0822039084"
    assert frame["price"].iloc[1] == 1_225_000.0
    assert frame["bedrooms"].max() == 33
    assert frame["zipcode"].iloc[0] == "98178"
    assert frame["sale_date"].iloc[0] == pd.Timestamp("2014-10-13")


def test_real_reader_refuses_a_broken_sum_rule_and_missing_columns(tmp_path):
    bad = ('"1","20141013T000000",221900,3,1,1180,5650,"1",0,0,3,7,1000,0,1955,0,"98178",47.5,'
           '-122.2,1340,5650')
    with pytest.raises(CasebookError, match=r"kc.csv: sqft_living must equal .* row 2"):
        hd.read_kc(str(_kc_file(tmp_path / "kc.csv", [bad])))
    (tmp_path / "short.csv").write_text("id,date,price\n1,20141013T000000,3\n")
    with pytest.raises(CasebookError, match=r"short.csv: missing column\(s\) bedrooms"):
        hd.read_kc(str(tmp_path / "short.csv"))
    (tmp_path / "date.csv").write_text(_kc_file(tmp_path / "k2.csv").read_text().replace(
        "20141013T000000", "13/10/2014"))
    with pytest.raises(CasebookError, match="column 'date': expected dates like"):
        hd.read_kc(str(tmp_path / "date.csv"))


def _view(cfg, homes, mech="mar"):
    masked = hd.mask(homes, cfg.data.mask)
    masked["sale_days"] = (masked["sale_date"] - masked["sale_date"].min()).dt.days.astype(float)
    masked["zipcode"] = masked["zipcode"].astype(str)
    cols = list(cfg.features.views[mech])
    y = np.log(masked["price"])
    return masked, cols, y


def _model(cfg, name, cols, seed=0):
    small = {**cfg.train, "imputer_lgbm": {**cfg.train.imputer_lgbm, "n_estimators": 30}}
    price = lgbm_pipeline("regression", ["zipcode"], params={"n_estimators": 30, "n_jobs": 1},
                          seed=seed)
    return strategy(name, cols, price, small, seed)


def test_no_fill_sees_test_rows(cfg, homes):
    """Poison the test rows' known sizes: a fill fitted on the training rows must not move."""
    frame, cols, y = _view(cfg, homes.head(4000).copy())
    train, test = frame.iloc[:3000], frame.iloc[3000:]
    poisoned = frame.copy()
    living = cols[0]
    poisoned.loc[test.index, living] = poisoned.loc[test.index, living] * 50
    for name in STRATEGIES:
        a = _model(cfg, name, cols).fit(train[cols], y.iloc[:3000])
        b = _model(cfg, name, cols).fit(poisoned.loc[train.index, cols], y.iloc[:3000])
        np.testing.assert_array_equal(a.predict(test[cols]), b.predict(test[cols]), err_msg=name)
        fa, fb = fill_of(a), fill_of(b)
        if fa is not None:
            pd.testing.assert_frame_equal(fa.fill(test[cols]), fb.fill(test[cols]))


def test_strategies_reproduce_with_a_seed(cfg, homes):
    frame, cols, y = _view(cfg, homes.head(3000).copy())
    for name in STRATEGIES:
        p1 = _model(cfg, name, cols, seed=5).fit(frame[cols], y).predict(frame[cols])
        p2 = _model(cfg, name, cols, seed=5).fit(frame[cols], y).predict(frame[cols])
        np.testing.assert_array_equal(p1, p2, err_msg=name)


def test_fills_fill_only_the_missing_rows_and_beat_the_median_where_they_should(cfg, homes):
    frame, cols, y = _view(cfg, homes.head(8000).copy(), "mar")
    living = cols[0]
    miss = frame[living].isna()
    truth = frame.loc[miss, "sqft_living"]
    errors = {}
    for name in ("median", "group_median", "knn", "iterative", "lgbm_imputer"):
        fill = fill_of(_model(cfg, name, cols).fit(frame[cols], y))
        out = fill.transform(frame[cols])
        assert out[living].notna().all()
        pd.testing.assert_series_equal(out.loc[~miss, living], frame.loc[~miss, living])
        errors[name] = float((out.loc[miss, living] - truth).abs().mean())
    for name in ("group_median", "knn", "iterative", "lgbm_imputer"):
        assert errors[name] < errors["median"], errors


def test_group_median_backs_off_to_the_zipcode_then_to_all_homes():
    X = pd.DataFrame({"zipcode": ["a"] * 6 + ["b"] * 6, "bedrooms": [2] * 6 + [3] * 6,
                      "sqft_living": [1000.0] * 6 + [3000.0] * 6, "sqft_basement": 0.0})
    fill = GroupMedianFill(min_count=5).fit(X)
    probe = pd.DataFrame({"zipcode": ["a", "b", "z"], "bedrooms": [2, 5, 2],
                          "sqft_living": np.nan, "sqft_basement": np.nan})
    assert fill.transform(probe)["sqft_living"].tolist() == [1000.0, 3000.0, 2000.0]


def test_knn_fill_is_the_average_of_the_nearest_known_homes():
    X = pd.DataFrame({"lat": [0.0, 0.0, 10.0, 10.0], "long": 0.0, "bedrooms": 3.0,
                      "bathrooms": 2.0, "grade": 7.0, "yr_built": 1990.0, "sqft_lot": 5000.0,
                      "sqft_living": [1000.0, 1200.0, 3000.0, 3400.0],
                      "sqft_basement": [0.0, 0.0, 500.0, 700.0]})
    fill = KNNFill(neighbors=2).fit(X)
    probe = X.iloc[[3]].assign(sqft_living=np.nan, sqft_basement=np.nan, lat=9.0)
    out = fill.transform(probe)
    assert out["sqft_living"].iloc[0] == 3200.0 and out["sqft_basement"].iloc[0] == 600.0


def test_unknown_strategy_is_refused_by_name(cfg):
    bad = {**cfg, "train": {**cfg.train, "strategies": ["mean", "magic"]}}
    with pytest.raises(CasebookError, match="case.train.strategies: unknown magic"):
        make_tasks(bad, 0)


def test_what_the_real_file_offers_beyond_the_simulator_joins_every_view(tmp_path, cfg, homes):
    from cases.housing.features import build

    frame = hd.read_kc(str(_kc_file(tmp_path / "kc.csv")))
    assert frame["sqft_living15"].tolist() == [1340.0, 1330.0, 1690.0]
    assert frame["yr_renovated"].iloc[2] == 1991 and set(hd.EXTRA) <= set(frame.columns)
    real = build({"homes": hd.mask(pd.concat([frame] * 10, ignore_index=True).assign(
        id=lambda d: d.index.astype(str)), cfg.data.mask)}, cfg)
    sim = build({"homes": hd.mask(homes.head(500), cfg.data.mask)}, cfg)
    for view, cols in cfg.features.views.items():
        assert real.views[view] == [*cols, *hd.EXTRA] and sim.views[view] == list(cols)
    assert real.split_info["extra_features"] == list(hd.EXTRA)
    assert sim.split_info["extra_features"] == []
    bad = _kc_file(tmp_path / "k3.csv").read_text().replace(',"98178",47.5112,-122.257,1340,',
                                                            ',"98178",47.5112,-122.257,big,')
    (tmp_path / "bad.csv").write_text(bad)
    with pytest.raises(CasebookError, match="column 'sqft_living15': expected a number"):
        hd.read_kc(str(tmp_path / "bad.csv"))
