"""The portfolio: one self-contained HTML page per report and an index with one card per case.
No server, no CDN: inline CSS and relative links, so the files open straight from disk."""

from __future__ import annotations

import html
import re
from typing import Iterable, Mapping

import markdown
import markdown.treeprocessors

from cases.lifecycle.report import bound_digits, decimals, percent_bounds

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1d232b;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2rem 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(470px,1fr));gap:18px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:16px}
.card h2{font-size:1.15rem;margin:0 0 .4rem}
.question{font-style:italic;color:#48525e;font-size:.92rem}
.source{font-size:.85rem;color:#48525e}
.figures{width:100%;border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
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
.summary{width:100%;border-collapse:collapse;background:#fff;font-size:.86rem;margin:0 0 22px;
border:1px solid #dde1e6}
.summary th,.summary td{border-bottom:1px solid #eceff2;padding:5px 6px;text-align:left;
vertical-align:top}.summary th{background:#eef1f4}
.dir{color:#8a96a3;font-size:.8rem}.unit{color:#48525e;font-size:.8rem}
tr.loses td.model{color:#b42318;font-weight:600}
.flag{color:#b42318;font-weight:700;font-size:.78rem;margin-left:4px}
.extra{font-size:.85rem;color:#1d232b}
a.zoom{cursor:zoom-in;display:block}
#lightbox{display:none;position:fixed;inset:0;background:rgba(10,14,20,.86);z-index:10;
cursor:zoom-out;align-items:center;justify-content:center}
#lightbox.open{display:flex}#lightbox img{max-width:96vw;max-height:94vh;background:#fff;
border-radius:6px}
"""

# plots open full size: a link to the image (works without script) and, with script, an
# overlay on the same page; Escape or a click closes it
LIGHTBOX = ('<div id="lightbox" role="dialog" aria-label="plot, full size"><img alt=""></div>'
            "<script>(function(){var b=document.getElementById('lightbox'),i=b.firstChild;"
            "document.addEventListener('click',function(e){var a=e.target.closest&&"
            "e.target.closest('a.zoom');if(a){e.preventDefault();i.src=a.getAttribute('href');"
            "i.alt=a.title||'';b.classList.add('open');}else if(b.contains(e.target)){"
            "b.classList.remove('open');}});document.addEventListener('keydown',function(e){"
            "if(e.key==='Escape'){b.classList.remove('open');}});})();</script>")


def page(title: str, body: str, nav: str = "") -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{nav}{body}</main>{LIGHTBOX}</body></html>\n")


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
    """Unsafe addresses removed; web links open in a new tab; every image is a link to itself
    (full size on click, `LIGHTBOX`)."""

    def run(self, root):
        import xml.etree.ElementTree as ET

        for el in root.iter():
            for attr in ("href", "src"):
                url = el.get(attr)
                if url is not None and _UNSAFE.match(url):
                    el.set(attr, "#unsafe-url-removed")
            if el.tag == "a" and re.match(r"^https?://", el.get("href", "")):
                el.set("target", "_blank")
                el.set("rel", "noopener")
        for parent in list(root.iter()):
            if parent.tag == "a":
                continue
            for i, child in enumerate(list(parent)):
                if child.tag == "img" and not child.get("src", "").startswith("#"):
                    link = ET.Element("a", {"class": "zoom", "href": child.get("src"),
                                            "title": child.get("alt", "")})
                    link.tail, child.tail = child.tail, None
                    parent.remove(child)
                    link.append(child)
                    parent.insert(i, link)


_UNSAFE = re.compile(r"^\s*(javascript|vbscript|data|file):", re.IGNORECASE)


def markdown_page(title: str, text: str, back: str = "../index.html") -> str:
    """A report page rendered from its markdown (tables and images included), raw HTML escaped."""
    body = render_markdown(text)
    return page(title, f"<article>{body}</article>",
                nav=f'<nav><a href="{back}">&larr; portfolio</a></nav>')


def fmt(value: float | None, digits: int | None = None) -> str:
    if value is None:
        return "n/a"
    d = decimals(value) if digits is None else digits
    return f"{value:,.{d}f}"


def fmt_interval(bounds, digits: int | None = None) -> str:
    if not bounds or bounds[0] is None:
        return ""
    d = decimals(*bounds) if digits is None else digits
    return f"[{bounds[0]:,.{d}f}, {bounds[1]:,.{d}f}]"


# readable names of the metrics the cards show; a metric not listed shows its own name
METRIC_LABELS = {
    "mae": "MAE", "rmse": "RMSE", "tail_mae": "MAE on the tail", "tail_rmse": "RMSE on the tail",
    "rmsle": "RMSLE", "r2": "R\u00b2", "mae_dollars": "MAE in dollars", "auc": "ROC AUC",
    "auc_ovr": "ROC AUC (one vs rest)", "log_loss": "log loss", "brier": "Brier score",
    "ece": "calibration error (ECE)", "accuracy": "accuracy",
    "average_precision": "average precision", "ape_p50": "abs. % error, median",
    "ape_p90": "abs. % error, p90", "recall_at_alert_rate": "recall at the alert rate",
    "precision_at_recall": "precision at the target recall"}
# units of metrics that have their own; MAE/RMSE-like ones take their task's (`report.units`)
METRIC_UNITS = {"mae_dollars": "$", "ape_p50": "%", "ape_p90": "%"}
TARGET_UNIT_METRICS = ("mae", "rmse", "tail_mae", "tail_rmse")


def metric_label(task: str, metric: str, units: Mapping[str, str]) -> dict:
    """{label, unit, higher_is_better} of a card figure."""
    from cases.lifecycle.evaluate import greater_is_better

    unit = METRIC_UNITS.get(metric) or (units.get(task, "") if metric in TARGET_UNIT_METRICS
                                        else "")
    return {"label": f"{task}: {METRIC_LABELS.get(metric, metric.replace('_', ' '))}",
            "unit": unit, "higher_is_better": greater_is_better(metric)}


def loses(row: Mapping) -> bool:
    """The model's figure is worse than the baseline's (by the metric's direction)."""
    m, b = row.get("model"), row.get("baseline")
    if m is None or b is None:
        return False
    return m < b if row.get("higher_is_better") else m > b


def _paired_cell(r: Mapping) -> str:
    """Model minus baseline with its paired interval, or a within-noise mark."""
    p = r.get("paired")
    if not p:
        return '<td class="paired"></td>'
    if p["within_noise"]:
        return ('<td class="paired noise" title="the paired 95% interval of the difference '
                'covers 0">&asymp; within noise</td>')
    d = decimals(p["diff"], p["lo"], p["hi"])
    b = bound_digits(p["lo"], p["hi"], d)  # a bound that is not zero shows its sign
    return (f'<td class="paired">{p["diff"]:+,.{d}f} [{p["lo"]:+,.{b}f}, {p["hi"]:+,.{b}f}]'
            f'</td>')


def _gate_text(gate: Mapping) -> str:
    status = ('<span class="pass">passed</span>' if gate["passed"]
              else '<span class="fail">failed</span>')
    lo_hi = gate.get("improvement_interval")
    interval = (f", 95% interval {percent_bounds(*lo_hi)}, lower bound needed "
                f"{100 * gate['min_improvement']:+.1f}%" if lo_hi and lo_hi[0] is not None else "")
    return f'{status} ({100 * gate["relative_improvement"]:+.1f}%{interval})'


def _figure_row(r: Mapping) -> str:
    e = html.escape
    d = max(decimals(r["model"]), decimals(r["baseline"]))  # the finer of the two
    up = r.get("higher_is_better")
    direction = (f'<span class="dir" title="{"higher" if up else "lower"} is better">'
                 f'{"&uarr;" if up else "&darr;"}</span>')
    unit = f' <span class="unit">({e(r["unit"])})</span>' if r.get("unit") else ""
    lose = loses(r)
    flag = ('<span class="flag" title="the model is worse than the baseline on this figure">'
            '&#9873;</span>' if lose else "")
    classes = " ".join(c for c in ("breach" if r.get("breached") else "",
                                   "loses" if lose else "") if c)
    cls = f' class="{classes}"' if classes else ""
    return (f'<tr data-metric="{e(r["metric"])}"{cls}>'
            f'<td>{e(r["label"])}{unit} {direction}'
            f'{" (guardrail breached)" if r.get("breached") else ""}</td>'
            f'<td class="model">{fmt(r["model"], d)}{flag}</td>'
            f'<td class="interval">{fmt_interval(r.get("model_interval"), d)}</td>'
            f'<td class="baseline">{fmt(r["baseline"], d)}</td>{_paired_cell(r)}</tr>')


def card_html(card: Mapping) -> str:
    """One case's card. `card["extra"]`, when present, is a list of further figure lines (text,
    already formatted by the stage that measured them) shown under the table."""
    e = html.escape
    gate = card["gate"]
    rows = "".join(_figure_row(r) for r in card["figures"])
    extra = "".join(f'<p class="extra">{e(line)}</p>' for line in card.get("extra") or [])
    breaches = "".join(
        f'<p class="fail">Guardrail {e(g["metric"])} breached ({e(g["action"])}): model '
        f'{fmt(g["model"])} vs baseline {fmt(g["baseline"])}, difference 95% interval '
        f'{fmt_interval(g["diff_interval"])}.</p>'
        for g in gate.get("guardrails", []) if g["breached"])
    gates = "; ".join(f'{e(g["task"])}/{e(g["view"])} {_gate_text(g["gate"])}'
                      for g in card.get("gates", []))
    links = " ".join(
        f'<a href="{e(href)}"'
        + (' target="_blank" rel="noopener"' if href.startswith(("http://", "https://")) else "")
        + f'>{e(text)}</a>' for text, href in card["links"])
    plot = (f'<a class="zoom" href="{e(card["plot"])}" title="{e(card["plot_title"])} '
            f'(click: full size)"><img src="{e(card["plot"])}" alt="{e(card["plot_title"])}">'
            f'</a>' if card.get("plot") else "")
    return (
        f'<section class="card" id="case-{e(card["case"])}" data-case="{e(card["case"])}">'
        f'<h2>{e(card["title"])}</h2><p class="question">{e(card["question"])}</p>'
        f'<p class="source">Data: {e(card["description"])}, <span class="rows">{card["rows"]:,}'
        f'</span> rows (source <code>{e(card["source"])}</code>)</p>'
        f'<table class="figures"><tr><th>test figure</th><th>model</th><th>95% interval</th>'
        f'<th>baseline</th><th>model &minus; baseline</th></tr>{rows}</table>{extra}'
        f'<p>Selected <code class="selected">{e(card["selected_model"])}</code>; gate against '
        f'the baseline on {e(gate["metric"])}: {_gate_text(gate)}.</p>{breaches}'
        + (f'<p class="gates">Every gate: {gates}.</p>' if gates else "")
        + (f'<p class="floor">{e(card["floor"])}.</p>' if card.get("floor") else "")
        + f'{plot}<p class="links">{links}</p></section>')


def summary_row(card: Mapping) -> str:
    """One case in the summary table: the headline (the gate's metric on the primary task and
    view) against the baseline, the improvement with its interval, the gate, the run."""
    e = html.escape
    g = card["gate"]
    up = card.get("headline_higher_is_better", False)
    lo_hi = g.get("improvement_interval")
    interval = (f' <span class="interval">[{100 * lo_hi[0]:+.1f}%, {100 * lo_hi[1]:+.1f}%]'
                f'</span>' if lo_hi and lo_hi[0] is not None else "")
    d = max(decimals(g["model"]), decimals(g["baseline"]))
    run = card.get("run") or {}
    commit = run.get("commit", "")
    lose = g["relative_improvement"] < 0
    return (
        f'<tr data-case="{e(card["case"])}"{" class=loses" if lose else ""}>'
        f'<td><a href="#case-{e(card["case"])}">{e(card["title"])}</a></td>'
        f'<td class="question">{e(card["question"])}</td>'
        f'<td><code>{e(card["source"])}</code>, {card["rows"]:,} rows</td>'
        f'<td><code>{e(card["selected_model"])}</code></td>'
        f'<td class="headline">{e(g["metric"])} {"&uarr;" if up else "&darr;"} '
        f'{fmt(g["model"], d)} vs {fmt(g["baseline"], d)}</td>'
        f'<td class="delta">{100 * g["relative_improvement"]:+.1f}%{interval}'
        + ('<span class="flag">&#9873; worse</span>' if lose else "") + '</td>'
        f'<td>{"<span class=pass>passed</span>" if g["passed"] else "<span class=fail>failed</span>"}'
        f'</td><td class="run">{e(run.get("date", ""))}<br><code>{e(commit[:10])}</code>'
        f'{" (dirty)" if run.get("dirty") else ""}</td></tr>')


def order_cards(cards: Iterable[Mapping], order: Iterable[str] = ()) -> list[Mapping]:
    """The cases in the configured order (`report.case_order`), any others after, by name."""
    rank = {c: i for i, c in enumerate(order)}
    return sorted(cards, key=lambda c: (rank.get(c["case"], len(rank)), c["case"]))


def index_html(cards: Iterable[Mapping], ui: str = "http://127.0.0.1:5000",
               order: Iterable[str] = ()) -> str:
    cards = order_cards(cards, order)
    e = html.escape
    summary = (
        '<table class="summary" id="summary"><tr><th>case</th><th>question</th>'
        '<th>data</th><th>selected model</th><th>headline: model vs baseline (test)</th>'
        '<th>improvement over the baseline, 95% interval</th><th>gate</th>'
        '<th>run (date, commit)</th></tr>'
        + "".join(summary_row(c) for c in cards) + "</table>")
    body = ("<h1>casebook: the portfolio</h1><p>Every figure below was measured by the run that "
            "wrote it, on the test split; &uarr; higher is better, &darr; lower is better; "
            "&#9873; marks a figure where the model is worse than the baseline. The MLflow links "
            f'open the run in the MLflow UI at <a href="{e(ui)}" target="_blank" rel="noopener">'
            f"{e(ui)}</a> (<code>make ui</code>; set <code>report.mlflow_ui</code> for another "
            f"address). Click a plot to see it full size.</p>{summary}"
            f'<div class="cards">{"".join(card_html(c) for c in cards)}</div>')
    return page("casebook portfolio", body)


def card(case_cfg: Mapping, metrics: Mapping, info: Mapping, train_run: Mapping, ui: str,
         run: Mapping | None = None) -> dict:
    """The case's card: its headline figures, straight from metrics.json (each task's figures
    from the primary view, or the task's own view when it has no primary one)."""
    from cases.lifecycle.evaluate import greater_is_better
    from cases.lifecycle.floor import line as floor_line
    from cases.lifecycle.tracking import experiment_url, run_url

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
        figures.append({**metric_label(tname, metric, case_cfg["report"].get("units") or {}),
                        "metric": item,
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
        "headline_higher_is_better": greater_is_better(metrics["gate"]["metric"]),
        "run": dict(run or {}),
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
                  ["MLflow run", run_url(ui, train_run["experiment_id"], train_run["run_id"])],
                  ["MLflow experiment", experiment_url(ui, train_run["experiment_id"])]],
    }
