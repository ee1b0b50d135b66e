"""Atomic output: a stage either publishes all its files or leaves the old ones untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


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
        for tmp, final in self._pending:
            if tmp.is_dir():
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
            else:
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
