"""Where a case's stage files live: one table, read by the stages and by the `dvc.yaml` builder,
so the paths DVC tracks are the paths the stages write."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from cases.errors import CasebookError

# key -> (folder, name): folder "data" is data/<case>/, "reports" is reports/<case>/, "site" is
# reports/ (the portfolio's own files); "{case}" in a name is the case's name
FILES: dict[str, tuple[str, str]] = {
    "prepared": ("data", "prepared"),
    "ingest": ("data", "ingest.json"),
    "features": ("data", "features.parquet"),
    "features_meta": ("data", "features.json"),
    "models": ("data", "models"),
    "selection": ("data", "selection.json"),
    "run": ("data", "run.json"),
    "eda_md": ("reports", "eda.md"),
    "eda_json": ("reports", "eda.json"),
    "eda_dir": ("reports", "eda"),
    "metrics": ("reports", "metrics.json"),
    "serving": ("reports", "serving.json"),
    "serving_md": ("reports", "serving.md"),
    "evaluation": ("reports", "evaluation"),
    "analysis_md": ("reports", "analysis.md"),
    "analysis_json": ("reports", "analysis.json"),
    "analysis_dir": ("reports", "analysis"),
    "analysis_timing": ("reports", "analysis_timing.json"),
    "timing_md": ("reports", "timing.md"),
    "rollout_md": ("reports", "rollout.md"),
    "talking_md": ("reports", "talking_points.md"),
    "rollout_html": ("reports", "rollout.html"),
    "talking_html": ("reports", "talking_points.html"),
    "eda_html": ("reports", "eda.html"),
    "analysis_html": ("reports", "analysis.html"),
    "card": ("site", "cards/{case}.json"),
    "cards": ("site", "cards"),
    "index": ("site", "index.html"),
}



def _writers() -> dict[str, str]:
    """Which stage writes each file, so a missing input names the stage that rebuilds it."""
    from cases.stages import STAGES

    return {key: s.name for s in STAGES for key in s.writes}


# files that depend on the machine or the tracking store (MLflow ids, registry versions,
# latency), not only on the data, code and seed: everything else is bit-identical on a rerun
RUN_FILES = ("run", "serving", "serving_md", "analysis_timing", "timing_md", "rollout_html",
             "card", "index")


def repo_path(key: str, case: str) -> str:
    """The path relative to the repository root, as `dvc.yaml` lists it."""
    folder, name = FILES[key]
    base = {"data": f"data/{case}", "reports": f"reports/{case}", "site": "reports"}[folder]
    return f"{base}/{name.format(case=case)}"


class Paths:
    """The files of one case under the composed config's `paths`."""

    def __init__(self, cfg: DictConfig):
        self.case = cfg.case.name
        self._base = {"data": Path(cfg.paths.data), "reports": Path(cfg.paths.reports),
                      "site": Path(cfg.paths.root) / "reports"}
        self.raw = Path(cfg.paths.raw)

    def __getattr__(self, key: str) -> Path:
        if key.startswith("_") or key not in FILES:
            raise AttributeError(key)
        folder, name = FILES[key]
        return self._base[folder] / name.format(case=self.case)

    def need(self, key: str) -> Path:
        """The path of an input, or an error naming the stage that writes it."""
        path = getattr(self, key)
        if not path.exists():
            stage = _writers().get(key, "?")
            raise CasebookError(f"{path} is missing; run the '{stage}' stage first "
                                f"(or `dvc repro` for the whole pipeline)")
        return path

    def json(self, key: str):
        """An input JSON file; a corrupt one is named with the stage that rebuilds it."""
        import json

        path = self.need(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CasebookError(f"{path} is corrupt ({type(exc).__name__}: {exc}); rerun the "
                                f"'{_writers().get(key, '?')}' stage") from None

    def feature_data(self):
        """The features stage's table and description, read through accessors."""
        import pandas as pd

        from cases.lifecycle.features import FeatureData

        return FeatureData(pd.read_parquet(self.need("features")), self.json("features_meta"))

    def tables(self):
        """The prepared tables, main table first (the order prepare wrote them in)."""
        import pandas as pd

        folder = self.need("prepared")
        order = list(self.json("ingest").get("tables", {}))
        files = {f.stem: f for f in folder.glob("*.parquet")}
        names = [n for n in order if n in files] + sorted(set(files) - set(order))
        return {n: pd.read_parquet(files[n]) for n in names}
