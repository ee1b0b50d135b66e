"""report: the rollout report and talking points (the case's story around this run's numbers),
the HTML pages, and the case's card for the portfolio; logged as artifacts of an MLflow run of
its own (a child of the training run)."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig

from cases.lifecycle import portfolio
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
    metrics, info = p.json("metrics"), p.json("ingest")
    # the story gets the machine's figures apart ("timing"): it quotes them only in
    # `story.timing`, which goes to timing.md, so rollout.md and talking_points.md reproduce
    timing = {"latency_ms": serving["latency_ms"], "analysis": p.json("analysis_timing")}
    story = case.story({"metrics": metrics, "eda": p.json("eda_json"), "ingest": info,
                        "analysis": p.json("analysis_json"), "timing": timing}, cfg.case)
    gate_rows = [gate_row(t, v, r) for t, views in metrics["tasks"].items()
                 for v, r in views.items()]
    rollout_md = "\n".join([
        f"# {cfg.case.title}: rollout report", "", f"> {cfg.case.question}", "",
        source_line(info), "", "## Gate against the baseline", "",
        f"A model is registered as `champion` only if it beats the baseline on the test "
        f"split by at least {100 * float(cfg.case.evaluate.gate_min_improvement):.1f}% on its "
        f"selection metric, judged by the lower bound of the 95% interval of the relative "
        f"improvement (resampling whole {metrics['bootstrap']['unit']}s, "
        f"{metrics['bootstrap']['resamples']:,} resamples), which must also be above zero; a "
        f"guardrail breached with action `fail` fails the gate too.", "",
        markdown_table(pd.DataFrame(gate_rows)), "",
        "Serving latency, the registered versions and the MLflow runs: `serving.md` and "
        "`timing.md` (they depend on the machine and the tracking store, not only on the data "
        "and seed).", "",
        *sections(story.rollout)]) + "\n"
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
    card = portfolio.card(cfg.case, metrics, info, train_run, cfg.report.mlflow_ui)
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


def gate_row(task: str, view: str, r: dict) -> dict:
    """One row of the rollout's gate table: the improvement with its interval, the guardrails."""
    g = r["gate"]
    lo, hi = g.get("improvement_interval") or (None, None)
    guards = [f"{x['metric']} {'BREACHED' if x['breached'] else 'ok'} ({x['action']})"
              for x in g.get("guardrails", [])]
    return {"task": task, "view": view, "selected": r["selected"], "metric": g["metric"],
            "model": g["model"], "baseline": g["baseline"],
            "improvement": f"{100 * g['relative_improvement']:+.1f}%",
            "95% interval": "n/a" if lo is None else f"[{100 * lo:+.1f}%, {100 * hi:+.1f}%]",
            "guardrails": ", ".join(guards) or "none",
            "gate": "pass" if g["passed"] else "FAIL"}
