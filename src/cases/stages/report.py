"""report: the rollout report and talking points (the case's story around this run's numbers),
the HTML pages, and the case's card for the portfolio; logged as artifacts of an MLflow run of
its own (a child of the training run)."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig

from cases.config import to_container
from cases.lifecycle import claims, floor, portfolio
from cases.lifecycle.contract import get_case
from cases.lifecycle.eda import markdown_table
from cases.lifecycle.io import outputs
from cases.lifecycle.report import sections, source_line
from cases.stages import common
from cases.stages.paths import Paths


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    serving, train_run = common.evaluated_run(p)
    # the story gets the machine's figures apart ("timing"): it quotes them only in
    # `story.timing`, which goes to timing.md, so rollout.md and talking_points.md reproduce
    timing = {"latency_ms": serving["latency_ms"], "analysis": p.json("analysis_timing")}
    facts = run_facts(p, serving)
    story = case.story({**facts, "timing": timing}, cfg.case)
    metrics, info = facts["metrics"], facts["ingest"]
    gate_rows = [_gate_row(t, v, r) for t, views in metrics["tasks"].items()
                 for v, r in views.items()]
    level = (metrics.get("bootstrap") or {}).get("level")
    rule = (f"the lower bound of the {100 * float(level):.0f}% bootstrap interval of its "
            f"improvement over the baseline on the test split clears" if level else
            "it beats the baseline on the test split by at least")
    rollout_md = "\n".join([
        f"# {cfg.case.title}: rollout report", "", f"> {cfg.case.question}", "",
        source_line(info), "", "## Gate against the baseline", "",
        f"A model is registered as `champion` only if {rule} "
        f"{100 * float(cfg.case.evaluate.gate_min_improvement):.1f}% on its selection metric"
        + (", and no guardrail marked `fail` is breached." if level else "."), "",
        markdown_table(pd.DataFrame(gate_rows)), "",
        *floor.rollout_section(metrics),
        "Serving latency, the registered versions and the MLflow runs: `serving.md` and "
        "`timing.md` (they depend on the machine and the tracking store, not only on the data "
        "and seed).", "",
        *sections(story.rollout), *evaluation_gallery(p)]) + "\n"
    talking_md = "\n".join([f"# {cfg.case.title}: talking points", "", source_line(info), "",
                            *[f"- {t}" for t in story.talking_points]]) + "\n"
    timing_md = "\n".join(["## Measured on this machine", "",
                           *[f"- {t}" for t in story.timing]]) + "\n"
    pages = {
        "rollout_html": ("rollout", "\n".join([rollout_md, p.need("serving_md").read_text("utf-8"),
                                               timing_md])),
        "talking_html": ("talking_points", talking_md),
        "eda_html": ("eda", p.need("eda_md").read_text(encoding="utf-8")),
        "analysis_html": ("analysis", p.need("analysis_md").read_text(encoding="utf-8")),
    }
    card = portfolio.card(cfg.case, metrics, info, train_run, cfg.report.mlflow_ui,
                          run=run_stamp())
    claims.raise_if(check_claims(cfg, facts, {p.rollout_md.name: rollout_md,
                                              p.talking_md.name: talking_md}, card),
                    f"case {cfg.case.name!r} (reports in {p.rollout_md.parent})")
    with outputs() as out:
        out.write_text(p.rollout_md, rollout_md)
        out.write_text(p.talking_md, talking_md)
        out.write_text(p.timing_md, timing_md)
        for key, (stem, text) in pages.items():
            out.write_text(getattr(p, key),
                           portfolio.markdown_page(f"{cfg.case.title}: {stem}", text))
        out.write_json(p.card, card)
    with common.open_run(cfg, info, "report", parent=train_run["run_id"],
                         params={"report": dict(cfg.case.report)}) as mlrun:
        mlrun.log_artifacts([p.eda_md, p.eda_dir, p.evaluation, p.metrics, p.analysis_md,
                             p.analysis_dir, p.rollout_md, p.talking_md, p.serving_md,
                             p.timing_md],
                            artifact_path="reports")
    return {"rollout": str(p.rollout_md)}


def evaluation_gallery(p: Paths) -> list[str]:
    """The evaluate stage's plots, embedded at the end of the rollout report (click: full
    size on the HTML page)."""
    plots = sorted(p.need("evaluation").glob("*.png"))
    if not plots:
        return []
    return ["## Evaluation plots", "",
            *[f"![{f.stem}](evaluation/{f.name})" for f in plots], ""]


def run_stamp() -> dict:
    """When and from which commit this report was made (the card only: a run file, so it may
    depend on the clock and the checkout)."""
    from datetime import datetime, timezone

    from cases.config import repo_root
    from cases.lifecycle.tracking import git_info

    git = git_info(repo_root())
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git["git_commit"], "dirty": git["git_dirty"] == "true"}


def _gate_row(task: str, view: str, r: dict) -> dict:
    g = r["gate"]
    row = {"task": task, "view": view, "selected": r["selected"], "metric": g["metric"],
           "model": g["model"], "baseline": g["baseline"],
           "improvement": f"{100 * g['relative_improvement']:+.1f}%"}
    if g.get("improvement_interval"):
        lo, hi = g["improvement_interval"]
        row["interval"] = f"[{100 * lo:+.1f}%, {100 * hi:+.1f}%]"
    breached = [x["metric"] for x in g.get("guardrails") or [] if x.get("breached")]
    row["gate"] = ("pass" if g["passed"] else "FAIL") + (
        f" (guardrail breached: {', '.join(breached)})" if breached else "")
    return row


def run_facts(p: Paths, serving: dict) -> dict:
    """What the story is given and the claims are checked against: the run's outputs (the
    machine's timings apart) and each task's champion."""
    return {"metrics": p.json("metrics"), "selection": p.json("selection"),
            "eda": p.json("eda_json"), "ingest": p.json("ingest"),
            "features": p.json("features_meta"), "analysis": p.json("analysis_json"),
            "champions": claims.champions(serving)}


def check_claims(cfg: DictConfig, facts: dict, texts: dict[str, str],
                 card: dict) -> list[claims.Problem]:
    """The claims check (`lifecycle.claims`) of the reports and the card against this run's
    outputs (`facts`: what the story was given, the machine's timings left out) and the case's
    config. timing.md and serving.md quote the machine and are not checked."""
    import html
    import re

    sources = claims.Sources(*facts.values(), to_container(cfg.case))
    card_text = html.unescape(re.sub(r"<[^>]+>", " ", portfolio.card_html(card)))
    metrics, selection = facts["metrics"], facts["selection"]
    return [*claims.check(texts, sources, metrics, facts["champions"], selection),
            *claims.check({"card (index.html)": card_text}, sources, metrics, {}, selection,
                          ship_files=()),
            *claims.numbers_untraced(f"card ({card['case']}.json)",
                                     {k: card[k] for k in ("rows", "gate", "figures")}, sources)]


def check_files(cfg: DictConfig) -> list[claims.Problem]:
    """The claims check of the files a finished report stage wrote (for tests)."""
    import json

    p = Paths(cfg)
    facts = run_facts(p, p.json("serving"))
    texts = {f.name: f.read_text(encoding="utf-8") for f in (p.rollout_md, p.talking_md)}
    return check_claims(cfg, facts, texts, json.loads(p.card.read_text(encoding="utf-8")))
