"""Report pages render markdown but never raw HTML: data values (file names, categories, column
names) reach the pages, and a page must not run what a data file names."""

import pytest

from cases.lifecycle.portfolio import markdown_page, render_markdown

EVIL = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("text", [
    f"Data: file `data.csv` and {EVIL}.csv",          # inline, outside code
    f"{EVIL}\n\nnext paragraph",                       # a block of its own
    f"| file | rows |\n| --- | --- |\n| {EVIL}.csv | 3 |",  # in a table cell
    "<script>alert(1)</script>",
    "<div onclick=alert(1)>x</div>",
])
def test_raw_html_is_shown_as_text(text):
    out = render_markdown(text)
    assert "<img src=x" not in out and "<script" not in out and "<div" not in out
    assert "&lt;" in out


def test_tables_images_links_and_code_still_render():
    out = render_markdown("# T\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n![plot](eda/p.png)\n\n"
                          "[metrics](metrics.json) and `x < 3`\n\n```\nif a < b:\n```\n")
    assert "<table>" in out and "<td>1</td>" in out
    assert '<img alt="plot" src="eda/p.png"' in out
    assert '<a href="metrics.json">metrics</a>' in out
    assert "<code>x &lt; 3</code>" in out and "if a &lt; b:" in out


def test_script_urls_are_removed():
    out = render_markdown("[x](javascript:alert(1)) ![y](data:text/html,hi) [ok](https://a.b/c)")
    assert "javascript:" not in out and "data:text" not in out
    assert 'href="https://a.b/c"' in out


def test_page_title_and_body_are_escaped():
    page = markdown_page(f"{EVIL} title", f"# {EVIL}")
    assert "<img src=x" not in page


def test_card_shows_intervals_within_noise_and_breaches():
    from cases.lifecycle.portfolio import card, card_html

    guard = {"metric": "tail_mae", "model": 172.1, "baseline": 170.2, "tolerance": 0.0,
             "diff_interval": [0.5, 3.4], "breached": True, "action": "flag"}
    gate = {"metric": "mae", "model": 21.7, "baseline": 24.5, "relative_improvement": 0.115,
            "min_improvement": 0.01, "passed": True, "improvement_interval": [0.09, 0.14],
            "guardrails": [guard]}
    noise = {"diff": -0.002, "lo": -0.01, "hi": 0.006, "within_noise": True}
    clear = {"diff": -2.8, "lo": -3.4, "hi": -2.2, "within_noise": False}
    view = {"selected": "lgbm", "gate": gate,
            "test": {"lgbm": {"mae": 21.7, "tail_mae": 172.1, "r2": 0.3},
                     "baseline": {"mae": 24.5, "tail_mae": 170.2, "r2": 0.302}},
            "intervals": {"lgbm": {"mae": [21.1, 22.3], "tail_mae": [160.0, 185.0],
                                   "r2": [0.28, 0.32]}},
            "paired": {"lgbm": {"vs_baseline": {"mae": clear, "r2": noise,
                                                "tail_mae": {**clear, "diff": 1.9}}}}}
    metrics = {"primary": {"view": "v"}, "selected_model": "lgbm", "gate": gate,
               "tasks": {"t": {"v": view}}}
    cfg = {"name": "c", "title": "T", "question": "Q?", "report": {
        "card_figures": ["t.mae", "t.tail_mae", "t.r2"], "key_plot": "p.png"}}
    html = card_html(card(cfg, metrics, {"source": "s", "description": "d", "rows": 10},
                          {"run_id": "r", "experiment_id": "1"}, "http://ui"))
    # rounded to the figures' size: minutes to one decimal, scores to three
    assert "[21.1, 22.3]" in html and "-2.800 [-3.400, -2.200]" in html
    assert 'class="paired noise"' in html and "within noise" in html  # r2: no winner named
    # red: the breached guardrail, and the model worse than the baseline (flagged)
    assert '<tr data-metric="t.tail_mae" class="breach loses">' in html
    assert html.count('class="flag"') == 2  # tail_mae (172.1 > 170.2), r2 (0.3 < 0.302)
    assert '<tr data-metric="t.mae">' in html  # better than the baseline: no flag
    assert "Guardrail tail_mae breached (flag)" in html and "[+9.0%, +14.0%]" in html
    # a bound outside noise that is not zero shows its sign (fraud: "+0.116 [+0.000, +0.289]")
    view["paired"]["lgbm"]["vs_baseline"]["mae"] = {"diff": 0.116, "lo": 1.2e-5, "hi": 0.289,
                                                    "within_noise": False}
    gate["improvement_interval"] = [0.0004, 0.14]
    html = card_html(card(cfg, metrics, {"source": "s", "description": "d", "rows": 10},
                          {"run_id": "r", "experiment_id": "1"}, "http://ui"))
    assert "+0.116 [+0.00001, +0.28900]" in html and "[+0.04%, +14.00%]" in html
    # readable labels with the direction; the task's unit where the config gives one
    assert "t: MAE" in html and "t: R\u00b2" in html and "&darr;" in html and "&uarr;" in html


def _card(case: str, improvement: float, passed: bool = True, **extra) -> dict:
    gate = {"metric": "auc", "model": 0.8, "baseline": 0.7, "relative_improvement": improvement,
            "min_improvement": 0.0, "passed": passed, "improvement_interval": [0.01, 0.2]}
    return {"case": case, "title": case.title(), "question": "Q?", "source": "s",
            "description": "d", "rows": 12345, "selected_model": "lgbm", "gate": gate,
            "headline_higher_is_better": True, "figures": [], "links": [
                ["MLflow run", "http://ui/#/experiments/1/runs/r"], ["EDA", f"{case}/eda.html"]],
            "plot": f"{case}/p.png", "plot_title": "p", "gates": [],
            "run": {"date": "2026-01-02 03:04 UTC", "commit": "abcdef0123456789", "dirty": False},
            **extra}


