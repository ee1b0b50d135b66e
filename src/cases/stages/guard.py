"""What every per-case stage does before its own work: take the case's lock, clear what a killed
run left behind, and (stages that track) make sure the tracking server answers.

- One run per case and folder at a time: `data/<case>/.casebook.lock` (`filelock`, held for the
  whole stage, or the whole `all`); a second run is refused at once, naming the holder (pid,
  command, start time, from `.casebook.lock.holder`). The kernel drops the lock when its process
  dies, even by SIGKILL, so a dead holder never blocks anyone.
- Holding the lock proves no live process of this folder writes there, so the start of a stage
  may remove stale temporaries (`.<name>.*.tmp`) and mark FAILED the MLflow runs this folder
  left RUNNING (runs carry the folder's `casebook.folder` tag, so another folder's live runs on
  a shared server are never touched), and finish a champion alias move that a killed `evaluate`
  had published but not yet made (`common.start_tracking`).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

from cases.errors import CasebookError
from cases.lifecycle import io
from cases.stages import Stage
from cases.stages.paths import Paths

log = logging.getLogger(__name__)

LOCK = ".casebook.lock"
HOLDER = ".casebook.lock.holder"
_held: dict[str, object] = {}  # lock path -> FileLock: re-entrant within one process (`all`)


def kill_point(name: str) -> None:
    """Test hook: `CASEBOOK_TEST_KILL_AT=<name>` kills this process here, as SIGKILL would (no
    handler, no cleanup), so the tests can check what a kill at each point leaves."""
    if os.environ.get("CASEBOOK_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def lock_path(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / LOCK


@contextmanager
def case_lock(cfg: DictConfig) -> Iterator[None]:
    """Hold the case's lock (re-entrant in this process); refuse at once if another holds it."""
    from filelock import FileLock, Timeout

    path = lock_path(cfg)
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _held.setdefault(str(path), FileLock(str(path)))
    first = not lock.is_locked
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise CasebookError(f"case {cfg.case.name} in {path.parent} is in use by another run: "
                            f"{_holder(path)}; wait for it to finish or stop it (lock file "
                            f"{path})") from None
    try:
        if first:
            (path.parent / HOLDER).write_text(json.dumps({
                "pid": os.getpid(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}), encoding="utf-8")
        yield
    finally:
        lock.release()
        if created and first and {f.name for f in path.parent.iterdir()} <= {LOCK, HOLDER}:
            # a first run that failed before writing anything leaves no folder behind
            for name in (HOLDER, LOCK):
                (path.parent / name).unlink(missing_ok=True)
            path.parent.rmdir()


def _holder(path: Path) -> str:
    try:
        h = json.loads((path.parent / HOLDER).read_text(encoding="utf-8"))
        return f"pid {h['pid']} (`{h['command']}`), started {h['started']}"
    except (OSError, ValueError, KeyError):
        return "a process that has not yet said who it is"


def start(stage: Stage, cfg: DictConfig) -> None:
    """Under the lock, before the stage's work: stale temporaries out; for a stage that tracks,
    `common.start_tracking` (imported here by name only: it is the tracked stages' own code)."""
    p = Paths(cfg)
    for key in ("data", "reports"):
        for f in io.remove_stale_temps(p._base[key]):
            log.warning("removed %s, left by a stage that was killed", f)
    if "card" in stage.writes:  # reports/cards is shared: only this case's own temporaries
        for f in io.remove_stale_temps(p.card.parent, cfg.case.name):
            log.warning("removed %s, left by a stage that was killed", f)
    if stage.tracks:
        importlib.import_module("cases.stages.common").start_tracking(stage.name, cfg)
