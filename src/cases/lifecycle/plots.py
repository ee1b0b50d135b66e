"""The evaluation plots every case gets: candidates per task, calibration, recall per class."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle import evaluate as ev
from cases.lifecycle.eda import figure, pyplot


def evaluation_plots(results: Mapping, predictions: Mapping, tasks: Mapping) -> dict:
    """`results[task][view]` holds `selected`, `test` (metrics per candidate) and `y`;
    `predictions[(task, view, name)]` the test predictions of the selected model and baseline."""
    plots: dict = {}
    cal_rows = []
    for tname, views in results.items():
        task = tasks[tname]
        metric = task.selection_metric
        names = list(dict.fromkeys(n for r in views.values() for n in r["test"]))
        fig, ax = figure(f"{tname}: test {metric} by candidate", metric, "",
                         size=(8, max(3.6, 0.25 * len(names) * len(views) + 1.2)))
        height = 0.8 / len(views)
        for i, (view, r) in enumerate(views.items()):
            vals = [r["test"][n][metric] if n in r["test"] else np.nan for n in names]
            ax.barh(np.arange(len(names)) + i * height, vals, height=height, label=view)
        ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names)
        _legend_outside(ax, "view")
        plots[f"{tname}_candidates"] = fig
        if task.kind == "binary":
            fig, ax = figure(f"{tname}: calibration on test (selected model)",
                             "mean predicted probability", "observed rate", size=(8, 4.2))
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
            _legend_outside(ax)
            plots[f"{tname}_calibration"] = fig
        if task.kind == "multiclass":
            fig, ax = figure(f"{tname}: recall per class on test", "class", "recall",
                             size=(8, 3.6))
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
            _legend_outside(ax)
            plots[f"{tname}_recall"] = fig
    if cal_rows:
        plots["calibration"] = pd.DataFrame(cal_rows)
    return plots


def _legend_outside(ax, title: str | None = None) -> None:
    """The legend right of the axes, so it never covers a bar or a point."""
    ax.legend(fontsize=7, title=title, title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1), borderaxespad=0)


def comparison_table(views: Mapping, fit_seconds: Mapping) -> pd.DataFrame:
    """Every candidate of one task, per view: CV mean and sd of the selection metric, the test
    figure with its interval, fit and prediction time; the selected model and the baseline
    marked. `views[view]` is evaluate's result (`selected`, `gate`, `cv`, `test`, `intervals`,
    `predict_ms_per_1k`); `fit_seconds[view][candidate]` train's."""
    rows = []
    for view, r in views.items():
        metric = r["gate"]["metric"]
        cv = r.get("cv_all", {})
        for name, test in r["test"].items():
            lohi = (r.get("intervals", {}).get(name) or {}).get(metric) or (None, None)
            stats = cv.get(name, {}).get(metric, {})
            rows.append({
                "view": view, "candidate": name,
                "role": ("selected" if name == r["selected"]
                         else "baseline" if name == "baseline" else ""),
                "metric": metric, "cv_mean": stats.get("mean"), "cv_sd": stats.get("std"),
                "test": test.get(metric), "test_lo": lohi[0], "test_hi": lohi[1],
                "fit_seconds": fit_seconds.get(view, {}).get(name),
                "predict_ms_per_1k_rows": r.get("predict_ms_per_1k", {}).get(name)})
    return pd.DataFrame(rows)


def comparison_plot(task: str, metric: str, table: pd.DataFrame):
    """The comparison table as a plot: each candidate's test figure with its interval (and its
    CV mean as a hollow mark), one row per view and candidate, the selected model and the
    baseline labelled and coloured."""
    n = len(table)
    fig, ax = figure(f"{task}: every candidate on test ({metric}, 95% interval)", metric, "",
                     size=(7.5, max(2.5, 0.32 * n + 1.2)))
    colours = {"selected": "#1a7f37", "baseline": "#b42318", "": "#5b6b7c"}
    labels = []
    for i, row in enumerate(table.itertuples(index=False)):
        y = n - 1 - i
        c = colours[row.role]
        if row.test_lo is not None and pd.notna(row.test_lo):
            # a percentile interval need not contain the point: draw it as measured
            ax.hlines(y, row.test_lo, row.test_hi, color=c, lw=1.5)
            ax.plot(row.test, y, "o", color=c)
        else:
            ax.plot(row.test, y, "o", color=c)
        if row.cv_mean is not None and pd.notna(row.cv_mean):
            ax.plot(row.cv_mean, y, "o", mfc="none", color=c, alpha=0.7)
        labels.append(f"{row.view} · {row.candidate}" + (f" ({row.role})" if row.role else ""))
    ax.set_yticks(range(n - 1, -1, -1), labels, fontsize=8)
    ax.plot([], [], "o", color="#5b6b7c", label="test (95% interval)")
    ax.plot([], [], "o", mfc="none", color="#5b6b7c", label="CV mean")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig


def labelled_points(ax, xs, ys, labels, marked: Mapping[str, str] | None = None) -> None:
    """Points named in a legend beside the axes (a colour and marker each) instead of text next
    to them, so close points never overlap their names; `marked` adds a role to a name
    ("selected", "baseline"), drawn larger."""
    marked = dict(marked or {})
    colours = pyplot().get_cmap("tab20").colors
    markers = "os^Dv<>pPX*h"
    for k, (x, y, name) in enumerate(zip(xs, ys, labels)):
        role = marked.get(name)
        ax.scatter(x, y, s=70 if role else 35, color=colours[k % len(colours)],
                   marker=markers[k % len(markers)], edgecolor="k" if role else "none",
                   label=f"{name} ({role})" if role else str(name), zorder=3)
    _legend_outside(ax)


def count_ticks(ax, values, axis: str = "x") -> None:
    """Ticks at the given counts only (a log axis' own minor labels collide), as 1,000 or 1.5k."""
    from matplotlib.ticker import NullFormatter

    values = sorted({int(v) for v in values})
    target = ax.xaxis if axis == "x" else ax.yaxis
    short = bool(values) and values[-1] >= 10000  # one style for the whole axis
    target.set_ticks(values, [f"{v / 1000:g}k" if short and v >= 1000 else f"{v:,}"
                              for v in values], fontsize=8)
    target.set_minor_formatter(NullFormatter())
    if axis == "x" and len(values) > 4:
        pyplot().setp(ax.get_xticklabels(), rotation=30, ha="right")
