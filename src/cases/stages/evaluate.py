"""evaluate: every candidate on the test rows, the gate against the baseline per task and view,
the evaluation plots; then, in an MLflow run of its own (a child of the training run), the test
metrics on the logged models, registration of each model that passed its gate, and the latency
of the primary model loaded back from MLflow, as a service would load it; then the files; then
`@champion`.

Files and registry agree after a kill at any moment. Two stores cannot change in one atomic
step, so the order makes every intermediate state either harmless or recorded:

1. In the MLflow run: register a new version of each model that passed its gate, *without* the
   alias. A kill here (or before the run closes) leaves the old files and the old `@champion`,
   which agree; the new versions are unaliased extras, and the next stage marks the run FAILED.
2. Publish metrics.json, serving.json (the new versions, `"alias_state": "pending"`),
   serving.md and the plots atomically (`outputs`). A kill before the rename: as in 1.
3. Move `@champion` to the new versions, then rewrite serving.json with `"alias_state": "done"`
   (atomically). A kill between 2 and the rewrite leaves serving.json saying `pending`: the intent
   is on disk, and the next tracked stage of the case to take its lock moves the aliases
   (`common.start_tracking`, idempotent) before it reads anything, so no reader sees them
   disagree.

The version numbers in the files are those the registry gave in step 1, never predicted.
"""

from __future__ import annotations

import logging
import time

import joblib
from omegaconf import DictConfig

