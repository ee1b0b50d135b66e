"""The lifecycle stages, listed once. The CLI (commands and help), `pipelines/<stage>.py`,
`MLproject` and `dvc.yaml` (its deps, params and outs) all derive from `STAGES`; a test checks
that the committed files agree. Each stage body is a module of its own,
`cases.stages.<name>`, with a `run(cfg)`, imported only when the stage runs."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from cases.errors import CasebookError


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    hooks: tuple[str, ...] = ()  # the `Case` hooks it calls: their modules are its code deps
    params: tuple[str, ...] = ()  # sections of conf/case/<case>.yaml it reads
    global_params: tuple[str, ...] = ()  # keys of conf/config.yaml it reads
    reads: tuple[str, ...] = ()  # files of earlier stages (keys of `paths.FILES`)
    writes: tuple[str, ...] = ()  # its outputs (keys of `paths.FILES`)
    metrics: tuple[str, ...] = ()  # outputs DVC shows as metrics
    plots: tuple[str, ...] = ()  # outputs DVC shows as plots
    per_case: bool = True  # False: one stage for the whole portfolio
    tracks: bool = False  # opens an MLflow run: the tracking server is checked before any work


STAGES: tuple[Stage, ...] = (
    Stage("prepare", "load the case's data (real file, package or simulator), validate, write "
                     "data/<case>/prepared/ and ingest.json",
          hooks=("load",), params=("data",), global_params=("seed",),
          writes=("prepared", "ingest")),
    Stage("eda", "profile the data: reports/<case>/eda.md with plots",
          hooks=("eda",), params=("title", "question", "eda"),
          reads=("prepared", "ingest"), writes=("eda_md", "eda_json", "eda_dir")),
    Stage("features", "build features and the train/test split: data/<case>/features.parquet",
          hooks=("features",), params=("features",),
          reads=("prepared",), writes=("features", "features_meta")),
    Stage("train", "cross-validate every candidate, select, fit; opens the case's MLflow run "
                   "(a child run per candidate) and logs each task's selected model",
          hooks=("tasks", "segments", "extra_metrics"),
          params=("features", "train", "metrics", "primary"), global_params=("seed",),
          reads=("features", "features_meta", "ingest"),
          writes=("models", "selection", "run"), tracks=True),
    Stage("evaluate", "test metrics, gate against the baseline, register the model, latency: "
                      "reports/<case>/metrics.json (an MLflow run of its own per evaluation)",
          hooks=("tasks", "segments", "extra_metrics", "extra_statistics",
                 "evaluation_plots"),
          params=("metrics", "evaluate", "primary"), global_params=("seed", "report.mlflow_ui"),
          reads=("features", "features_meta", "ingest", "models", "selection", "run"),
          writes=("metrics", "serving", "serving_md", "evaluation"),
          metrics=("metrics",), plots=("evaluation",), tracks=True),
    Stage("analyze", "the case's own analyses of its models (e.g. reason codes): "
                     "reports/<case>/analysis.md",
          hooks=("tasks", "analyze"),
          params=("analysis", "data", "features", "train", "primary"), global_params=("seed",),
          reads=("features", "features_meta", "models", "selection", "run", "metrics",
                 "serving"),
          writes=("analysis_md", "analysis_json", "analysis_dir", "analysis_timing"),
          tracks=True),
    Stage("report", "rollout report, talking points, HTML pages and the case's portfolio card: "
                    "reports/<case>/rollout.md, reports/cards/<case>.json",
          hooks=("story",),
          params=("title", "question", "data", "metrics", "evaluate", "primary", "report"),
          global_params=("report.mlflow_ui",),
          reads=("ingest", "run", "eda_md", "eda_json", "metrics", "serving", "serving_md",
                 "evaluation", "analysis_md", "analysis_json", "analysis_timing"),
          writes=("rollout_md", "talking_md", "timing_md", "rollout_html", "talking_html",
                  "eda_html", "analysis_html", "card"), tracks=True),
    Stage("portfolio", "the portfolio page from every case's card: reports/index.html",
          global_params=("report.mlflow_ui", "report.case_order"),
          reads=("cards",), writes=("index",), per_case=False),
)

NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
CASE_STAGES: tuple[str, ...] = tuple(s.name for s in STAGES if s.per_case)


def get(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise CasebookError(f"unknown stage {name!r}; stages: {', '.join(NAMES)}")


def run_stage(name: str, cfg):
    """Run one stage: its module's `run(cfg)`; a per-case stage holds the case's lock and starts
    from a clean state (`cases.stages.guard`)."""
    stage = get(name)
    module = importlib.import_module(f"cases.stages.{name}")
    if not stage.per_case:
        return module.run(cfg)
    from cases.stages import guard

    with guard.case_lock(cfg):
        guard.start(stage, cfg)
        return module.run(cfg)
