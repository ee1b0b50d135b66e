"""The portfolio: one self-contained HTML page per report and an index with one card per case.
No server, no CDN: inline CSS and relative links, so the files open straight from disk."""

from __future__ import annotations

import html
import re
from typing import Iterable, Mapping

import markdown
import markdown.treeprocessors

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1d232b;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2rem 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:18px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:16px}
.card h2{font-size:1.15rem;margin:0 0 .4rem}
.question{font-style:italic;color:#48525e;font-size:.92rem}
.source{font-size:.85rem;color:#48525e}
.figures{width:100%;border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
.figures td,.figures th{border-bottom:1px solid #eceff2;padding:3px 4px;text-align:left}
.pass{color:#1a7f37;font-weight:600}.fail{color:#b42318;font-weight:600}
.interval,.paired{color:#48525e;font-size:.8rem}.noise{color:#8a6d00;font-size:.8rem}
tr.breach td{color:#b42318;font-weight:600}.gates{font-size:.82rem;color:#48525e}
.card img{width:100%;border:1px solid #eceff2;border-radius:6px}
.links a{margin-right:.8rem;font-size:.9rem}
article{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:20px 28px}
article table{border-collapse:collapse;font-size:.88rem}
article td,article th{border:1px solid #dde1e6;padding:3px 6px}
article img{max-width:100%}
nav{font-size:.9rem;margin-bottom:10px}
"""


def page(title: str, body: str, nav: str = "") -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{nav}{body}</main></body></html>\n")


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML switched off: tables, images, links and code render, but a
    `<tag>` anywhere in the text (a column, a file name, a category from the data) is shown as
    text, never parsed, and a link or image may not use a `javascript:`/`data:` address."""
    md = markdown.Markdown(extensions=["tables", "fenced_code"])
    md.preprocessors.deregister("html_block")  # block-level raw HTML
    md.inlinePatterns.deregister("html")  # inline raw HTML (`<img onerror=...>`)
    md.treeprocessors.register(_SafeUrls(md), "safe_urls", 0)
    return md.convert(text)


class _SafeUrls(markdown.treeprocessors.Treeprocessor):
    def run(self, root):
        for el in root.iter():
            for attr in ("href", "src"):
                url = el.get(attr)
                if url is not None and _UNSAFE.match(url):
                    el.set(attr, "#unsafe-url-removed")


_UNSAFE = re.compile(r"^\s*(javascript|vbscript|data|file):", re.IGNORECASE)


def markdown_page(title: str, text: str, back: str = "../index.html") -> str:
    """A report page rendered from its markdown (tables and images included), raw HTML escaped."""
    body = render_markdown(text)
    return page(title, f"<article>{body}</article>",
                nav=f'<nav><a href="{back}">&larr; portfolio</a></nav>')


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def fmt_interval(bounds) -> str:
    return "" if not bounds or bounds[0] is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _paired_cell(r: Mapping) -> str:
    """Model minus baseline with its paired interval, or a within-noise mark."""
    p = r.get("paired")
    if not p:
        return '<td class="paired"></td>'
    if p["within_noise"]:
        return ('<td class="paired noise" title="the paired 95% interval of the difference '
                'covers 0">&asymp; within noise</td>')
    return f'<td class="paired">{p["diff"]:+.3f} [{p["lo"]:+.3f}, {p["hi"]:+.3f}]</td>'


def _gate_text(gate: Mapping) -> str:
    status = ('<span class="pass">passed</span>' if gate["passed"]
              else '<span class="fail">failed</span>')
    lo_hi = gate.get("improvement_interval")
    interval = (f", 95% interval [{100 * lo_hi[0]:+.1f}%, {100 * lo_hi[1]:+.1f}%], lower "
                f"bound needed {100 * gate['min_improvement']:+.1f}%"
                if lo_hi and lo_hi[0] is not None else "")
    return f'{status} ({100 * gate["relative_improvement"]:+.1f}%{interval})'


_BREACH = ' class="breach"'  # a guardrail breach: the figure's row in red


def card_html(card: Mapping) -> str:
    e = html.escape
    gate = card["gate"]
    rows = "".join(
        f'<tr data-metric="{e(r["metric"])}"{_BREACH if r.get("breached") else ""}>'
        f'<td>{e(r["label"])}{" (guardrail breached)" if r.get("breached") else ""}</td>'
        f'<td class="model">{fmt(r["model"])}</td>'
        f'<td class="interval">{fmt_interval(r.get("model_interval"))}</td>'
        f'<td class="baseline">{fmt(r["baseline"])}</td>{_paired_cell(r)}</tr>'
        for r in card["figures"])
    breaches = "".join(
        f'<p class="fail">Guardrail {e(g["metric"])} breached ({e(g["action"])}): model '
        f'{g["model"]:.3f} vs baseline {g["baseline"]:.3f}, difference 95% interval '
        f'{fmt_interval(g["diff_interval"])}.</p>'
        for g in gate.get("guardrails", []) if g["breached"])
    gates = "; ".join(f'{e(g["task"])}/{e(g["view"])} {_gate_text(g["gate"])}'
                      for g in card.get("gates", []))
    links = " ".join(f'<a href="{e(href)}">{e(text)}</a>' for text, href in card["links"])
    plot = (f'<img src="{e(card["plot"])}" alt="{e(card["plot_title"])}">'
            if card.get("plot") else "")
    return (
        f'<section class="card" id="case-{e(card["case"])}" data-case="{e(card["case"])}">'
        f'<h2>{e(card["title"])}</h2><p class="question">{e(card["question"])}</p>'
        f'<p class="source">Data: {e(card["description"])}, <span class="rows">{card["rows"]:,}'
        f'</span> rows (source <code>{e(card["source"])}</code>)</p>'
        f'<table class="figures"><tr><th>test figure</th><th>model</th><th>95% interval</th>'
        f'<th>baseline</th><th>model &minus; baseline</th></tr>{rows}</table>'
        f'<p>Selected <code class="selected">{e(card["selected_model"])}</code>; gate against '
        f'the baseline on {e(gate["metric"])}: {_gate_text(gate)}.</p>{breaches}'
        + (f'<p class="gates">Every gate: {gates}.</p>' if gates else "")
        + (f'<p class="floor">{e(card["floor"])}.</p>' if card.get("floor") else "")
        + f'{plot}<p class="links">{links}</p></section>')


def index_html(cards: Iterable[Mapping]) -> str:
    cards = list(cards)
    body = ("<h1>casebook: the portfolio</h1><p>Every figure below was measured by the run that "
            "wrote it; the MLflow links open the run in <code>make ui</code> "
            "(http://127.0.0.1:5000).</p>"
            f'<div class="cards">{"".join(card_html(c) for c in cards)}</div>')
    return page("casebook portfolio", body)


def card(case_cfg: Mapping, metrics: Mapping, info: Mapping, train_run: Mapping, ui: str) -> dict:
    """The case's card: its headline figures, straight from metrics.json (each task's figures
    from the primary view, or the task's own view when it has no primary one)."""
    from cases.lifecycle.floor import line as floor_line
    from cases.lifecycle.tracking import run_url

    case = case_cfg["name"]
    view = metrics["primary"]["view"]
    figures = []
    for item in case_cfg["report"]["card_figures"]:
        tname, metric = item.split(".", 1)
        views = metrics["tasks"][tname]
        r = views[view if view in views else next(iter(views))]
        sel = r["selected"]
        breached = [g for g in r["gate"].get("guardrails", [])
                    if g["metric"] == metric and g["breached"]]
        figures.append({"label": f"{tname} {metric.replace('_', ' ')}", "metric": item,
                        "model": r["test"][sel].get(metric),
                        "baseline": r["test"]["baseline"].get(metric),
                        "model_interval": r.get("intervals", {}).get(sel, {}).get(metric),
                        "baseline_interval": r.get("intervals", {}).get("baseline", {}).get(metric),
                        "paired": r.get("paired", {}).get(sel, {}).get("vs_baseline", {})
                        .get(metric),
                        "breached": bool(breached),
                        "guardrail_action": breached[0]["action"] if breached else None})
    return {
        "case": case, "title": case_cfg["title"], "question": case_cfg["question"],
        "source": info["source"], "description": info["description"], "rows": info["rows"],
        "selected_model": metrics["selected_model"], "gate": metrics["gate"],
        "figures": figures, "view": view,
        # the Bayes floor of the primary task and view (lifecycle/floor.py), one line
        "floor": floor_line(((metrics["tasks"].get(metrics["primary"].get("task")) or {})
                             .get(view) or {}).get("floor")),
        "gates": [{"task": t, "view": v, "gate": r["gate"]}
                  for t, views in metrics["tasks"].items() for v, r in views.items()],
        "plot": f"{case}/{case_cfg['report']['key_plot']}",
        "plot_title": case_cfg["report"]["key_plot"],
        "run_id": train_run["run_id"], "experiment_id": train_run["experiment_id"],
        "links": [["talking points", f"{case}/talking_points.html"],
                  ["rollout report", f"{case}/rollout.html"], ["EDA", f"{case}/eda.html"],
                  ["analysis", f"{case}/analysis.html"],
                  ["metrics.json", f"{case}/metrics.json"],
                  ["MLflow run", run_url(ui, train_run["experiment_id"], train_run["run_id"])]],
    }