from cases.config import to_container
from cases.errors import CasebookError
from cases.lifecycle import bootstrap as bs
from cases.lifecycle import evaluate as ev
from cases.lifecycle import floor as fl
from cases.lifecycle.contract import get_case
from cases.lifecycle.eda import write_figures
from cases.lifecycle.features import FeatureData
from cases.lifecycle.io import outputs
from cases.lifecycle.parallel import predict_threads
from cases.lifecycle.plots import evaluation_plots
from cases.lifecycle.selection import predict_for
from cases.stages import common
from cases.stages.guard import kill_point
from cases.stages.paths import Paths

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    data = p.feature_data()
    info = p.json("ingest")
    selection_file = p.json("selection")
    train_run = p.json("run")
    tasks = {t.name: t for t in case.tasks(cfg.case, int(cfg.seed))}
    ecfg = cfg.case.evaluate
    min_improvement = float(ecfg.gate_min_improvement)
    guardrails = to_container(ecfg.guardrails)
    metric_columns = list(ecfg.get("metric_columns") or [])
    results: dict = {}
    predictions: dict = {}
    t0 = time.perf_counter()
    boot_seconds = 0.0
    for tname, views in selection_file["tasks"].items():
        task = tasks[tname]
        rows = data.rows("test", task.target)
        y = rows.frame[task.target].to_numpy()
        score = ev.scorer(task.kind, task.classes, case.segments, case.extra_metrics, cfg.case)
        statistics = bs.statistics(task.kind, task.classes, case.segments, case.extra_statistics,
                                   cfg.case)
        unit, units = bs.unit_ids(rows, to_container(ecfg.bootstrap_unit))
        resamples = bs.Resamples(units, int(ecfg.bootstrap_resamples), int(cfg.seed),
                                 int(ecfg.bootstrap_rowwise_resamples))
        truth = fl.truth_prediction(rows.frame, tname, cfg.case, info["source"])
        bootstrap = {"unit": unit, "units": resamples.n_units, "resamples": resamples.n,
                     "rowwise_resamples": resamples.n_rowwise, "seed": int(cfg.seed),
                     "level": bs.LEVEL}
        for view, entry in views.items():
            X = rows.frame[data.views[view]]
            # what the metrics may read beyond the inputs (never a feature: e.g. the protected
            # attributes a fairness metric audits), where the test rows have them
            M = X.join(rows.frame[[c for c in metric_columns if c in rows.frame
                                   and c not in X]])
            res: dict = {}
            stats: dict = {}
            predict_ms: dict = {}
            for name in entry["candidates"]:
                # its LightGBM steps predict on every core (same values at any thread count)
                model = predict_threads(joblib.load(p.models / tname / view / f"{name}.joblib"))
                t1 = time.perf_counter()
                pred = predict_for(task.kind, model, X, len(task.classes) if task.classes else None)
                predict_ms[name] = 1000 * (time.perf_counter() - t1) / max(len(X), 1) * 1000
                res[name] = score(y, pred, M)
                t1 = time.perf_counter()
                stats[name] = _statistics_of(case.name, tname, statistics(y, pred, M), res[name])
                boot_seconds += time.perf_counter() - t1
                if name in (entry["selected"], "baseline"):
                    predictions[(tname, view, name)] = pred
            # the Bayes floor: the truth scored like a model, on the same resamples
            floor_res = None
            if truth is not None:
                floor_res = score(y, truth, M)
                stats["floor"] = _statistics_of(case.name, tname, statistics(y, truth, M),
                                                floor_res)
            t1 = time.perf_counter()
            boot = bs.resample_all(stats, resamples)
            summary = bs.evaluate_view(res, boot, entry["selected"], entry["metric"],
                                       min_improvement, guardrails)
            floor = fl.unavailable() if floor_res is None else fl.summarise(
                res, floor_res, boot, entry["selected"], entry["metric"],
                fl.truth_columns(cfg.case)[tname])
            boot_seconds += time.perf_counter() - t1
            results.setdefault(tname, {})[view] = {
                "selected": entry["selected"], "gate": summary["gate"], "test": res,
                "cv": entry["candidates"][entry["selected"]]["cv"], "bootstrap": bootstrap,
                "intervals": summary["intervals"], "paired": summary["paired"], "floor": floor,
                "y": y,
                "predict_ms_per_1k": predict_ms,
                "cv_all": {n: c["cv"] for n, c in entry["candidates"].items()}}
    _check_guardrails(case.name, guardrails, results)
    log.info("evaluate %s: test metrics and bootstrap in %.1f s, of which the bootstrap %.1f s",
             case.name, time.perf_counter() - t0, boot_seconds)
    pt, pv = cfg.case.primary.task, cfg.case.primary.view
    head = results[pt][pv]
    metrics = {
        "case": case.name, "source": info["source"], "rows": info["rows"],
        "data_hash": info["data_hash"],
        "split": {**data.meta["split"], "cv": selection_file["cv"]},
        "primary": {"task": pt, "view": pv, "metric": head["gate"]["metric"]},
        "selected_model": head["selected"], "baseline": head["test"]["baseline"],
        "test": head["test"][head["selected"]],
        "floor": head["floor"]["test"] if head["floor"]["available"] else None,
        "gap_closed": head["floor"].get("gap_closed"),
        "cv": head["cv"], "gate": head["gate"],
        "test_interval": head["intervals"][head["selected"]], "bootstrap": head["bootstrap"],
        "tasks": {t: {v: {k: r[k] for k in ("selected", "gate", "test", "cv", "bootstrap",
                                            "intervals", "paired", "floor")}
                      for v, r in views.items()} for t, views in results.items()},
    }
    plots = {**evaluation_plots(results, predictions, tasks),
             **case.evaluation_plots(results, cfg.case)}
    params = {"evaluate": to_container(cfg.case.evaluate),
              "primary": to_container(cfg.case.primary), "seed": cfg.seed}
    with common.open_run(cfg, info, "evaluate", parent=train_run["run_id"],
                         params=params) as mlrun:
        mlrun.log_dataset(f"{case.name}-test", info["data_hash"], info["source"],
                          len(data.rows("test")), "test")
        serving = _serve(cfg, mlrun, train_run, results, data, info)
        test_metrics = headline_metrics(results)
        mlrun.log_metrics({**test_metrics, "latency_p50_ms": serving["latency_ms"]["p50"],
                           "latency_p99_ms": serving["latency_ms"]["p99"]})
        result_tags = {
            "selected_model": head["selected"], "gate_passed": str(head["gate"]["passed"]).lower(),
            **{f"{key}.{t}": value for t, m in serving["models"].items()
               for key, value in (("selected_model", m["candidate"]),
                                  ("gate_passed", str(m["gate_passed"]).lower()))}}
        mlrun.set_tags(result_tags)
        _annotate_training_run(cfg, mlrun.other(train_run["run_id"]), results, tasks, train_run,
                               serving, metrics, info, {**test_metrics, **{
                                   f"latency_{q}_ms": serving["latency_ms"][q]
                                   for q in ("p50", "p99")}}, result_tags)
        kill_point("evaluate:registered")
    kill_point("evaluate:run_closed")
    serving["alias_state"] = ("pending" if any(m["registered_model"]
                                               for m in serving["models"].values()) else "none")
    with outputs() as out:
        write_figures(out.path(p.evaluation), plots)
        out.write_json(p.metrics, metrics)
        out.write_json(p.serving, serving)
        out.write_text(p.serving_md, serving_markdown(serving, train_run, cfg.report.mlflow_ui))
    kill_point("evaluate:published")
    common.move_aliases(cfg, serving)
    return metrics


