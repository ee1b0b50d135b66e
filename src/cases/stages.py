"""The lifecycle stages. Each composes nothing itself: it takes a composed config, reads the
previous stage's outputs, calls the case and the shared lifecycle, and publishes its outputs
atomically. DVC runs one stage per case (`dvc.yaml`), the CLI runs them by name."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from cases.config import repo_root, to_container
from cases.errors import CasebookError
from cases.lifecycle import evaluate as ev
from cases.lifecycle import portfolio, tracking
from cases.lifecycle.contract import AnalysisContext, Candidate, Case, EdaResult, Task, get_case
from cases.lifecycle.eda import markdown_table, profile_table, save
from cases.lifecycle.features import check_views
from cases.lifecycle.io import frame_hash, outputs, read_json
from cases.lifecycle.selection import (
    cross_validate,
    expanding_time_folds,
    group_folds,
    predict_for,
    select,
    shuffled_folds,
    time_group_folds,
)

log = logging.getLogger(__name__)
STAGES = ("prepare", "eda", "features", "train", "evaluate", "analyze", "report")
PORTFOLIO = "portfolio"


class Paths:
    def __init__(self, cfg: DictConfig):
        self.data = Path(cfg.paths.data)
        self.reports = Path(cfg.paths.reports)
        self.raw = Path(cfg.paths.raw)
        self.prepared = self.data / "prepared"
        self.ingest = self.data / "ingest.json"
        self.features = self.data / "features.parquet"
        self.features_meta = self.data / "features.json"
        self.models = self.data / "models"
        self.selection = self.data / "selection.json"
        self.run = self.data / "run.json"
        self.metrics = self.reports / "metrics.json"
        self.serving = self.reports / "serving.json"
        self.card = Path(cfg.paths.root) / "reports" / "cards" / f"{cfg.case.name}.json"

    def need(self, path: Path, stage: str) -> Path:
        if not path.exists():
            raise CasebookError(f"{path} is missing; run the '{stage}' stage first "
                                f"(or `dvc repro` for the whole pipeline)")
        return path


def _uri(cfg: DictConfig) -> str:
    return tracking.tracking_uri(cfg.tracking.uri, cfg.paths.root)


# ------------------------------------------------------------------------------------- prepare
def prepare(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    ds = case.load(cfg.case.data, p.raw)
    tables = dict(ds.tables)
    main_name = next(iter(tables))
    available = len(tables[main_name])
    n = cfg.case.data.get("sample_rows")
    if n is not None:
        if int(n) <= 0:
            raise CasebookError(f"case.data.sample_rows must be a positive integer, got {n}")
        if int(n) < available:
            tables[main_name] = tables[main_name].sample(int(n), random_state=cfg.seed).sort_index(
            ).reset_index(drop=True)
    info = {
        "case": case.name,
        "source": ds.source,
        "description": ds.description,
        "files": ds.files,
        "rows": len(tables[main_name]),
        "rows_available": available,
        "sampled": len(tables[main_name]) < available,
        "tables": {k: len(v) for k, v in tables.items()},
        "data_hash": frame_hash(pd.DataFrame({"table": list(tables),
                                              "hash": [frame_hash(t) for t in tables.values()]})),
    }
    with outputs() as out:
        folder = out.path(p.prepared)
        for name, table in tables.items():
            table.to_parquet(folder / f"{name}.parquet", index=False)
        out.write_json(p.ingest, info)
    log.info("prepared %s: %s rows from %s (hash %s)", case.name, f"{info['rows']:,}",
             info["source"], info["data_hash"])
    return info


def _tables(p: Paths) -> dict[str, pd.DataFrame]:
    p.need(p.prepared, "prepare")
    return {f.stem: pd.read_parquet(f) for f in sorted(p.prepared.glob("*.parquet"))}


# ------------------------------------------------------------------------------------------ eda
def eda(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    tables = _tables(p)
    info = read_json(p.need(p.ingest, "prepare"))
    result = case.eda(tables, cfg.case)
    main = tables[next(iter(tables))]
    lines = [
        f"# {cfg.case.title}: exploratory analysis",
        "",
        f"> {cfg.case.question}",
        "",
        _source_line(info),
        "",
    ]
    lines += _sections(result.sections)
    lines += ["## Column profile (main table)", "", markdown_table(profile_table(main)), ""]
    with outputs() as out:
        _write_figures(out.path(p.reports / "eda"), result.figures)
        out.write_text(p.reports / "eda.md", "\n".join(lines))
        out.write_json(p.reports / "eda.json", result.facts)
    return result.facts


def _sections(sections) -> list[str]:
    lines: list[str] = []
    for title, body in sections:
        lines += [f"## {title}", "", body.strip(), ""]
    return lines


def _write_figures(folder: Path, figures: dict) -> None:
    """Tables as CSV (plot data for `dvc plots`), figures as PNG."""
    for stem, obj in figures.items():
        if isinstance(obj, pd.DataFrame):
            obj.to_csv(folder / f"{stem}.csv", index=False)
        else:
            save(obj, folder / f"{stem}.png")


def _source_line(info: dict) -> str:
    sampled = (f" (a seeded sample of {info['rows']:,} from {info['rows_available']:,})"
               if info.get("sampled") else "")
    return (f"**Data:** {info['description']}: {info['rows']:,} rows{sampled}; source "
            f"`{info['source']}`, content hash `{info['data_hash']}`.")


# ------------------------------------------------------------------------------------- features
def features(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    ft = case.features(_tables(p), cfg.case)
    check_views(ft.frame, ft.views, ft.targets, cfg.case.features.get("forbidden", []))
    frame = ft.frame.copy()
    frame["_split"] = ft.split.to_numpy()
    frame["_period"] = ft.period.to_numpy() if ft.period is not None else 0
    frame["_group"] = ft.groups.to_numpy() if ft.groups is not None else 0
    meta = {
        "views": ft.views,
        "targets": ft.targets,
        "time_ordered": ft.period is not None,
        "grouped": ft.groups is not None,
        "split": {**ft.split_info,
                  "train_rows": int((frame["_split"] == "train").sum()),
                  "test_rows": int((frame["_split"] == "test").sum())},
    }
    if meta["split"]["train_rows"] == 0 or meta["split"]["test_rows"] == 0:
        raise CasebookError(f"the split left {meta['split']['train_rows']} training and "
                            f"{meta['split']['test_rows']} test rows; check case.features")
    with outputs() as out:
        frame.to_parquet(out.path(p.features), index=False)
        out.write_json(p.features_meta, meta)
    return meta


# ---------------------------------------------------------------------------------------- train
def _score(case: Case, task: Task, cfg: DictConfig):
    def score(y_true, pred, rows) -> dict:
        if task.kind == "regression":
            out = ev.regression_metrics(y_true, pred, case.segments(y_true, rows, cfg.case))
        elif task.kind == "binary":
            out = ev.binary_metrics(y_true, pred)
        else:
            out = ev.multiclass_metrics(y_true, pred, task.classes)
        return {**out, **case.extra_metrics(y_true, pred, rows, cfg.case)}

    return score


def _folds(meta: dict, rows: pd.DataFrame, labels, n_folds: int, seed: int) -> list:
    """Time-ordered data: expanding time folds (also holding out groups such as drivers when the
    case has them); otherwise shuffled folds of whole groups (hosts) when the case has groups,
    else shuffled folds, stratified by class `labels` when given."""
    if meta["time_ordered"] and meta.get("grouped"):
        return time_group_folds(rows["_period"], rows["_group"], n_folds)
    if meta["time_ordered"]:
        return expanding_time_folds(rows["_period"], n_folds)
    if meta.get("grouped"):
        return group_folds(rows["_group"], n_folds, seed)
    return shuffled_folds(len(rows), n_folds, seed, labels)


def _cv_description(meta: dict, n_folds: int) -> str:
    if not meta["time_ordered"]:
        return (f"{n_folds} shuffled folds of whole groups (e.g. hosts)" if meta.get("grouped")
                else f"{n_folds} shuffled folds")
    return (f"{n_folds} expanding time folds: each validates on one later training period and "
            f"trains on every period before it"
            + (", holding out a different set of groups (e.g. drivers) in each"
               if meta.get("grouped") else ""))


def _n_classes(task: Task) -> int | None:
    return len(task.classes) if task.classes else None


def _candidates(task: Task, view: str, cols: list[str]) -> list[Candidate]:
    return [Candidate("baseline", task.baseline, {"model": "baseline"})] + task.candidates(
        view, cols)


def train(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    frame = pd.read_parquet(p.need(p.features, "features"))
    meta = read_json(p.features_meta)
    info = read_json(p.need(p.ingest, "prepare"))
    tasks = case.tasks(cfg.case, int(cfg.seed))
    trainset = frame[frame["_split"] == "train"].reset_index(drop=True)
    uri = _uri(cfg)
    tags = {"case": case.name, "source": info["source"], "data_hash": info["data_hash"],
            "rows": str(info["rows"]), **tracking.git_info(repo_root())}
    run_id = tracking.start_pipeline_run(
        uri, f"{cfg.tracking.experiment_prefix}{case.name}",
        f"{case.name}-{info['source']}", tags, to_container(cfg))
    try:
        selection: dict = {}
        parent_metrics: dict[str, float] = {}
        with outputs() as out:
            models_dir = out.path(p.models)
            for task in tasks:
                rows = trainset[trainset[task.target].notna()].reset_index(drop=True)
                y = rows[task.target]
                folds = _folds(meta, rows, y if task.kind != "regression" else None,
                               int(cfg.case.train.cv_folds), int(cfg.seed))
                for view, cols in meta["views"].items():
                    if task.views is not None and view not in task.views:
                        continue
                    cands = _candidates(task, view, cols)
                    X = rows[cols]
                    results = cross_validate(cands, X, y, folds, task.kind,
                                             _score(case, task, cfg), desc=f"{task.name}/{view}",
                                             n_classes=_n_classes(task))
                    chosen = select([r for r in results if r.name != "baseline"],
                                    task.selection_metric)
                    entry: dict = {"selected": chosen, "metric": task.selection_metric,
                                   "candidates": {}}
                    target_dir = models_dir / task.name / view
                    target_dir.mkdir(parents=True, exist_ok=True)
                    for cand, res in zip(cands, results):
                        t0 = time.perf_counter()
                        model = cand.build().fit(X, y)
                        fit_seconds = time.perf_counter() - t0
                        joblib.dump(model, target_dir / f"{cand.name}.joblib")
                        summary = res.summary()
                        child = tracking.log_child_run(
                            uri, run_id, f"{task.name}/{view}/{cand.name}",
                            {"task": task.name, "view": view, "candidate": cand.name,
                             **cand.params},
                            {**{f"cv_{m}": s["mean"] for m, s in summary.items()},
                             **{f"cv_{m}_std": s["std"] for m, s in summary.items()},
                             "fit_seconds": fit_seconds},
                            {"stage": "train", "task": task.name, "view": view,
                             "selected": str(cand.name == chosen).lower()})
                        entry["candidates"][cand.name] = {"params": cand.params, "cv": summary,
                                                          "run_id": child}
                    selection.setdefault(task.name, {})[view] = entry
                    best = entry["candidates"][chosen]["cv"]
                    parent_metrics.update({f"{task.name}.{view}.cv_{m}": s["mean"]
                                           for m, s in best.items()})
                    log.info("%s/%s: selected %s (cv %s %.4f)", task.name, view, chosen,
                             task.selection_metric, best[task.selection_metric]["mean"])
            out.write_json(p.selection, {"cv": _cv_description(meta, cfg.case.train.cv_folds),
                                         "tasks": selection})
            out.write_json(p.run, {"run_id": run_id,
                                   "experiment": f"{cfg.tracking.experiment_prefix}{case.name}"})
        tracking.log_metrics(uri, run_id, parent_metrics)
        tracking.finish_run(uri, run_id)
    except BaseException:
        tracking.finish_run(uri, run_id, failed=True)
        raise
    return selection


# ------------------------------------------------------------------------------------- evaluate
def evaluate(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    frame = pd.read_parquet(p.need(p.features, "features"))
    meta = read_json(p.features_meta)
    info = read_json(p.ingest)
    selection_file = read_json(p.need(p.selection, "train"))
    selection = selection_file["tasks"]
    run = read_json(p.need(p.run, "train"))
    uri = _uri(cfg)
    tasks = {t.name: t for t in case.tasks(cfg.case, int(cfg.seed))}
    testset = frame[frame["_split"] == "test"].reset_index(drop=True)
    primary = cfg.case.primary
    ecfg = cfg.case.evaluate
    try:
        results: dict = {}
        predictions: dict = {}
        for tname, views in selection.items():
            task = tasks[tname]
            rows = testset[testset[task.target].notna()].reset_index(drop=True)
            y = rows[task.target].to_numpy()
            score = _score(case, task, cfg)
            for view, entry in views.items():
                X = rows[meta["views"][view]]
                res: dict = {}
                for name, cand in entry["candidates"].items():
                    model = joblib.load(p.models / tname / view / f"{name}.joblib")
                    pred = predict_for(task.kind, model, X, _n_classes(task))
                    res[name] = score(y, pred, X)
                    tracking.log_metrics(uri, cand["run_id"],
                                         {f"test_{k}": v for k, v in res[name].items()})
                    if name in (entry["selected"], "baseline"):
                        predictions[(tname, view, name)] = pred
                metric = entry["metric"]
                results.setdefault(tname, {})[view] = {
                    "selected": entry["selected"],
                    "gate": ev.gate(res[entry["selected"]][metric], res["baseline"][metric],
                                    metric, float(ecfg.gate_min_improvement)),
                    "test": res,
                    "cv": entry["candidates"][entry["selected"]]["cv"],
                    "y": y,
                }
        pt, pv = primary.task, primary.view
        head = results[pt][pv]
        metrics = {
            "case": case.name,
            "source": info["source"],
            "rows": info["rows"],
            "data_hash": info["data_hash"],
            "split": {**meta["split"], "cv": selection_file["cv"]},
            "primary": {"task": pt, "view": pv, "metric": head["gate"]["metric"]},
            "selected_model": head["selected"],
            "baseline": head["test"]["baseline"],
            "test": head["test"][head["selected"]],
            "cv": head["cv"],
            "gate": head["gate"],
            "tasks": {t: {v: {k: r[k] for k in ("selected", "gate", "test", "cv")}
                          for v, r in views.items()} for t, views in results.items()},
        }
        plots = _evaluation_plots(case, cfg, results, predictions, tasks)
        serving = _log_and_register(cfg, case, uri, run["run_id"], results, testset, meta, tasks)
        tracking.log_metrics(uri, run["run_id"], {
            **{f"test_{k}": v for k, v in metrics["test"].items()},
            **{f"baseline_{k}": v for k, v in metrics["baseline"].items()},
            "latency_p50_ms": serving["latency_ms"]["p50"],
            "latency_p99_ms": serving["latency_ms"]["p99"]})
        tracking.set_tags(uri, run["run_id"], {"selected_model": head["selected"],
                                               "gate_passed": str(head["gate"]["passed"]).lower()})
        with outputs() as out:
            _write_figures(out.path(p.reports / "evaluation"), plots)
            out.write_json(p.metrics, metrics)
            out.write_json(p.serving, serving)
        tracking.finish_run(uri, run["run_id"])
    except BaseException:
        tracking.finish_run(uri, run["run_id"], failed=True)
        raise
    return metrics


def _evaluation_plots(case: Case, cfg: DictConfig, results: dict, predictions: dict,
                      tasks: dict[str, Task]) -> dict:
    from cases.lifecycle.eda import figure

    plots: dict = {}
    cal_rows = []
    for tname, views in results.items():
        task = tasks[tname]
        metric = task.selection_metric
        fig, ax = figure(f"{tname}: test {metric} by candidate", metric, "")
        names = list(dict.fromkeys(n for r in views.values() for n in r["test"]))
        height = 0.8 / len(views)
        for i, (view, r) in enumerate(views.items()):
            vals = [r["test"][n][metric] if n in r["test"] else np.nan for n in names]
            ax.barh(np.arange(len(names)) + i * height, vals, height=height, label=view)
        ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names)
        ax.legend(fontsize=8)
        plots[f"{tname}_candidates"] = fig
        if task.kind == "binary":
            fig, ax = figure(f"{tname}: calibration on test (selected model)",
                             "mean predicted probability", "observed rate")
            ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
            for view, r in views.items():
                for name in (r["selected"], "baseline"):
                    table = ev.calibration_table(r["y"], predictions[(tname, view, name)])
                    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o",
                            label=f"{view} {name}")
                    for row in table.itertuples(index=False):
                        cal_rows.append({"task": tname, "view": view, "model": name,
                                         "mean_predicted": round(row.mean_predicted, 6),
                                         "observed_rate": round(row.observed_rate, 6),
                                         "count": int(row.count)})
            ax.legend(fontsize=8)
            plots[f"{tname}_calibration"] = fig
        if task.kind == "multiclass":
            fig, ax = figure(f"{tname}: recall per class on test", "class", "recall")
            classes = [str(c) for c in task.classes]
            width = 0.8 / (2 * len(views))
            k = 0
            for view, r in views.items():
                for name in (r["selected"], "baseline"):
                    vals = [r["test"][name].get(f"recall_{c}", np.nan) for c in classes]
                    ax.bar(np.arange(len(classes)) + k * width, vals, width=width,
                           label=f"{view} {name}")
                    k += 1
            ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, fontsize=8)
            ax.legend(fontsize=7)
            plots[f"{tname}_recall"] = fig
    if cal_rows:
        plots["calibration"] = pd.DataFrame(cal_rows)
    plots.update(case.evaluation_plots(results, cfg.case))
    return plots


def _task_view(views: dict, view: str) -> str:
    """The primary view, or the task's own view for a task scored on another (loans: each
    population has its own inputs)."""
    return view if view in views else next(iter(views))


def _log_and_register(cfg: DictConfig, case: Case, uri: str, run_id: str, results: dict,
                      testset: pd.DataFrame, meta: dict, tasks: dict[str, Task]) -> dict:
    """Log each task's selected model (primary view) to MLflow, register it under the alias
    `champion` only when it passed the gate, and time single-row predictions of the primary
    task's model loaded back from MLflow, as a service would load it."""
    p = Paths(cfg)
    view = cfg.case.primary.view
    code = [str(Path(__file__).resolve().parent)]
    serving: dict = {"models": {}}
    for tname, views in results.items():
        tview = _task_view(views, view)
        r = views[tview]
        model = joblib.load(p.models / tname / tview / f"{r['selected']}.joblib")
        X = testset[meta["views"][tview]]
        example = X.head(5).copy()
        info = tracking.log_model(uri, run_id, model, f"{case.name}-{tname}", example,
                                  code_paths=code)
        name = f"{cfg.tracking.registered_model_prefix}{case.name}-{tname}"
        entry = {**info, "view": tview, "selected": r["selected"],
                 "gate_passed": r["gate"]["passed"],
                 "registered_model": None, "version": None, "alias": None}
        if r["gate"]["passed"]:
            entry["version"] = tracking.register(uri, info["model_uri"], name, "champion")
            entry.update(registered_model=name, alias="champion")
        else:
            log.warning("%s: %s did not beat the baseline on %s; not registered", tname,
                        r["selected"], r["gate"]["metric"])
        serving["models"][tname] = entry
    primary = serving["models"][cfg.case.primary.task]
    loaded = tracking.load_model(uri, primary["model_uri"])
    X = testset[meta["views"][view]]
    n = int(cfg.case.evaluate.latency_samples)
    rows = X.sample(min(n, len(X)), random_state=int(cfg.seed))
    serving["latency_ms"] = {
        **ev.latency_ms(loaded.predict, (rows.iloc[[i]] for i in range(len(rows))),
                        warmup=rows.iloc[[0]]),
        "model": cfg.case.primary.task}
    return serving


