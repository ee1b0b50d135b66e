"""portfolio: reports/index.html from every case's card (reports/cards/<case>.json)."""

from __future__ import annotations

import json
import logging

from omegaconf import DictConfig

from cases.errors import CasebookError
from cases.lifecycle import portfolio
from cases.lifecycle.io import outputs
from cases.stages.paths import Paths

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    p = Paths(cfg)
    files = sorted(p.cards.glob("*.json")) if p.cards.is_dir() else []
    if not files:
        raise CasebookError(f"no case cards in {p.cards}; run a case's report stage first "
                            f"(dvc repro)")
    cards = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    with outputs() as out:
        out.write_text(p.index, portfolio.index_html(cards, str(cfg.report.mlflow_ui),
                                                     list(cfg.report.case_order or [])))
    log.info("portfolio: %s with %d case(s)", p.index, len(cards))
    return {"cases": [c["case"] for c in cards]}
