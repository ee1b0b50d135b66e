"""The profile every case's EDA starts with, and figure helpers (PNG, non-interactive)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def profile_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Type, missing share and distinct count per column: what is missing, before any model."""
    return pd.DataFrame({
        "column": frame.columns,
        "dtype": [str(t) for t in frame.dtypes],
        "missing": [int(frame[c].isna().sum()) for c in frame.columns],
        "missing_pct": [round(100 * float(frame[c].isna().mean()), 2) for c in frame.columns],
        "distinct": [int(frame[c].nunique(dropna=True)) for c in frame.columns],
    })


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:,.3f}") -> str:
    def fmt(v) -> str:
        if isinstance(v, float):
            return floatfmt.format(v)
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines)


def figure(title: str, xlabel: str, ylabel: str, size=(6.4, 3.6)):
    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_figures(folder, figures) -> None:
    """Tables as CSV (plot data for `dvc plots`), figures as PNG."""
    for stem, obj in figures.items():
        if isinstance(obj, pd.DataFrame):
            obj.to_csv(folder / f"{stem}.csv", index=False)
        else:
            save(obj, folder / f"{stem}.png")
