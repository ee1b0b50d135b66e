"""The evaluation plots every case gets: candidates per task, calibration, recall per class."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cases.lifecycle import evaluate as ev
from cases.lifecycle.eda import figure


def evaluation_plots(results: Mapping, predictions: Mapping, tasks: Mapping) -> dict:
    """`results[task][view]` holds `selected`, `test` (metrics per candidate) and `y`;
    `predictions[(task, view, name)]` the test predictions of the selected model and baseline."""
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
    return plots
