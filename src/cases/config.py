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


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose `conf/config.yaml` with overrides (`case=flights`, `case.data.sample_rows=5000`)."""
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