def headline_metrics(results: dict) -> dict[str, float]:
    """The test figures of every task and view: the selected model's, its interval and the
    baseline's and the Bayes floor's, named `<task>.<view>.test_<metric>` (`_lo`, `_hi`),
    `...baseline_<metric>` and `...floor_<metric>`."""
    out: dict[str, float] = {}
    for t, views in results.items():
        for v, r in views.items():
            sel = r["selected"]
            out.update({f"{t}.{v}.test_{m}": x for m, x in r["test"][sel].items()})
            out.update({f"{t}.{v}.baseline_{m}": x for m, x in r["test"]["baseline"].items()})
            out.update({f"{t}.{v}.test_{m}_{end}": x
                        for m, ends in r["intervals"][sel].items()
                        for end, x in zip(("lo", "hi"), ends) if x is not None})
            if r["floor"]["available"]:
                out.update({f"{t}.{v}.floor_{m}": x for m, x in r["floor"]["test"].items()})
    return out


def _annotate_training_run(cfg: DictConfig, parent, results: dict, tasks: dict, train_run: dict,
                           serving: dict, metrics: dict, info: dict, test_metrics: dict,
                           tags: dict) -> None:
    """What a reader of the training run (the case's run in MLflow) looks for first: the test
    figures of every task and view, the selected model and gate per task as tags, a description
    with the verdict per task, and a comparison of every candidate per task (table and plot)."""
    from cases.lifecycle.plots import comparison_plot, comparison_table
    from cases.lifecycle.report import run_description

    parent.log_metrics(test_metrics)
    parent.set_tags(tags)
    parent.describe(run_description(cfg.case.title, cfg.case.question, info, metrics,
                                    serving["models"], serving["evaluation_run_id"]))
    fit = train_run.get("fit_seconds", {})
    for tname, views in results.items():
        table = comparison_table(views, fit.get(tname, {}))
        parent.log_files({f"{tname}.csv": table,
                          f"{tname}.png": comparison_plot(tname, tasks[tname].selection_metric,
                                                          table)},
                         "comparison")


def _statistics_of(case: str, task: str, stats: dict, metrics: dict) -> dict:
    """The bootstrap statistics of a model's test metrics: one for each metric, or an error
    naming the metric without one (a case's extra metric needs its twin in
    `Case.extra_statistics`)."""
    missing = sorted(set(metrics) - set(stats))
    if missing:
        raise CasebookError(f"case {case}, task {task}: no bootstrap statistic for test metric(s) "
                            f"{', '.join(missing)}; declare them in the case's extra_statistics")
    return {m: stats[m] for m in metrics}


def _check_guardrails(case: str, guardrails: list, results: dict) -> None:
    """A guardrail on a metric no task computes is a typo, not a pass."""
    metrics = {m for views in results.values() for r in views.values()
               for m in r["test"][r["selected"]]}
    unknown = [g.get("metric") for g in guardrails if g.get("metric") not in metrics]
    if unknown:
        raise CasebookError(f"case {case}: case.evaluate.guardrails names "
                            f"{', '.join(map(str, unknown))}, which no task computes; test "
                            f"metrics: {', '.join(sorted(metrics))}")


