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
    assert "[21.100, 22.300]" in html and "-2.800 [-3.400, -2.200]" in html
    assert 'class="paired noise"' in html and "within noise" in html  # r2: no winner named
    assert '<tr data-metric="t.tail_mae" class="breach">' in html  # red: the breached guardrail
    assert "Guardrail tail_mae breached (flag)" in html and "[+9.0%, +14.0%]" in html
