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
