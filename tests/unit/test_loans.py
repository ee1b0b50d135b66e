import numpy as np
import pandas as pd
import pytest

from cases.config import compose
from cases.errors import CasebookError
from cases.lifecycle.models import linear_pipeline
from cases.loans import explain as ex
from cases.loans.analysis import load_applicants, named_applicants
from cases.loans.data import SCENARIO, simulate, true_logit


@pytest.fixture(scope="module")
def cfg():
    return compose(["case=loans"]).case


@pytest.fixture(scope="module")
def world(cfg):
    """A scenario population and a logistic model trained on it."""
    frame = simulate({**cfg.data.scenario, "rows": 8000}, seed=3)
    cols = list(cfg.features.views.scenario)
    model = linear_pipeline("binary", cols, [], max_iter=2000).fit(frame[cols], frame["approve"])
    return frame, cols, model


def test_reason_codes_only_negative_at_most_k_strongest_first():
    cols = ["a", "b", "c", "d", "e", "f"]
    texts = {c: f"text {c}" for c in cols}
    contrib = np.array([[-0.1, 0.5, -0.4, -0.05, -0.2, -0.3], [0.1, 0.2, 0.0, 0.3, 0.1, 0.2]])
    codes = ex.reason_codes(contrib, cols, texts, max_reasons=4)
    assert [c[0] for c in codes[0]] == ["c", "f", "e", "a"]
    assert all(c[2] < 0 for c in codes[0]) and codes[0][0][1] == "text c"
    assert codes[1] == []  # nothing pushed toward rejection: no reason invented
    with pytest.raises(CasebookError, match="no text for f"):
        ex.reason_codes(contrib, cols, {c: "x" for c in cols[:5]})


def test_protected_attributes_are_never_inputs_or_reasons(cfg, world):
    protected = {c for group in cfg.features.protected.values() for c in group}
    for view, cols in cfg.features.views.items():
        assert not protected & set(cols), view
        assert not protected - set(cfg.features.forbidden), "every protected column is forbidden"
    with pytest.raises(CasebookError, match="protected attribute"):
        ex.check_inputs_not_protected(["debt_k", "sex"], protected)
    frame, cols, model = world
    rejected = frame[cols][ex.approval(model, frame[cols]) < 0.5].head(20)
    contrib = ex.agnostic_shap(model, rejected, frame[cols].head(50), seed=0, permutations=2)
    reasons = ex.reason_codes(contrib, cols, dict(cfg.analysis.reason_texts))
    given = {f for r in reasons for f, _, _ in r}
    assert given and given <= set(cols) and not given & protected


def test_scenario_truth_is_recovered_for_alice_bob_candace(cfg, world):
    frame, cols, model = world
    people = named_applicants(cfg.analysis)
    score = ex.approval(model, people[cols])
    truth = 1 / (1 + np.exp(-true_logit(people[cols], cfg.data.scenario)))
    assert list(people["name"]) == ["Alice", "Bob", "Candace"]
    assert (score < 0.5).tolist() == [True, True, False] == (truth < 0.5).tolist()
    contrib = ex.agnostic_shap(model, people[cols].head(2), frame[cols].head(100), seed=0)
    assert ex.top_reason(contrib, cols) == ["debt_k", "debt_k"]
    grid = np.linspace(0, 40, 9)
    avg = ex.curve(model, frame[cols].head(500), "debt_k", grid,
                   {"n_cards": 10, "credit_age_years": 5})
    assert (np.diff(avg) < 0).all()  # the acceptance curve falls with debt


def test_counterfactual_is_verified_by_rescoring(cfg, world):
    frame, cols, model = world
    bob = named_applicants(cfg.analysis).iloc[[1]][cols]
    cf = ex.counterfactual(model, bob, {"debt_k": "down", "inquiries_6m": "down"}, frame[cols], 0.5)
    assert cf["verified"] and cf["rescored"] >= 0.5
    assert cf["feature"] == "debt_k" and cf["to"] < cf["from"] == 15
    changed = bob.copy()
    changed[cf["feature"]] = cf["to"]
    assert ex.approval(model, changed)[0] == pytest.approx(cf["rescored"])
    just_before = bob.copy()
    just_before["debt_k"] = cf["to"] + 0.2
    assert ex.approval(model, just_before)[0] < 0.5  # the smallest change, not any change


