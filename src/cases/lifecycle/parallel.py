"""Fits on every core without changing a bit of any result.

LightGBM and the random forests already fit on `n_jobs` threads, and their results depend on
that count, so they keep running one after another in this process. Every other estimator
(linear models, baselines) fits on one thread, and those fits share the cores: worker processes
take the jobs that return numbers (validation predictions) while this process fits the ones
that return a model, then takes back any job no worker has started. A one-thread fit holds to
one thread wherever it runs, so its numbers are the same bits in a worker or here, with any
number of workers; a model is always fitted here, because a model sent back from another
process pickles (and so dumps) to other bytes. Results come back in the order of the jobs.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

THREAD_PARAMS = ("n_jobs", "num_threads", "nthread", "thread_count")


def workers() -> int:
    """Processes sharing one-thread fits (this one included): `CASEBOOK_WORKERS`, else the
    cores this process may use. 1: every fit here, one after another."""
    env = os.environ.get("CASEBOOK_WORKERS")
    if env:
        try:
            return max(int(env), 1)
        except ValueError:
            from cases.errors import CasebookError

            raise CasebookError(f"CASEBOOK_WORKERS={env!r}: expected a whole number of "
                                f"processes (1: every fit in this process)") from None
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return max(len(cores) if cores else os.cpu_count() or 1, 1)


def single_threaded(estimator) -> bool:
    """True when no step of `estimator` fits on more than one thread: no thread-count parameter
    above 1 anywhere in it (None or 1 is one thread in scikit-learn) and no LightGBM model
    (LightGBM threads by default)."""
    objects = [estimator]
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    for key, value in params.items():
        if key.rsplit("__", 1)[-1] in THREAD_PARAMS and value not in (None, 1):
            return False
        if hasattr(value, "get_params"):
            objects.append(value)
    return not any(type(o).__module__.split(".")[0] == "lightgbm" for o in objects)


@dataclass
class Job:
    """Fit `estimator` (unfitted) on the rows `train` of (X, y) (None: all) and return
    `then(model, X.iloc[apply])` (e.g. validation predictions), or the model itself. `here`:
    fit in this process (the result keeps the identity of objects, e.g. a model to dump)."""

    estimator: Any
    train: np.ndarray | None = None
    apply: np.ndarray | None = None
    then: Callable[[Any, pd.DataFrame], Any] | None = None
    here: bool = False


def run_fits(jobs: Sequence[Job], X: pd.DataFrame, y: pd.Series, n_workers: int | None = None,
             progress: Callable[[], None] | None = None) -> list[tuple[Any, float]]:
    """(result, fit seconds) of every job, in the jobs' order: the one-thread jobs first, shared
    by `n_workers` processes (default `workers()`), then the threaded ones here, in order."""
    n_workers = workers() if n_workers is None else max(int(n_workers), 1)
    out: list[tuple[Any, float] | None] = [None] * len(jobs)
    one = [single_threaded(j.estimator) for j in jobs]
    remote = sorted((i for i, j in enumerate(jobs) if one[i] and not j.here),
                    key=lambda i: _rows(jobs[i], X), reverse=True)  # largest first
    futures: dict[int, Any] = {}
    path = None
    if n_workers > 1 and len(remote) > 1:
        from joblib.externals.loky import get_reusable_executor

        fd, path = tempfile.mkstemp(prefix="casebook-fit-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((X, y), f, protocol=pickle.HIGHEST_PROTOCOL)
        executor = get_reusable_executor(max_workers=n_workers - 1)
        futures = {i: executor.submit(_in_worker, path, jobs[i]) for i in remote}
    try:
        def here(i: int) -> None:
            out[i] = _one_thread(jobs[i], X, y)
            if progress:
                progress()

        for i in range(len(jobs)):  # this process's own one-thread jobs
            if one[i] and i not in futures:
                here(i)
        for i in reversed(remote):  # then any job no worker has started, smallest first
            if i in futures and futures[i].cancel():
                here(i)
        for i in remote:
            if out[i] is None:
                out[i] = futures[i].result()
                if progress:
                    progress()
    finally:
        for f in futures.values():
            f.cancel()
        if path:
            Path(path).unlink(missing_ok=True)
    for i, job in enumerate(jobs):  # threaded fits, one after another
        if out[i] is None:
            out[i] = _fit(job, X, y)
            if progress:
                progress()
    return out  # type: ignore[return-value]


def _rows(job: Job, X: pd.DataFrame) -> int:
    return len(X) if job.train is None else len(job.train)


_CACHE: dict[str, tuple[pd.DataFrame, pd.Series]] = {}


def _in_worker(path: str, job: Job) -> tuple[Any, float]:
    """A worker's side: the data is read once per `run_fits` call, not sent with every job."""
    if path not in _CACHE:
        _CACHE.clear()
        with open(path, "rb") as f:
            _CACHE[path] = pickle.load(f)
    return _one_thread(job, *_CACHE[path])


def _one_thread(job: Job, X: pd.DataFrame, y: pd.Series) -> tuple[Any, float]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _fit(job, X, y)


def _fit(job: Job, X: pd.DataFrame, y: pd.Series) -> tuple[Any, float]:
    Xt, yt = (X, y) if job.train is None else (X.iloc[job.train], y.iloc[job.train])
    t0 = time.perf_counter()
    model = job.estimator.fit(Xt, yt)
    seconds = time.perf_counter() - t0
    if job.then is None:
        return model, seconds
    return job.then(model, X.iloc[job.apply] if job.apply is not None else X), seconds