def _serve(cfg: DictConfig, mlrun, train_run: dict, results: dict, data: FeatureData,
           info: dict) -> dict:
    """Test metrics on each logged model (this run, the test set as the dataset), a registered
    version (no alias yet) of each that passed its gate, and single-row latency of the primary
    task's model."""
    from cases.lifecycle import tracking

    serving: dict = {"train_run_id": train_run["run_id"], "evaluation_run_id": mlrun.run_id,
                     "models": {}}
    dataset = (f"{cfg.case.name}-test", info["data_hash"])
    for tname, logged in train_run["models"].items():
        r = results[tname][logged["view"]]
        mlrun.log_metrics({f"test_{m}": v for m, v in r["test"][r["selected"]].items()},
                          model_id=logged["model_id"], dataset=dataset)
        name = f"{cfg.tracking.registered_model_prefix}{cfg.case.name}-{tname}"
        entry = {**logged, "gate_passed": r["gate"]["passed"], "registered_model": None,
                 "version": None, "alias": None}
        if r["gate"]["passed"]:
            entry["version"] = mlrun.register(  # the alias moves after publishing (docstring)
                logged["model_uri"], name, None,
                tags={"case": cfg.case.name, "task": tname, "view": logged["view"],
                      "candidate": logged["candidate"], "data_hash": info["data_hash"],
                      "source": info["source"], "rows": info["rows"],
                      "gate_passed": str(r["gate"]["passed"]).lower(),
                      "gate_metric": r["gate"]["metric"], "training_run_id": train_run["run_id"],
                      "evaluation_run_id": mlrun.run_id},
                description=version_card(cfg.case.name, tname, logged, r, info),
                model_description=(f"{cfg.case.title}, task `{tname}`: {cfg.case.question} "
                                   f"Each version is the selected model of a training run "
                                   f"that passed its gate against the baseline."))
            entry.update(registered_model=name, alias="champion")
        else:
            log.warning("%s: %s did not beat the baseline on %s; not registered", tname,
                        r["selected"], r["gate"]["metric"])
        serving["models"][tname] = entry
    primary = serving["models"][cfg.case.primary.task]
    loaded = tracking.load_model(common.uri(cfg), primary["model_uri"])
    X = data.rows("test").frame[data.views[primary["view"]]]
    rows = X.sample(min(int(cfg.case.evaluate.latency_samples), len(X)), random_state=int(cfg.seed))
    serving["latency_ms"] = {
        **ev.latency_ms(loaded.predict, (rows.iloc[[i]] for i in range(len(rows))),
                        warmup=rows.iloc[[0]]),
        "model": cfg.case.primary.task}
    return serving


def version_card(case: str, task: str, logged: dict, r: dict, info: dict) -> str:
    """The model card of a registered version: what it is, the data, its test figure against
    the baseline with the interval, and the gate."""
    from cases.lifecycle.report import decimals, gate_note, interval

    g = r["gate"]
    d = decimals(g["model"], g["baseline"])
    return (f"`{logged['candidate']}` for {case}/{task} (view `{logged['view']}`), trained on "
            f"{info['rows']:,} rows of `{info['source']}` (data hash `{info['data_hash']}`). "
            f"Test {g['metric']}: {g['model']:,.{d}f}{interval(r, r['selected'], g['metric'], d)} "
            f"against the baseline's {g['baseline']:,.{d}f}; {gate_note(r)}.")


def serving_markdown(serving: dict, train_run: dict, ui: str | None = None) -> str:
    """The run-dependent part of the rollout: MLflow ids, registry versions and latency."""
    lat = serving["latency_ms"]
    registered = [f"`{m['registered_model']}` version {m['version']} @{m['alias']}"
                  for m in serving["models"].values() if m["registered_model"]]
    return "\n".join([
        "## This run in MLflow", "",
        f"Training run {_run_link(ui, train_run, train_run['run_id'])} in experiment "
        f"`{train_run['experiment']}`; evaluation run "
        f"{_run_link(ui, train_run, serving['evaluation_run_id'])}.", "",
        "Registered: " + (", ".join(registered) if registered else "nothing (no model passed)."),
        "", "## Serving latency", "",
        f"Single-row prediction of the `{lat['model']}` model loaded back from MLflow "
        f"(`{serving['models'][lat['model']]['model_uri']}`), {lat['n']} calls: "
        f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms.", ""])


def _run_link(ui: str | None, train_run: dict, run_id: str) -> str:
    """The run id, linked to the run's page in the MLflow UI when its address is known."""
    from cases.lifecycle.tracking import run_url

    if not ui:
        return f"`{run_id}`"
    return f"[`{run_id}`]({run_url(ui, train_run['experiment_id'], run_id)})"