def test_scorecard_points_are_never_positive(world):
    frame, cols, model = world
    pts = ex.scorecard_points(model, frame[cols].head(50), frame[cols])
    assert (pts <= 1e-12).all()


def test_simulator_is_deterministic_and_in_range(cfg):
    a = simulate({**cfg.data.scenario, "rows": 2000}, seed=5)
    b = simulate({**cfg.data.scenario, "rows": 2000}, seed=5)
    pd.testing.assert_frame_equal(a, b)
    for col in SCENARIO.columns:
        assert a[col.name].between(col.min, col.max).all(), col.name
    assert 0.2 < a["approve"].mean() < 0.9


def test_applicants_file_errors_name_the_column(tmp_path):
    good = {"n_cards": 3, "credit_age_years": 4, "debt_k": 9, "income_k": 50,
            "utilization": 0.2, "delinquencies": 0, "inquiries_6m": 1}
    path = tmp_path / "applicants.csv"
    pd.DataFrame([{**good, "name": "Dee"}]).to_csv(path, index=False)
    assert load_applicants(str(path))["name"].tolist() == ["Dee"]
    pd.DataFrame([{**good, "race": "x"}]).to_csv(path, index=False)
    with pytest.raises(CasebookError, match="unknown column.*race"):
        load_applicants(str(path))
    pd.DataFrame([{k: v for k, v in good.items() if k != "debt_k"}]).to_csv(path, index=False)
    with pytest.raises(CasebookError, match=r"missing column\(s\) debt_k"):
        load_applicants(str(path))
    pd.DataFrame([{**good, "utilization": 1.5}]).to_csv(path, index=False)
    with pytest.raises(CasebookError, match=r"column 'utilization': expected values in \[0, 1\]"):
        load_applicants(str(path))


def test_agnostic_shap_in_batches_gives_the_values_of_shaps_permutation_explainer(world):
    """The batched permutation SHAP is SHAP's own (same permutations from the same seed, same
    walks) to rounding, in far fewer predict calls, whatever the batch size; and a row equal
    to every background row on some inputs gives those inputs exactly 0."""
    import shap

    frame, cols, model = world
    rows, background = frame[cols].iloc[100:112].copy(), frame[cols].head(40)
    rows.iloc[3, 0] = background.iloc[0, 0]
    background = background.assign(**{cols[0]: background.iloc[0, 0]})  # input 0 never varies
    calls = []

    def f(arr):
        return ex.approval(model, pd.DataFrame(arr, columns=cols))

    masker = shap.maskers.Independent(background.to_numpy(dtype=float), max_samples=40)
    expected = shap.PermutationExplainer(f, masker, seed=0)(
        rows.to_numpy(dtype=float), max_evals=3 * (2 * len(cols) + 1), silent=True,
        batch_size=2 * len(cols) + 1).values

    approval = ex.approval

    def counted(m, X):
        calls.append(len(X))
        return approval(m, X)

    # a row at a time, batches of a few rows, every row at once
    for batch_rows, n_calls in ((1, {len(rows)}), (5_000, set(range(2, len(rows)))),
                                (10 ** 6, {1})):
        calls.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ex, "approval", counted)
            got = ex.agnostic_shap(model, rows, background, 0, permutations=3,
                                   batch_rows=batch_rows)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        assert len(calls) in n_calls
    assert (got[3, 0] == 0) and np.abs(got[:, 1:]).sum() > 0


@pytest.mark.parametrize("p", [7, 70])  # one 64-bit word per coalition, and two
def test_distinct_masked_inputs_are_scored_once(p):
    """Each distinct masked input (the coalition where the row differs from that background
    row, and the background row) appears once among the model rows, and every (coalition,
    background row) maps to the input it reads."""
    rng = np.random.default_rng(p)
    masks, differs = rng.random((30, p)) < 0.5, rng.random((6, p)) < 3 / p
    first, inverse = ex._distinct_masked(masks, differs)
    on = (masks[:, None, :] & differs[None, :, :]).reshape(-1, p)
    b = np.tile(np.arange(len(differs)), len(masks))
    read = np.column_stack([on, b])  # what each (coalition, background row) reads
    assert len(first) == len(np.unique(read, axis=0)) < len(read)
    np.testing.assert_array_equal(read[first][inverse], read)