# -------------------------------------------------------------------------------------- analyze
def analyze(cfg: DictConfig) -> dict:
    """The case's own analyses of its trained models (reason codes, curves, audits): markdown
    sections, plots and tables under reports/<case>/analysis*, facts for the story."""
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    ctx = AnalysisContext(
        frame=pd.read_parquet(p.need(p.features, "features")),
        meta=read_json(p.features_meta),
        selection=read_json(p.need(p.selection, "train"))["tasks"],
        metrics=read_json(p.need(p.metrics, "evaluate")),
        models_dir=p.models, cfg=cfg.case, seed=int(cfg.seed),
        serving=read_json(p.need(p.serving, "evaluate")),
        load_logged=lambda model_uri: tracking.load_model(_uri(cfg), model_uri))
    result = case.analyze(ctx) if case.analyze else EdaResult(
        sections=[("No case-specific analysis", "This case has none beyond the evaluation.")],
        figures={}, facts={})
    lines = [f"# {cfg.case.title}: analysis", "", *_sections(result.sections)]
    with outputs() as out:
        _write_figures(out.path(p.reports / "analysis"), result.figures)
        out.write_text(p.reports / "analysis.md", "\n".join(lines))
        out.write_json(p.reports / "analysis.json", result.facts)
    return result.facts