def test_index_has_a_summary_in_the_configured_order_and_a_lightbox():
    from cases.lifecycle.portfolio import index_html

    out = index_html([_card("alpha", 0.1), _card("zulu", -0.05, passed=False),
                      _card("mike", 0.02)], ui="http://host:5555", order=["zulu", "mike"])
    summary = out[out.index('id="summary"'):out.index('class="cards"')]
    rows = summary.split('<tr data-case="')[1:]
    assert [r.split('"')[0] for r in rows] == ["zulu", "mike", "alpha"]  # unlisted ones last
    assert "+10.0%" in rows[2] and "[+1.0%, +20.0%]" in rows[2]
    assert "12,345 rows" in rows[0] and "abcdef0123" in rows[0] and "2026-01-02" in rows[0]
    assert "worse" in rows[0] and "failed" in rows[0] and "worse" not in rows[1]
    # the configured MLflow UI, in a new tab; plots are links to themselves, opened on the page
    assert 'href="http://host:5555" target="_blank"' in out
    assert 'href="http://ui/#/experiments/1/runs/r" target="_blank" rel="noopener"' in out
    assert '<a class="zoom" href="alpha/p.png"' in out and 'id="lightbox"' in out
    assert out.index('id="case-zulu"') < out.index('id="case-alpha"')


def test_card_shows_an_optional_extra_line():
    from cases.lifecycle.portfolio import card_html

    assert '<p class="extra">floor: 1.2</p>' in card_html(_card("a", 0.1, extra=["floor: 1.2"]))
    assert 'class="extra"' not in card_html(_card("a", 0.1))


def test_markdown_images_open_full_size_and_web_links_in_a_new_tab():
    out = render_markdown("![plot](evaluation/p.png)\n\n[run](http://ui/#/x) [f](m.json)")
    assert '<a class="zoom" href="evaluation/p.png" title="plot"><img alt="plot"' in out
    assert 'href="http://ui/#/x" rel="noopener" target="_blank"' in out or \
        'href="http://ui/#/x" target="_blank" rel="noopener"' in out
    assert '<a href="m.json">f</a>' in out


@pytest.mark.parametrize(("values", "expected"), [
    ([78079.929], "78,080"), ([21.734], "21.7"), ([0.71234], "0.712"), ([-3.456, 120.0], "-3")])
def test_figures_are_rounded_to_their_size(values, expected):
    from cases.lifecycle.portfolio import fmt

    assert fmt(values[0], None if len(values) == 1 else 0) == expected


def test_card_labels_units_and_direction():
    from cases.lifecycle.portfolio import loses, metric_label

    assert metric_label("regression", "mae", {"regression": "minutes"}) == {
        "label": "regression: MAE", "unit": "minutes", "higher_is_better": False}
    assert metric_label("price", "mae_dollars", {"price": "log price"})["unit"] == "$"
    assert metric_label("accept", "ece", {})["label"] == "accept: calibration error (ECE)"
    assert metric_label("d", "auc", {})["higher_is_better"]
    assert loses({"model": 0.6, "baseline": 0.7, "higher_is_better": True})
    assert not loses({"model": 10.0, "baseline": 12.0, "higher_is_better": False})
    assert not loses({"model": None, "baseline": 12.0})


def test_eda_tables_format_years_ids_integers_and_percentages():
    import pandas as pd

    from cases.lifecycle.eda import markdown_table

    out = markdown_table(pd.DataFrame({
        "year": [2013, 2013], "flight": [3535, 51], "median": [6.0, 5.0], "flights": [1200, 3],
        "share_15min": [38.8, 21.0], "share": [0.25, 0.5], "missing_pct": [0.0, 4.0],
        "mean": [21.9, 3.1234]}))
    first, second = out.splitlines()[2:4]
    assert first == "| 2013 | 3535 | 6 | 1,200 | 38.8% | 25.0% | 0.0% | 21.900 |"
    assert second == "| 2013 | 51 | 5 | 3 | 21.0% | 50.0% | 4.0% | 3.123 |"


def test_a_value_that_rounds_to_zero_prints_without_a_minus_sign():
    import pandas as pd

    from cases.lifecycle.eda import markdown_table, number

    assert number(-0.003, ".2f") == "0.00"
    assert number(-0.0002, "+.3f") == "+0.000"
    assert number(-0.0004, ".1%") == "0.0%"
    assert number(-0.006, ".2f") == "-0.01"  # a value that shows is printed as it is
    assert number(-1e-9, ",.3f") == "0.000"
    out = markdown_table(pd.DataFrame({"change": [-0.0001, -0.012], "missing_pct": [-0.01, 2.0]}))
    assert out.splitlines()[2:4] == ["| 0.000 | 0.0% |", "| -0.012 | 2.0% |"]


def test_flights_guardrail_names_the_model_and_prints_its_figures():
    """The rollout printed the model's raw tail MAE where its name belongs ("`157.4933790619036`
    tail_mae against the baseline's"), a figure the claims check could not see in a code span."""
    from cases.flights.story import _guardrails

    entry = {"selected": "lgbm-huber", "gate": {"guardrails": [
        {"metric": "tail_mae", "model": 157.4933790619036, "baseline": 170.16637125470206,
         "tolerance": 0.0, "diff_interval": [-18.67, -4.37], "breached": False,
         "action": "flag"}]}}
    assert _guardrails(entry) == ("`lgbm-huber` tail_mae 157 against the baseline's 170, "
                                  "difference interval [-18.7, -4.4] with a tolerance of 0: "
                                  "not breached.")
