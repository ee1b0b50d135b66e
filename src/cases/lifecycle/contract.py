"""The contract between the shared lifecycle and one case. A case is a subpackage that builds a
`Case` and registers it by name; the stages know nothing else about it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cases.lifecycle.features import FeatureData, Rows
from cases.lifecycle.ingest import Dataset

PLAIN = "lgbm-plain"  # the plain reference candidate: every case that has one names it so


@dataclass
class Candidate:
    """One model configuration that selection scores by cross-validation."""

    name: str
    build: Callable[[], Any]  # returns an unfitted estimator that takes the raw feature frame
    params: dict = field(default_factory=dict)


@dataclass
class Task:
    """One framing of the question (a target and a metric family), scored on each feature view."""

    name: str
    kind: str  # "regression" | "binary" | "multiclass"
    target: str
    selection_metric: str
    candidates: Callable[[str, list[str]], list[Candidate]]  # (view, feature columns) -> models
    baseline: Callable[[], Any]
    classes: list | None = None
    views: list[str] | None = None  # the feature views this task is scored on (None: all)
    # a view's own baseline, (view, feature columns) -> builder, when one naive answer does not
    # fit every view (housing: drop the incomplete rows, except where nothing is missing)
    view_baseline: Callable[[str, list[str]], Callable[[], Any]] | None = None

    def baseline_for(self, view: str, cols: list[str]) -> Callable[[], Any]:
        return self.view_baseline(view, cols) if self.view_baseline else self.baseline


def check_baseline(case: str, task: str, view: str, baseline: Any,
                   candidates: list[tuple[str, Any]]) -> None:
    """A gate against a baseline that is one of the candidates cannot fail: refused, naming the
    case, task, view and candidate. `baseline` and the candidates are unfitted estimators."""
    from cases.errors import CasebookError

    for name, estimator in candidates:
        if same_estimator(baseline, estimator):
            raise CasebookError(
                f"case {case}, task {task}, view {view}: the baseline is the same estimator as "
                f"candidate {name!r} ({type(estimator).__name__} with the same parameters), so "
                f"its gate could never fail; give the task a distinct, naive baseline")


def same_estimator(a: Any, b: Any) -> bool:
    """Same class and the same parameters, nested estimators compared the same way."""
    if hasattr(a, "get_params") and hasattr(b, "get_params"):
        return type(a) is type(b) and same_estimator(a.get_params(deep=False),
                                                     b.get_params(deep=False))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_estimator(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_estimator(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if callable(a) or callable(b):
        return a is b
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True  # e.g. SimpleImputer(missing_values=nan)
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return a is b


@dataclass
class FeatureTable:
    """Features and targets with the split: `split` is 'train' or 'test'; `period` orders the
    training rows in time for expanding-window folds (None: a shuffled K-fold is fine)."""

    frame: pd.DataFrame
    views: dict[str, list[str]]  # view name -> feature columns, e.g. at booking / before departure
    targets: list[str]
    split: pd.Series
    period: pd.Series | None
    split_info: dict
    groups: pd.Series | None = None  # e.g. driver ids: CV folds also hold whole groups out


@dataclass
class EdaResult:
    sections: list[tuple[str, str]]  # (title, markdown)
    figures: dict[str, Any]  # file stem -> matplotlib figure
    facts: dict  # numbers the report and talking points quote
    # what depends on the machine (latency, fit seconds): kept apart from `facts` and sections,
    # in a run file of its own (reports/<case>/analysis_timing.json), so the rest reproduces
    timings: dict = field(default_factory=dict)


@dataclass
class AnalysisContext:
    """What a case's own analyses may read, through accessors: the training and test rows (with
    their periods and groups), the tasks (built once), the selection, the test metrics and the
    fitted models, never files, internal columns or tracking directly."""

    data: FeatureData
    selection: dict
    metrics: dict
    cfg: Mapping
    seed: int
    tasks: dict[str, Task]
    load: Callable[[str, str, str], Any]  # (task, view, candidate) -> fitted model
    size: Callable[[str, str, str], int]  # (task, view, candidate) -> bytes on disk
    serving: dict = field(default_factory=dict)  # logged and registered models, latency
    load_logged: Callable[[str], Any] | None = None  # model URI -> model loaded from MLflow
    # task -> view -> candidate -> seconds its final fit took in train (run.json; the machine's)
    fit_seconds: dict = field(default_factory=dict)

    @property
    def meta(self) -> dict:
        """The features stage's description: views, targets, split."""
        return self.data.meta

    def rows(self, split: str, target: str | None = None) -> Rows:
        """'train' or 'test' rows: `.frame` (features and targets), `.period`, `.group`."""
        return self.data.rows(split, target)

    @property
    def train(self) -> pd.DataFrame:
        return self.data.rows("train").frame

    @property
    def test(self) -> pd.DataFrame:
        return self.data.rows("test").frame

    def validation(self, n_periods: int) -> tuple[Rows, Rows]:
        """The training rows before the last `n_periods` periods, and those periods."""
        return self.data.validation(n_periods)

    def model(self, task: str, view: str, name: str | None = None):
        """A fitted candidate (default: the selected one) of a task and view."""
        return self.load(task, view, name or self.selection[task][view]["selected"])

    def model_size(self, task: str, view: str, name: str | None = None) -> int:
        return self.size(task, view, name or self.selection[task][view]["selected"])

    def fit_time(self, task: str, view: str, name: str | None = None) -> float:
        """Seconds train took to fit a candidate (default: the selected one) on all its rows."""
        name = name or self.selection[task][view]["selected"]
        try:
            return float(self.fit_seconds[task][view][name])
        except KeyError:
            from cases.errors import CasebookError

            raise CasebookError(f"run.json has no fit time for {task}/{view}/{name}: it was "
                                f"written by an older train; rerun train") from None

    def logged_model(self, task: str):
        """The task's logged model, loaded back from MLflow as a service would load it."""
        return self.load_logged(self.serving["models"][task]["model_uri"])


