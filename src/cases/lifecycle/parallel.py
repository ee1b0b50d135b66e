"""Fits on every core, reproducibly.

Every fit runs on one thread (`one_thread` sets each thread-count parameter, LightGBM's and the
random forests' `n_jobs`, to 1), and the fits share the cores instead: worker processes take
jobs that return numbers (validation predictions) while this process fits the ones that return
a model and its share of the rest. On the data sizes here LightGBM scales poorly past one thread
(its histograms are small), so two one-thread fits side by side finish well before two
two-thread fits in a row; a forest's trees are seeded one by one, so its fit is the same at any
thread count. A LightGBM model's last bits can depend on its thread count; that count is now 1
whatever the number of workers, so `CASEBOOK_WORKERS=1` gives the same bits, only later.

Which process fits which job is fixed by the jobs (their order and sizes), never by timing: a
fit's last bits can depend on the process it runs in (memory alignment changes how numpy sums;
an iterative solver such as ridge by lsqr can carry that far), so a rerun must repeat every fit
where it ran. Workers run with this process's BLAS and OpenMP thread counts. A model is always
fitted here: a model sent back from another process pickles (and so dumps) to other bytes.
Results come back in the order of the jobs.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

THREAD_PARAMS = ("n_jobs", "num_threads", "nthread", "thread_count")
# below this many training rows in the jobs a worker would take (summed over the jobs), every
# fit runs here: starting a worker (a Python importing pandas, scikit-learn and LightGBM, about
# 1.5 s of CPU) costs more than the fits (small samples: tests, small cases)
POOL_MIN_ROWS = 50_000


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
    above 1 anywhere in it (None or 1 is one thread in scikit-learn) and every LightGBM model
    set to exactly 1 (LightGBM threads by default)."""
    objects = [estimator]
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    for key, value in params.items():
        if key.rsplit("__", 1)[-1] in THREAD_PARAMS and value not in (None, 1):
            return False
        if isinstance(value, Mapping) and _threads_in(value):
            return False
        if hasattr(value, "get_params"):
            objects.append(value)
    return all(o.get_params().get("n_jobs") == 1 for o in objects
               if type(o).__module__.split(".")[0] == "lightgbm")


def one_thread(estimator):
    """`estimator` (changed in place) with every thread-count parameter above 1, and every
    LightGBM model's `n_jobs`, set to 1: the fit then runs on one thread (see the module note)."""
    if not hasattr(estimator, "get_params"):
        return estimator
    params = estimator.get_params(deep=True)
    many = {key: 1 for key, value in params.items()
            if key.rsplit("__", 1)[-1] in THREAD_PARAMS and value not in (None, 1)}
    many.update({f"{key}__n_jobs" if key else "n_jobs": 1 for key, value in
                 [("", estimator), *params.items()]
                 if type(value).__module__.split(".")[0] == "lightgbm"})
    # a dict of parameters an estimator passes on (housing's LightGBM imputer: `params`)
    many.update({key: {**value, **dict.fromkeys(_threads_in(value), 1)}
                 for key, value in params.items()
                 if isinstance(value, Mapping) and _threads_in(value)})
    if many:
        estimator.set_params(**many)
    return estimator


def predict_threads(estimator, threads: int | None = None):
    """`estimator` (a fitted model, changed in place) with every LightGBM model in it, fitted
    parts included (a wrapper's `estimator_`, a fill's own models), set to predict on `threads`
    threads (default `workers()`). A LightGBM prediction is the same at any thread count (the
    threads share out the rows, each row scored whole), so this only makes large predict calls
    (an analysis scoring millions of masked rows) use every core."""
    n = workers() if threads is None else max(int(threads), 1)
    for model in _lightgbm_models(estimator, set()):
        model.set_params(n_jobs=n)
    return estimator


