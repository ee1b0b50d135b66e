"""eda: the case's own profile of its data, then the column profile of the main table."""

from __future__ import annotations

from omegaconf import DictConfig

from cases.lifecycle.contract import get_case
from cases.lifecycle.eda import markdown_table, profile_table, write_figures
from cases.lifecycle.io import outputs
from cases.lifecycle.report import sections, source_line
from cases.stages.paths import Paths


def run(cfg: DictConfig) -> dict:
    case = get_case(cfg.case.name)
    p = Paths(cfg)
    tables = p.tables()
    info = p.json("ingest")
    result = case.eda(tables, cfg.case)
    main_name = next(iter(tables))
    lines = [f"# {cfg.case.title}: exploratory analysis", "", f"> {cfg.case.question}", "",
             source_line(info), "", *sections(result.sections),
             f"## Column profile (main table, `{main_name}`)", "",
             markdown_table(profile_table(tables[main_name])), ""]
    with outputs() as out:
        write_figures(out.path(p.eda_dir), result.figures)
        out.write_text(p.eda_md, "\n".join(lines))
        out.write_json(p.eda_json, result.facts)
    return result.facts