# --------------------------------------------------------------------------------------- report
def report(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    metrics = read_json(p.need(p.metrics, "evaluate"))
    serving = read_json(p.need(p.serving, "evaluate"))
    facts = read_json(p.need(p.reports / "eda.json", "eda"))
    info = read_json(p.need(p.ingest, "prepare"))
    run = read_json(p.need(p.run, "train"))
    uri = _uri(cfg)
    analysis = read_json(p.need(p.reports / "analysis.json", "analyze"))
    story = case.story({"metrics": metrics, "serving": serving, "eda": facts, "ingest": info,
                        "analysis": analysis}, cfg.case)
    lat = serving["latency_ms"]
    gate_rows = []
    for tname, views in metrics["tasks"].items():
        for view, r in views.items():
            g = r["gate"]
            gate_rows.append({"task": tname, "view": view, "selected": r["selected"],
                              "metric": g["metric"], "model": g["model"],
                              "baseline": g["baseline"],
                              "improvement": f"{100 * g['relative_improvement']:+.1f}%",
                              "gate": "pass" if g["passed"] else "FAIL"})
    registered = [f"`{m['registered_model']}` version {m['version']} @{m['alias']}"
                  for m in serving["models"].values() if m["registered_model"]]
    lines = [
        f"# {cfg.case.title}: rollout report", "", f"> {cfg.case.question}", "",
        _source_line(info), "",
        f"MLflow run `{run['run_id']}` in experiment `{run['experiment']}`.", "",
        "## Gate against the baseline", "",
        f"A model is registered as `champion` only if it beats the baseline on the test "
        f"split by at least {100 * float(cfg.case.evaluate.gate_min_improvement):.1f}% on its "
        f"selection metric.", "",
        markdown_table(pd.DataFrame(gate_rows)), "",
        "Registered: " + (", ".join(registered) if registered else "nothing (no model passed)."),
        "",
        "## Serving latency", "",
        f"Single-row prediction of the `{lat['model']}` model loaded back from MLflow "
        f"(`{serving['models'][lat['model']]['model_uri']}`), {lat['n']} calls: "
        f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms.", "",
    ]
    lines += _sections(story.rollout)
    talking = [f"# {cfg.case.title}: talking points", "", _source_line(info), ""]
    talking += [f"- {t}" for t in story.talking_points]
    rollout_md, talking_md = "\n".join(lines) + "\n", "\n".join(talking) + "\n"
    eda_md = (p.reports / "eda.md").read_text(encoding="utf-8")
    analysis_md = (p.reports / "analysis.md").read_text(encoding="utf-8")
    card = _card(cfg, metrics, info, run, uri)
    with outputs() as out:
        out.write_text(p.reports / "rollout.md", rollout_md)
        out.write_text(p.reports / "talking_points.md", talking_md)
        for stem, text in (("rollout", rollout_md), ("talking_points", talking_md),
                           ("eda", eda_md), ("analysis", analysis_md)):
            out.write_text(p.reports / f"{stem}.html",
                           portfolio.markdown_page(f"{cfg.case.title}: {stem}", text))
        out.write_json(p.card, card)
    try:
        tracking.log_artifacts(uri, run["run_id"], [
            p.reports / "eda.md", p.reports / "eda", p.reports / "evaluation", p.metrics,
            p.reports / "analysis.md", p.reports / "analysis", p.reports / "rollout.md",
            p.reports / "talking_points.md"], artifact_path="reports")
        tracking.set_tags(uri, run["run_id"], {"report": "written"})
    finally:
        tracking.finish_run(uri, run["run_id"])
    return {"rollout": str(p.reports / "rollout.md")}


def _card(cfg: DictConfig, metrics: dict, info: dict, run: dict, uri: str) -> dict:
    """The case's card on the portfolio: its headline figures, straight from metrics.json."""
    view = metrics["primary"]["view"]
    figures = []
    for item in cfg.case.report.card_figures:
        tname, metric = item.split(".", 1)
        views = metrics["tasks"][tname]
        r = views[_task_view(views, view)]
        figures.append({"label": f"{tname} {metric.replace('_', ' ')}", "metric": item,
                        "model": r["test"][r["selected"]].get(metric),
                        "baseline": r["test"]["baseline"].get(metric)})
    exp_id = tracking.experiment_id_of(uri, run["run_id"])
    case = cfg.case.name
    return {
        "case": case, "title": cfg.case.title, "question": cfg.case.question,
        "source": info["source"], "description": info["description"], "rows": info["rows"],
        "selected_model": metrics["selected_model"], "gate": metrics["gate"],
        "figures": figures, "view": view,
        "plot": f"{case}/{cfg.case.report.key_plot}", "plot_title": cfg.case.report.key_plot,
        "run_id": run["run_id"], "experiment_id": exp_id,
        "links": [["talking points", f"{case}/talking_points.html"],
                  ["rollout report", f"{case}/rollout.html"], ["EDA", f"{case}/eda.html"],
                  ["analysis", f"{case}/analysis.html"],
                  ["metrics.json", f"{case}/metrics.json"],
                  ["MLflow run", tracking.run_url(uri, exp_id, run["run_id"])]],
    }


# ------------------------------------------------------------------------------------ portfolio
def portfolio_index(cfg: DictConfig) -> dict:
    """reports/index.html from every case's card (reports/cards/<case>.json)."""
    reports = Path(cfg.paths.root) / "reports"
    cards = [read_json(f) for f in sorted((reports / "cards").glob("*.json"))]
    if not cards:
        raise CasebookError(f"no case cards in {reports / 'cards'}; run a case's report stage "
                            f"first (dvc repro)")
    with outputs() as out:
        out.write_text(reports / "index.html", portfolio.index_html(cards))
    log.info("portfolio: %s with %d case(s)", reports / "index.html", len(cards))
    return {"cases": [c["case"] for c in cards]}


def run_stage(name: str, cfg: DictConfig):
    if name == PORTFOLIO:
        return portfolio_index(cfg)
    if name not in STAGES:
        raise CasebookError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}, {PORTFOLIO}")
    return globals()[name](cfg)
