"""The profile every case's EDA starts with, markdown tables, and figure helpers (PNG,
non-interactive)."""

from __future__ import annotations

import functools
import numbers
import re

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


# columns whose numbers are labels (years, ids, flight numbers, codes): no thousands separator
_LABEL_COLUMN = re.compile(r"(^|[_ ])(year|id|flight|zip|zipcode|code|number)($|[_ ])", re.I)
# columns that hold a percentage (or a share, as a fraction of 1 or already times 100)
_PERCENT_COLUMN = re.compile(r"pct|percent|share|%", re.I)


def number(value: float, spec: str) -> str:
    """`format(value, spec)`, except that a value which rounds to zero prints as zero ("0.00",
    "+0.000", "0.0%"), never with a minus sign ("-0.00") a reader takes for a finding."""
    text = format(value, spec)
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        return format(0.0, spec)
    return text


def _column_format(name, values: list, spec: str):
    """How one column's numbers print: labels as plain integers, whole numbers as integers,
    percentages with one decimal and `%` (a share of at most 1 times 100), others by `spec`
    (a format spec); a value that rounds to zero prints as zero, without a sign."""
    nums = [float(v) for v in values
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v]
    integral = bool(nums) and all(v.is_integer() for v in nums)
    label = bool(_LABEL_COLUMN.search(str(name)))
    percent = bool(_PERCENT_COLUMN.search(str(name))) and not label
    scale = 100.0 if percent and "share" in str(name).lower() and all(
        abs(v) <= 1 for v in nums) else 1.0

    def fmt(v) -> str:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return str(v)
        if v != v:
            return ""
        if percent:
            return f"{number(scale * float(v), '.1f')}%"
        if integral:
            return f"{int(v)}" if label else f"{int(v):,}"
        return number(float(v), spec)

    return fmt


def markdown_table(frame: pd.DataFrame, spec: str = ",.3f") -> str:
    cols = list(frame.columns)
    fmts = [_column_format(c, frame.iloc[:, i].tolist(), spec) for i, c in enumerate(cols)]
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f(v) for f, v in zip(fmts, row)) + " |")
    return "\n".join(lines)


@functools.cache
def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, imported with the first figure:
    a stage that only formats tables (report) does not load matplotlib (0.3 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(title: str, xlabel: str, ylabel: str, size=(6.4, 3.6)):
    fig, ax = pyplot().subplots(figsize=size, dpi=100)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")
    pyplot().close(fig)


def write_figures(folder, figures) -> None:
    """Tables as CSV (plot data for `dvc plots`), figures as PNG."""
    for stem, obj in figures.items():
        if isinstance(obj, pd.DataFrame):
            obj.to_csv(folder / f"{stem}.csv", index=False)
        else:
            save(obj, folder / f"{stem}.png")