def _lightgbm_models(obj, seen: set[int]):
    """Every LightGBM model inside `obj`: its parameters, pipeline steps and fitted attributes."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if type(obj).__module__.split(".")[0] == "lightgbm" and hasattr(obj, "set_params"):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _lightgbm_models(item, seen)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from _lightgbm_models(item, seen)
    elif hasattr(obj, "get_params"):
        for item in vars(obj).values():
            yield from _lightgbm_models(item, seen)


def _threads_in(params: Mapping) -> list[str]:
    """The thread-count keys of a parameter dict set above one thread."""
    return [k for k in THREAD_PARAMS if params.get(k) not in (None, 1)]


@dataclass
class Job:
    """Fit `estimator` (unfitted) on the rows `train` of (X, y) (None: all) and return
    `then(model, X.iloc[apply])` (e.g. validation predictions), or the model itself. `here`:
    fit in this process (the result keeps the identity of objects, e.g. a model to dump).
    `target`: this job's own training target, one value per `train` row (default: y's rows)."""

    estimator: Any
    train: np.ndarray | None = None
    apply: np.ndarray | None = None
    then: Callable[[Any, pd.DataFrame], Any] | None = None
    here: bool = False
    target: np.ndarray | None = None


def run_fits(jobs: Sequence[Job], X: pd.DataFrame, y: pd.Series, n_workers: int | None = None,
             progress: Callable[[], None] | None = None) -> list[tuple[Any, float]]:
    """(result, fit seconds) of every job, in the jobs' order, each fitted on one thread
    (`one_thread`): shared by `n_workers` processes (default `workers()`); a job whose estimator
    still threads (a thread parameter `one_thread` does not know) is fitted here, after the rest."""
    n_workers = workers() if n_workers is None else max(int(n_workers), 1)
    for job in jobs:
        one_thread(job.estimator)
    out: list[tuple[Any, float] | None] = [None] * len(jobs)
    one = [single_threaded(j.estimator) for j in jobs]
    remote = sorted((i for i, j in enumerate(jobs) if one[i] and not j.here),
                    key=lambda i: _rows(jobs[i], X), reverse=True)  # largest first
    futures: dict[int, Any] = {}
    path = None
    pooled = sum(_rows(jobs[i], X) for i in remote) >= POOL_MIN_ROWS
    if n_workers > 1 and len(remote) > 1 and pooled:
        from joblib.externals.loky import get_reusable_executor

        lanes = _lanes([i for i in range(len(jobs)) if one[i] and i not in remote], remote,
                       jobs, X, n_workers)
        fd, path = tempfile.mkstemp(prefix="casebook-fit-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((X, y), f, protocol=pickle.HIGHEST_PROTOCOL)
        executor = get_reusable_executor(max_workers=n_workers - 1)
        limits = _thread_counts()
        futures = {k: executor.submit(_in_worker, path, [jobs[i] for i in lane], limits)
                   for k, lane in enumerate(lanes) if k and lane}
    else:
        lanes = [[i for i in range(len(jobs)) if one[i]]]
    try:
        for i in lanes[0]:
            out[i] = _fit(jobs[i], X, y)
            if progress:
                progress()
        for k, future in futures.items():
            for i, res in zip(lanes[k], future.result()):
                out[i] = res
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


def _lanes(own: list[int], remote: list[int], jobs: Sequence[Job], X: pd.DataFrame,
           n: int) -> list[list[int]]:
    """Which process fits which job, fixed by the jobs alone (never by timing, so a rerun puts
    every fit in the same process): lane 0 is this process, with its own jobs; each remote job,
    largest first, goes to the lane with the fewest rows to fit so far."""
    lanes = [list(own)] + [[] for _ in range(n - 1)]
    load = [sum(_rows(jobs[i], X) for i in own)] + [0] * (n - 1)
    for i in remote:
        k = min(range(n), key=lambda k: (load[k], k))
        lanes[k].append(i)
        load[k] += _rows(jobs[i], X)
    return lanes


def map_rows(fn: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame,
             n_workers: int | None = None) -> np.ndarray:
    """`fn(X)` computed on contiguous blocks of rows side by side (default `workers()`
    processes, this one included: the first block is computed here) and stacked back in order:
    the same array as one call when `fn` treats each row on its own (SHAP values). `fn` is
    pickled to the workers (a module-level function, or a `functools.partial` of one)."""
    n_workers = workers() if n_workers is None else max(int(n_workers), 1)
    blocks = [b for b in np.array_split(np.arange(len(X)), min(n_workers, len(X))) if len(b)]
    if len(blocks) < 2:
        return fn(X)
    from joblib.externals.loky import get_reusable_executor

    executor = get_reusable_executor(max_workers=n_workers - 1)
    limits = _thread_counts()
    futures = [executor.submit(_call_in_worker, fn, X.iloc[b], limits) for b in blocks[1:]]
    try:
        parts = [fn(X.iloc[blocks[0]])] + [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()
    return np.concatenate(parts)


def _call_in_worker(fn: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame,
                    limits: dict[str, int]) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limits):
        return fn(X)


def predict(model, X: pd.DataFrame) -> np.ndarray:
    """A `Job.then`: the fitted model's predictions on the job's `apply` rows."""
    return np.asarray(model.predict(X))


def _rows(job: Job, X: pd.DataFrame) -> int:
    return len(X) if job.train is None else len(job.train)


_CACHE: dict[str, tuple[pd.DataFrame, pd.Series]] = {}


def _thread_counts() -> dict[str, int]:
    """This process's thread count per threaded library API (BLAS, OpenMP)."""
    from threadpoolctl import threadpool_info

    counts: dict[str, int] = {}
    for lib in threadpool_info():
        counts[lib["user_api"]] = max(counts.get(lib["user_api"], 1), int(lib["num_threads"]))
    return counts


def _in_worker(path: str, jobs: list[Job], limits: dict[str, int]) -> list[tuple[Any, float]]:
    """A worker's side: one lane's jobs in order, with the parent's thread counts; the data read
    once per `run_fits` call, not sent with every job."""
    from threadpoolctl import threadpool_limits

    if path not in _CACHE:
        _CACHE.clear()
        with open(path, "rb") as f:
            _CACHE[path] = pickle.load(f)
    with threadpool_limits(limits=limits):
        return [_fit(job, *_CACHE[path]) for job in jobs]


def _fit(job: Job, X: pd.DataFrame, y: pd.Series) -> tuple[Any, float]:
    Xt, yt = (X, y) if job.train is None else (X.iloc[job.train], y.iloc[job.train])
    if job.target is not None:
        if len(job.target) != len(Xt):
            from cases.errors import CasebookError

            raise CasebookError(f"Job.target has {len(job.target)} values for {len(Xt)} "
                                f"training rows")
        yt = pd.Series(job.target, index=Xt.index, name=y.name)
    t0 = time.perf_counter()
    model = job.estimator.fit(Xt, yt)
    seconds = time.perf_counter() - t0
    if job.then is None:
        return model, seconds
    return job.then(model, X.iloc[job.apply] if job.apply is not None else X), seconds
