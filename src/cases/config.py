"""Compose the configuration the same way for every entry point (CLI, stage scripts, DVC,
`mlflow run`): Hydra's compose API over `conf/`, which writes no output folders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cases.errors import CasebookError


def repo_root() -> Path:
    """The repository root: `CASEBOOK_ROOT`, else the working directory when it holds
    `conf/config.yaml` (DVC runs stages there), else the folder holding `conf/` above this
    package (an editable install run from elsewhere)."""
    env = os.environ.get("CASEBOOK_ROOT")
    if env:
        return Path(env).resolve()
    if (Path.cwd() / "conf" / "config.yaml").exists():
        return Path.cwd().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "conf" / "config.yaml").exists():
            return parent
    return Path.cwd().resolve()


def conf_dir() -> Path:
    return repo_root() / "conf"


def known_case_configs() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "case").glob("*.yaml"))


def compose(overrides: Sequence[str] = (), validate: bool = True) -> DictConfig:
    """Compose `conf/config.yaml` with overrides (`case=flights`, `case.data.sample_rows=5000`),
    then check the options (`check_options`) before any stage does work."""
    cfg = _compose(overrides)
    if validate:
        groups = [o for o in overrides if _override_key(o) in _groups()]
        check_options(cfg, _compose(groups) if len(groups) < len(overrides) else cfg)
    return cfg


def _compose(overrides: Sequence[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    for o in overrides:
        if o.startswith("case=") and o.split("=", 1)[1] not in known_case_configs():
            raise CasebookError(
                f"unknown case {o.split('=', 1)[1]!r}; known cases: "
                f"{', '.join(known_case_configs())}"
            )
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CasebookError(f"configuration in {conf_dir()}: {msg}") from None
    finally:
        GlobalHydra.instance().clear()
    if cfg.paths.root is None:
        cfg.paths.root = str(repo_root())
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise CasebookError(f"configuration: {exc}") from None
    return cfg


def to_container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


# ---- option checks: the committed files are the schema -----------------------------------------
# Every key must exist in the configuration composed from the committed files with the same groups
# (`case=`, `+experiment=`, `tracking=`), and keep the type it has there; a few options also have
# ranges. Maps whose keys are names from the data (people, reason texts) are open.

OPEN_MAPS = ("case.analysis.applicants.people", "case.analysis.reason_texts")


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


RANGES: dict[str, tuple[str, object]] = {
    "seed": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "case.train.cv_folds": ("an integer >= 2",
                            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2),
    "case.features.test_fraction": ("a number in (0, 1)",
                                    lambda v: isinstance(v, (int, float))
                                    and not isinstance(v, bool) and 0 < v < 1),
    "case.data.sample_rows": ("a positive integer or null", lambda v: v is None
                              or _positive_int(v)),
    "case.evaluate.latency_samples": ("a positive integer", _positive_int),
    "case.evaluate.gate_min_improvement": ("a number", lambda v: isinstance(v, (int, float))
                                           and not isinstance(v, bool)),
    "case.evaluate.bootstrap_resamples": ("a positive integer", _positive_int),
    "case.evaluate.bootstrap_rowwise_resamples": ("a positive integer", _positive_int),
    "case.train.selection_rule": ("one_se or best", lambda v: v in ("one_se", "best")),
    "case.train.lgbm.n_estimators": ("a positive integer", _positive_int),
    "case.train.lgbm.learning_rate": ("a number > 0", lambda v: isinstance(v, (int, float))
                                      and not isinstance(v, bool) and v > 0),
}


def _groups() -> set[str]:
    return {p.name for p in conf_dir().iterdir() if p.is_dir()}


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _kind(v) -> str:
    if isinstance(v, bool):
        return "a boolean (true/false)"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _fits(value, ref) -> bool:
    if ref is None or value is None:
        return True  # null in the committed file: any value; null given: "unset"
    if isinstance(ref, bool) or isinstance(value, bool):
        return isinstance(ref, bool) and isinstance(value, bool)
    if isinstance(ref, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(ref))


def check_options(cfg: DictConfig, reference: DictConfig) -> None:
    """Unknown keys, wrong types and out-of-range values, named by their dotted option, before any
    stage runs (and so before an MLflow run opens)."""
    given = OmegaConf.to_container(cfg, resolve=True)
    ref = OmegaConf.to_container(reference, resolve=True)

    def walk(node, refnode, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if name in RANGES:
                expected, ok = RANGES[name]
                if not ok(value):
                    raise CasebookError(f"option {name}={value!r}: expected {expected}")
            if key not in refnode:
                where = (f"conf/case/{cfg.case.name}.yaml" if name.startswith("case.")
                         else "conf/config.yaml")
                raise CasebookError(f"unknown option {name} (not in {where}); known here: "
                                    f"{', '.join(map(str, refnode)) or 'none'}")
            r = refnode[key]
            if not _fits(value, r):
                raise CasebookError(f"option {name}={value!r}: expected {_kind(r)} "
                                    f"(like {r!r} in the committed configuration)")
            if isinstance(value, dict) and isinstance(r, dict) and r and name not in OPEN_MAPS:
                walk(value, r, name + ".")

    walk(given, ref, "")
