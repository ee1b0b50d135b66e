"""Load and validate input tables. Every case declares a schema; files that break it are refused
with a message naming the file, the column and what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cases.errors import CasebookError

KINDS = ("int", "float", "str", "datetime")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # one of KINDS
    nullable: bool = True
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass
class Dataset:
    """What a case's loader returns: named tables (the first is the main one) and where they came
    from, so every report can say which source it used."""

    tables: dict[str, pd.DataFrame]
    source: str
    description: str
    files: list[str] = field(default_factory=list)


def required_path(data: Mapping, expected: str) -> str:
    """The resolved `case.data.path` of a file-backed source, or a clear error naming the option
    and what the file must hold."""
    if not data.get("path"):
        raise CasebookError(f"case.data.path is required with case.data.source="
                            f"{data.get('source')} ({expected})")
    return str(Path(data["path"]).expanduser().resolve())


def read_table(path: str | Path, what: str, dtype: dict | None = None) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet file; refuse missing, empty or unreadable files.
    `dtype` keeps CSV columns as published (e.g. {"id": str} keeps leading zeros)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CasebookError(f"{what}: file not found: {p}")
    if p.is_dir():
        raise CasebookError(f"{what}: expected a file, got a folder: {p}")
    if p.stat().st_size == 0:
        raise CasebookError(f"{what}: file is empty: {p}")
    try:
        if p.suffix == ".parquet":
            frame = pd.read_parquet(p)
        else:
            frame = pd.read_csv(p, low_memory=False, dtype=dtype)
    except pd.errors.EmptyDataError:
        raise CasebookError(f"{what}: file is empty: {p}") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes one clear message
        raise CasebookError(f"{what}: cannot read {p} as CSV or parquet: {exc}") from None
    if frame.empty:
        raise CasebookError(f"{what}: file has a header but no rows: {p}")
    return frame


def validate(frame: pd.DataFrame, schema: Schema, origin: str) -> pd.DataFrame:
    """Check columns, types and ranges; return a frame with the schema's columns coerced to their
    kinds. `origin` names the file (or package) in every message."""
    if frame.empty:
        raise CasebookError(f"{origin}: no rows")
    missing = [c for c in schema.names if c not in frame.columns]
    if missing:
        raise CasebookError(
            f"{origin}: missing column(s) {', '.join(missing)}; expected columns: "
            f"{', '.join(schema.names)}"
        )
    out = {}
    for col in schema.columns:
        out[col.name] = _coerce(frame[col.name], col, origin)
    result = pd.DataFrame(out, index=frame.index)
    return result.reset_index(drop=True)


def _coerce(series: pd.Series, col: Column, origin: str) -> pd.Series:
    where = f"{origin}: column '{col.name}'"
    if col.kind in ("int", "float"):
        values = pd.to_numeric(series, errors="coerce")
        bad = values.isna() & series.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise CasebookError(
                f"{where}: expected numbers ({col.kind}), found {series.iloc[row]!r} at row {row + 2}"
            )
        if col.kind == "int" and values.notna().any():
            frac = values.dropna() % 1 != 0
            if frac.any():
                raise CasebookError(f"{where}: expected whole numbers, found {values.dropna()[frac].iloc[0]}")
        values = values.astype("float64")
    elif col.kind == "datetime":
        values = pd.to_datetime(series, errors="coerce", utc=True)
        bad = values.isna() & series.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise CasebookError(
                f"{where}: expected date-times, found {series.iloc[row]!r} at row {row + 2}"
            )
    elif col.kind == "str":
        values = series.astype("object").where(series.notna(), None)
    else:  # pragma: no cover - schema authoring error
        raise ValueError(f"unknown column kind {col.kind!r}; expected one of {KINDS}")
    if not col.nullable and values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise CasebookError(f"{where}: expected no missing values, found one at row {row + 2}")
    if col.min is not None or col.max is not None:
        lo = -float("inf") if col.min is None else col.min
        hi = float("inf") if col.max is None else col.max
        out_of_range = values.notna() & ((values < lo) | (values > hi))
        if out_of_range.any():
            row = int(out_of_range.to_numpy().nonzero()[0][0])
            raise CasebookError(
                f"{where}: expected values in [{col.min}, {col.max}], found {values.iloc[row]} "
                f"at row {row + 2}"
            )
    return values
