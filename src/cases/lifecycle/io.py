"""Atomic output: a stage either publishes all its files or leaves the old ones untouched.

Publishing replaces only what we wrote: every folder a stage publishes carries a marker file
(`MARKER`), and an existing folder at an output's path is replaced only when it has that marker
(or is empty). A user's own folder that happens to sit where an output goes (`paths.data=/some/dir`
with a `/some/dir/prepared` of theirs) is refused with an error, never deleted. Temporary files
and folders are named `.<name>.<random>.tmp` beside their targets (`stale_temps` finds the ones a
killed stage left behind), and get the permissions the umask allows before they are renamed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from cases.errors import CasebookError

MARKER = ".casebook-output"  # in every folder a stage publishes: "we made this, we may replace it"
TEMP = re.compile(r"^\..+\.[^.]+\.tmp$")  # `.<name>.<random>.tmp` (tempfile's prefix/suffix)


class Outputs:
    """Collects a stage's outputs in temporary files beside their targets, renames them on commit.

    Nothing lands at a final path until every output of the stage was written, so a failed stage
    never leaves a half-written report or a metrics file that disagrees with its model.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def path(self, final: str | Path) -> Path:
        """A temporary path to write `final` to; created in the same folder so rename is atomic."""
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        _check_replaceable(final)
        if final.suffix:
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            os.close(fd)
        else:  # a folder output
            tmp = tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        self._pending.append((Path(tmp), final))
        return Path(tmp)

    def write_text(self, final: str | Path, text: str) -> None:
        self.path(final).write_text(text, encoding="utf-8")

    def write_json(self, final: str | Path, obj: Any) -> None:
        self.write_text(final, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")

    def commit(self) -> None:
        for _, final in self._pending:  # refuse before anything moves: all or nothing
            _check_replaceable(final)
        mask = _umask()
        for tmp, final in self._pending:
            if tmp.is_dir():
                (tmp / MARKER).write_text("written by a casebook stage; it may replace this "
                                          "folder on its next run\n", encoding="utf-8")
                for sub in [tmp, *tmp.rglob("*")]:  # mkdtemp made 0700: give what umask allows
                    os.chmod(sub, (0o777 if sub.is_dir() else 0o666) & ~mask)
                if final.exists():
                    shutil.rmtree(final) if final.is_dir() else final.unlink()
                os.replace(tmp, final)
            else:
                os.chmod(tmp, 0o666 & ~mask)  # mkstemp made 0600
                if final.is_dir():
                    shutil.rmtree(final)
                os.replace(tmp, final)
        self._pending.clear()

    def discard(self) -> None:
        for tmp, _ in self._pending:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        self._pending.clear()


@contextmanager
def outputs() -> Iterator[Outputs]:
    out = Outputs()
    try:
        yield out
    except BaseException:
        out.discard()
        raise
    out.commit()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_replaceable(final: Path) -> None:
    """An existing folder at an output's path must be one a stage published (it has `MARKER`)
    or empty; anything else is the user's, and we do not delete it."""
    if final.is_dir() and not (final / MARKER).exists() and any(final.iterdir()):
        raise CasebookError(
            f"{final} exists and was not written by casebook (no {MARKER} in it); refusing to "
            f"replace it. Move it away, or choose another folder (paths.data / paths.reports)")


def stale_temps(folder: Path, prefix: str = "") -> list[Path]:
    """The temporary files and folders (`.<name>.<random>.tmp`) in `folder` whose name starts
    with `.<prefix>`: leftovers of a stage that was killed before it could clean up."""
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir()
                  if TEMP.match(f.name) and f.name.startswith(f".{prefix}"))


def remove_stale_temps(folder: Path, prefix: str = "") -> list[Path]:
    """Remove `stale_temps`; safe only while holding the case's lock (no live stage writes)."""
    found = stale_temps(folder, prefix)
    for f in found:
        if f.is_dir() and not f.is_symlink():
            shutil.rmtree(f, ignore_errors=True)
        else:
            f.unlink(missing_ok=True)
    return found


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a frame (values and column names), independent of file format."""
    h = hashlib.sha256()
    h.update("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