@dataclass
class Story:
    """The case's words around the run's numbers."""

    rollout: list[tuple[str, str]]
    talking_points: list[str]
    # sentences that quote the machine's figures (latency, fit seconds, from
    # `measured["timing"]`): written apart, to reports/<case>/timing.md, so the rest reproduces
    timing: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    load: Callable[[Mapping, Any], Dataset]  # (data config, raw cache dir) -> Dataset
    eda: Callable[[dict[str, pd.DataFrame], Mapping], EdaResult]
    features: Callable[[dict[str, pd.DataFrame], Mapping], FeatureTable]
    tasks: Callable[[Mapping, int], list[Task]]  # (case config, seed) -> tasks
    story: Callable[[dict, Mapping], Story]  # (everything measured, case config) -> story
    # named row masks scored apart (e.g. the tail): (y_true, rows, cfg) -> {name: mask}
    segments: Callable[[np.ndarray, pd.DataFrame, Mapping], dict[str, np.ndarray]] = (
        lambda y_true, rows, cfg: {})
    # more metrics for every task (e.g. dollars from a log target, recall at an alert rate):
    # (y_true, prediction, rows, cfg) -> dict
    extra_metrics: Callable[[np.ndarray, np.ndarray, pd.DataFrame, Mapping], dict] = (
        lambda y_true, pred, rows, cfg: {})
    # the bootstrap twins of `extra_metrics`, {metric: cases.lifecycle.bootstrap.Stat}: each
    # extra metric recomputed on resamples for its interval; same signature
    extra_statistics: Callable[[np.ndarray, np.ndarray, pd.DataFrame, Mapping], dict] = (
        lambda y_true, pred, rows, cfg: {})
    evaluation_plots: Callable[[dict, Mapping], dict[str, Any]] = lambda results, cfg: {}
    analyze: Callable[[AnalysisContext], EdaResult] | None = None


class hook:  # noqa: N801 - used like a function: hook("cases.flights.story:story")
    """A case hook named by "module:function", imported when first called, so a stage imports
    only the modules it runs (the eda stage never imports the model libraries). Its
    `__module__` names where it lives: the `dvc.yaml` builder lists that module as a dep."""

    def __init__(self, target: str):
        self.__module__, self.name = target.split(":")
        self._fn: Callable | None = None

    def __call__(self, *args, **kwargs):
        if self._fn is None:
            import importlib

            self._fn = getattr(importlib.import_module(self.__module__), self.name)
        return self._fn(*args, **kwargs)


_REGISTRY: dict[str, Callable[[], Case]] = {}


def register(name: str):
    """Decorator for a zero-argument factory that builds the case (imports stay lazy)."""

    def wrap(factory: Callable[[], Case]):
        _REGISTRY[name] = factory
        return factory

    return wrap


def get_case(name: str) -> Case:
    import cases.registry  # noqa: F401 - fills the registry
    from cases.errors import CasebookError

    if name not in _REGISTRY:
        raise CasebookError(f"unknown case {name!r}; known cases: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def known_cases() -> list[str]:
    import cases.registry  # noqa: F401

    return sorted(_REGISTRY)
