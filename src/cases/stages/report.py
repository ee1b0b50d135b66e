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
    gate_rows = [{"task": t, "view": v, "selected": r["selected"], "metric": r["gate"]["metric"],
                  "model": r["gate"]["model"], "baseline": r["gate"]["baseline"],
                  "improvement": f"{100 * r['gate']['relative_improvement']:+.1f}%",
                  "gate": "pass" if r["gate"]["passed"] else "FAIL"}
                 for t, views in metrics["tasks"].items() for v, r in views.items()]
    rollout_md = "\n".join([
        f"# {cfg.case.title}: rollout report", "", f"> {cfg.case.question}", "",
        source_line(info), "", "## Gate against the baseline", "",
        f"A model is registered as `champion` only if it beats the baseline on the test "
        f"split by at least {100 * float(cfg.case.evaluate.gate_min_improvement):.1f}% on its "
        f"selection metric.", "", markdown_table(pd.DataFrame(gate_rows)), "",
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
