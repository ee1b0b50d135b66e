"""Markdown pieces every report shares: the data line and titled sections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cases.lifecycle.contract import PLAIN


def decimals(*values: float | None) -> int:
    """Digits after the point for figures of this size: none from 100 up, one from 10, three
    below (scores, probabilities)."""
    size = max((abs(v) for v in values if v is not None), default=0.0)
    return 0 if size >= 100 else 1 if size >= 10 else 3


def source_line(info: dict) -> str:
    """Which data the run used: description, rows (and the sample), source and content hash."""
    sampled = (f" (a seeded sample of {info['rows']:,} from {info['rows_available']:,})"
               if info.get("sampled") else "")
    return (f"**Data:** {info['description']}: {info['rows']:,} rows{sampled}; source "
            f"`{info['source']}`, content hash `{info['data_hash']}`.")


def sections(items: Iterable[tuple[str, str]]) -> list[str]:
    lines: list[str] = []
    for title, body in items:
        lines += [f"## {title}", "", body.strip(), ""]
    return lines


# Words for a comparison of two models, held to the paired bootstrap interval the evaluate stage
# stored (metrics.json `paired`): the claims check (`lifecycle.claims`) holds the report to them.

def versus(entry: Mapping, a: str, b: str, metric: str) -> str:
    """How `a` stands against `b` (candidate names or "baseline") on `metric`: "is within noise
    of", "is better than" or "is worse than" from the paired interval, or "" when the run stored
    no interval for the pair (then say nothing of a winner)."""
    from cases.lifecycle.claims import verdict

    v = verdict(entry, a, b, metric)
    return {"within noise": "is within noise of", "better": "is better than",
            "worse": "is worse than"}.get(v, "")


def bound_digits(lo: float, hi: float, digits: int, most: int = 6) -> int:
    """Digits after the point for an interval's bounds: `digits`, or more while a bound that is
    not zero would print as zero, so an interval that excludes zero ("better", "worse") never
    shows "[-0.29, -0.00]"."""
    while digits < most and any(b != 0 and round(b, digits) == 0 for b in (lo, hi)):
        digits += 1
    return digits


def signed_bounds(lo: float, hi: float, digits: int = 3) -> str:
    """"[-0.292, -0.003]": an interval of a difference, signed, with `bound_digits` digits."""
    d = bound_digits(lo, hi, digits)
    return f"[{lo:+.{d}f}, {hi:+.{d}f}]"


def percent_bounds(lo: float, hi: float) -> str:
    """"[+9.0%, +14.1%]": an interval of shares (fractions of 1) as signed percentages, with
    one decimal or the `bound_digits` a bound that is not zero needs."""
    d = bound_digits(100 * lo, 100 * hi, 1)
    return f"[{100 * lo:+.{d}f}%, {100 * hi:+.{d}f}%]"


def difference(entry: Mapping, a: str, b: str, metric: str, digits: int = 3) -> str:
    """" (x − y: +0.012, 95% interval [-0.003, 0.027])": the paired difference of the two models
    on `metric` as stored (candidate − selected model, or − baseline: the order is the stored
    one, so every figure is a stored value), or "" when the run stored none for the pair."""
    from cases.lifecycle.claims import paired

    x, y = (a, b) if b == "baseline" or (b == entry.get("selected") and a != "baseline") else (b, a)
    d = paired(entry, x, y, metric)
    if d is None:
        return ""
    level = 100 * float((entry.get("bootstrap") or {}).get("level", 0.95))
    return (f" ({x} \u2212 {y}: {d['diff']:+.{digits}f}, {level:.0f}% interval "
            f"{signed_bounds(d['lo'], d['hi'], digits)})")


def interval(entry: Mapping, model: str, metric: str, digits: int = 3) -> str:
    """" [lo, hi]": the bootstrap interval of one test figure, or "" when none is stored."""
    lohi = ((entry.get("intervals") or {}).get(model) or {}).get(metric)
    return f" [{lohi[0]:.{digits}f}, {lohi[1]:.{digits}f}]" if lohi else ""


def plain_reference(entry: Mapping, metric: str, label: str, what: str,
                    cv: Mapping[str, float] | None = None, digits: int = 3,
                    name: str | None = None) -> str:
    """One sentence: the selected model against the plain reference (`PLAIN`; `what` says what
    it reads) on the same rows and split, `label` heading the figures: the CV means when `cv`
    ({candidate: mean}) is given, the test figures with their intervals and the paired
    difference with its verdict on `metric` (printed as `name`, default `label`), all as the run
    stored them; "" when the run has no plain reference."""
    if PLAIN not in (entry.get("test") or {}):
        return ""
    sel = entry["selected"]

    def figures(name: str) -> str:
        on_cv = f"CV {cv[name]:.{digits}f}, " if cv and name in cv else ""
        return (f"{on_cv}test {entry['test'][name][metric]:.{digits}f}"
                f"{interval(entry, name, metric, digits)}")

    head = f"Against the plain reference `{PLAIN}` ({what}) on the same rows and split, {label}: "
    if sel == PLAIN:
        return (head + f"{figures(PLAIN)}; selection picked it: the features and the tuning did "
                f"not pay on CV.")
    word = versus(entry, sel, PLAIN, metric)
    # the verdict's clause names the metric: the claims check holds the word to its interval
    return (head + f"`{sel}` {figures(sel)}, `{PLAIN}` {figures(PLAIN)}; "
            + (f"on {name or label}, `{sel}` {word} `{PLAIN}`"
               f"{difference(entry, sel, PLAIN, metric, digits)}." if word
               else "no paired interval of the two in this run."))


def selection_note(entry: Mapping | None) -> str:
    """Why selection picked the model, as selection.json states it (the rule, the candidates
    within noise of the best), or "" for a selection.json without a rule."""
    if not entry or "rule" not in entry:
        return ""
    rule = {"one_se": "the one-standard-error rule", "best": "the best CV mean"}.get(
        entry["rule"], f"the {entry['rule']} rule")
    noise = [n for n in entry.get("within_noise", []) if n != entry.get("selected")]
    return (f"picked by {rule}" + (f" (within one SE of the best: "
                                    f"{', '.join(f'`{n}`' for n in noise)})" if noise else "")
            + (f": {entry['reason'].rstrip('.')}" if entry.get("reason") else ""))


def gate_note(entry: Mapping) -> str:
    """"+11.6%, 95% interval [+9.0%, +14.1%], gate passed": the relative improvement over the
    baseline on the selection metric, its interval when stored, the gate and any guardrail
    breach, from one task/view entry of metrics.json."""
    g = entry["gate"]
    out = f"{100 * g['relative_improvement']:+.1f}%"
    if g.get("improvement_interval"):
        lo, hi = g["improvement_interval"]
        level = 100 * float((entry.get("bootstrap") or {}).get("level", 0.95))
        out += f", {level:.0f}% interval {percent_bounds(lo, hi)}"
    out += ", gate passed" if g["passed"] else ", gate failed"
    breached = [x for x in g.get("guardrails") or [] if x.get("breached")]
    if breached:
        out += "; guardrail breached: " + ", ".join(
            f"{x['metric']} ({'gate failed' if x['action'] == 'fail' else 'flagged'})"
            for x in breached)
    return out


def run_description(title: str, question: str, info: Mapping, metrics: Mapping,
                    models: Mapping, evaluation_run_id: str) -> str:
    """The training run's description in MLflow (markdown): the question, the data, and per
    task and view the selected model, its test figure with interval against the baseline and the
    gate; each task's served model (the registered version) below."""
    lines = [f"**{title}**: {question}", "", source_line(dict(info)), "",
             "| task | view | selected | test | baseline | vs baseline | gate |",
             "|---|---|---|---|---|---|---|"]
    for task, views in metrics["tasks"].items():
        for view, r in views.items():
            g = r["gate"]
            note = gate_note(r).rsplit(", gate ", 1)
            d = decimals(g["model"], g["baseline"])
            lines.append(
                f"| {task} | {view} | `{r['selected']}` | {g['metric']} {g['model']:,.{d}f}"
                f"{interval(r, r['selected'], g['metric'], d)} | {g['baseline']:,.{d}f} | "
                f"{note[0]} | {'**passed**' if g['passed'] else '**FAILED**'} |")
    lines += ["", "Served per task: " + "; ".join(
        f"{t}: `{m['candidate']}` ({m['view']})"
        + (f", registered `{m['registered_model']}` v{m['version']}" if m.get("registered_model")
           else ", not registered (gate failed)") for t, m in models.items()) + ".",
        "", f"Test metrics: this run's `<task>.<view>.test_*` metrics and the evaluation run "
        f"`{evaluation_run_id}`. Every candidate per task: artifacts `comparison/<task>.csv` and "
        f"`comparison/<task>.png`; the candidates are this run's child runs (group by `task`)."]
    return "\n".join(lines)
