"""analyze: the case's own analyses of its trained models (reason codes, curves, audits):
markdown sections, plots and tables under reports/<case>/analysis*, facts for the story. Runs in
an MLflow run of its own (a child of the training run) that keeps its results as artifacts."""

from __future__ import annotations

import joblib
from omegaconf import DictConfig

from cases.config import to_container
from cases.lifecycle import tracking
from cases.lifecycle.contract import AnalysisContext, EdaResult, get_case
from cases.lifecycle.eda import write_figures
from cases.lifecycle.io import outputs
from cases.lifecycle.report import sections
from cases.stages import common
from cases.stages.paths import Paths


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    serving, train_run = common.evaluated_run(p)

    def model_file(task: str, view: str, name: str):
        return p.models / task / view / f"{name}.joblib"

    ctx = AnalysisContext(
        data=p.feature_data(),
        selection=p.json("selection")["tasks"], metrics=p.json("metrics"), cfg=cfg.case,
        seed=int(cfg.seed), tasks={t.name: t for t in case.tasks(cfg.case, int(cfg.seed))},
        load=lambda *key: joblib.load(model_file(*key)),
        size=lambda *key: model_file(*key).stat().st_size,
        serving=serving, fit_seconds=train_run.get("fit_seconds", {}),
        load_logged=lambda model_uri: tracking.load_model(common.uri(cfg), model_uri))
    result = case.analyze(ctx) if case.analyze else EdaResult(
        sections=[("No case-specific analysis", "This case has none beyond the evaluation.")],
        figures={}, facts={})
    lines = [f"# {cfg.case.title}: analysis", "", *sections(result.sections)]
    with outputs() as out:
        write_figures(out.path(p.analysis_dir), result.figures)
        out.write_text(p.analysis_md, "\n".join(lines))
        out.write_json(p.analysis_json, result.facts)
        out.write_json(p.analysis_timing, result.timings)
    if case.analyze:
        with common.open_run(cfg, p.json("ingest"), "analyze", parent=train_run["run_id"],
                             params={"analysis": to_container(cfg.case.analysis),
                                     "seed": cfg.seed}) as mlrun:
            mlrun.log_artifacts([p.analysis_md, p.analysis_json, p.analysis_timing,
                                 p.analysis_dir],
                                artifact_path="analysis")
    return result.facts
