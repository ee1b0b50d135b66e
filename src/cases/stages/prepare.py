"""prepare: load the case's data (file, package or simulator), sample it if asked, and publish
the validated tables with their content hash."""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import DictConfig

from cases.errors import CasebookError
from cases.lifecycle.contract import get_case
from cases.lifecycle.io import frame_hash, outputs
from cases.stages.paths import Paths

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    ds = case.load(cfg.case.data, p.raw)
    tables = dict(ds.tables)
    main_name = next(iter(tables))
    available = len(tables[main_name])
    if available == 0:
        raise CasebookError(f"case {case.name}: the main table '{main_name}' has 0 rows after "
                            f"loading and cleaning (source {ds.source}, files "
                            f"{', '.join(map(str, ds.files)) or 'none'}); nothing to learn from")
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