def test_reasons_against_the_nearest_approved_are_what_differs_and_stable(cfg, world):
    """Alice and Bob differ from Candace (approved) only in debt: their only reason is debt,
    whatever else the training pool holds, and the same inputs give the same reasons in any
    batch and order."""
    frame, cols, model = world
    texts = dict(cfg.analysis.reason_texts)
    people = named_applicants(cfg.analysis)
    X = people[cols]
    score = ex.approval(model, X)
    assert (score[:2] < 0.5).all() and score[2] >= 0.5  # Alice, Bob rejected; Candace approved
    train_ok = frame[cols][ex.approval(model, frame[cols]) >= 0.5]
    pool = pd.concat([train_ok, X[score >= 0.5]], ignore_index=True)
    scale = frame[cols].std()
    codes, ref, contrib = ex.reference_reasons(model, X.iloc[:2], pool, scale, texts, 4, seed=0)
    assert [[c[0] for c in row] for row in codes] == [["debt_k"], ["debt_k"]]
    assert (pool.iloc[ref].to_numpy() == X.iloc[[2, 2]].to_numpy()).all()  # Candace
    np.testing.assert_allclose(contrib.sum(axis=1), score[:2] - score[2], atol=1e-12)
    # stable: another batch, another order, another run give the same values
    rej = frame[cols][ex.approval(model, frame[cols]) < 0.5].head(12)
    c1 = ex.reference_reasons(model, rej, pool, scale, texts, 4, seed=0)[2]
    c2 = ex.reference_reasons(model, rej.iloc[::-1], pool, scale, texts, 4, seed=0)[2][::-1]
    np.testing.assert_array_equal(c1, c2)
    # each row's values sum to its score minus its reference's (exact and sampled alike)
    r = ex.nearest_approved(rej, pool, scale)
    gap = ex.approval(model, rej) - ex.approval(model, pool.iloc[r])
    np.testing.assert_allclose(c1.sum(axis=1), gap, atol=1e-9)
    sampled = ex.reference_shapley(model, rej.reset_index(drop=True),
                                   pool.iloc[r].reset_index(drop=True), 0, max_exact=0)
    np.testing.assert_allclose(sampled.sum(axis=1), gap, atol=1e-9)
    assert np.corrcoef(sampled.ravel(), c1.ravel())[0, 1] > 0.9  # a linear-ish model: close


def test_adverse_impact_ratio_metric_and_its_bootstrap_twin_agree(cfg):
    from cases.lifecycle import bootstrap as bs
    from cases.loans.fairness import fairness_metrics, fairness_statistics

    rng = np.random.default_rng(0)
    n = 400
    rows = pd.DataFrame({"black": (rng.random(n) < 0.2).astype(float), "hispan": 0.0,
                         "white": 0.0, "male": np.where(rng.random(n) < 0.05, np.nan, 1.0)})
    rows["white"] = 1.0 - rows["black"]
    rows.loc[rows.index[:3], "male"] = 0.0
    score = rng.random(n) * np.where(rows["black"] == 1, 0.8, 1.0)
    m = fairness_metrics(None, score, rows, cfg)
    decided = score >= float(cfg.analysis.threshold)
    b, w = decided[rows["black"] == 1].mean(), decided[rows["white"] == 1].mean()
    assert m["air_race"] == pytest.approx(min(b, w) / max(b, w))
    assert set(m) == {"air_race", "air_sex"}  # missing sex: in no group, not a group
    st = fairness_statistics(None, score, rows, cfg)
    assert {k: s.point() for k, s in st.items()} == pytest.approx(m)
    boot = bs.resample_all({"m": st}, bs.Resamples(np.arange(n), 200, seed=0))["m"]["air_race"]
    lo, hi = bs.interval(boot)
    assert lo < m["air_race"] < hi
    # features only (a CV fold): no protected column, no fairness metric
    assert fairness_metrics(None, score, rows[[]], cfg) == {}
