"""The two framings as tasks: regression of the arrival delay (with the outlier strategies side
by side) and classification (delayed 15 min or more; the five delay buckets)."""

from __future__ import annotations

from collections.abc import Mapping

from cases.errors import CasebookError
from cases.flights.models import TargetStrategyRegressor
from cases.lifecycle.contract import Candidate, Task
from cases.lifecycle.models import GroupBaseline, lgbm_pipeline, linear_pipeline, plain_candidate

# strategy -> (loss, what is done to the training target)
STRATEGIES = {
    "squared": ("squared", "none"),
    "filter_tail": ("squared", "filter_tail"),
    "winsorize": ("squared", "winsorize"),
    "log_transform": ("squared", "log_transform"),
    "huber": ("huber", "none"),
    "quantile": ("quantile", "none"),
}


def make_tasks(cfg: Mapping, seed: int) -> list[Task]:
    t = cfg["train"]
    f = cfg["features"]
    categorical = list(f["categorical"])
    discrete = list(f["discrete"])
    lgbm_params = dict(t["lgbm"])
    plain = t["plain"]

    def with_plain(task: str, kind: str, candidates):
        """The task's candidates, and the plain reference when `train.plain.tasks` names it:
        LightGBM with the library's defaults (only the thread count and the seed set) on the
        view's columns that `train.plain.columns` lists."""
        if task not in plain["tasks"]:
            return candidates
        keep = list(plain["columns"])

        def out(view: str, cols: list[str]) -> list[Candidate]:
            cats = [c for c in cols if c in categorical]
            return [*candidates(view, cols),
                    plain_candidate(kind, keep, cats, seed, lgbm_params,
                                    columns="the tables' own")]

        return out

    def split_cols(cols: list[str]):
        cats = [c for c in cols if c in categorical]
        linear_cats = [c for c in cols if c in categorical or c in discrete]
        numeric = [c for c in cols if c not in linear_cats]
        return cats, linear_cats, numeric

    def regression(view: str, cols: list[str]) -> list[Candidate]:
        cats, linear_cats, numeric = split_cols(cols)
        out = []
        for model in t["models"]:
            for strategy in t["linear_strategies" if model == "linear" else "strategies"]:
                if strategy not in STRATEGIES:
                    raise CasebookError(f"case.train: strategy {strategy!r}; expected one of "
                                        f"{', '.join(STRATEGIES)}")
                loss, target = STRATEGIES[strategy]

                def build(model=model, loss=loss, target=target):
                    if model == "linear":
                        inner = linear_pipeline("regression", numeric, linear_cats, loss=loss,
                                                alpha=float(t["linear_alpha"]),
                                                huber_epsilon=float(t["huber_delta"]), seed=seed)
                    else:
                        inner = lgbm_pipeline("regression", cats, loss=loss, params=lgbm_params,
                                              huber_delta=float(t["huber_delta"]), seed=seed)
                    return TargetStrategyRegressor(inner, strategy=target,
                                                   max_target=float(t["filter_max_min"]),
                                                   quantile=float(t["winsorize_quantile"]))

                out.append(Candidate(f"{model}-{strategy}", build,
                                     {"model": model, "strategy": strategy, "loss": loss}))
        return out

    def classifier(kind: str):
        def candidates(view: str, cols: list[str]) -> list[Candidate]:
            cats, linear_cats, numeric = split_cols(cols)
            out = []
            for model in t["models"]:
                if model == "linear":
                    def build():
                        return linear_pipeline(kind, numeric, linear_cats,
                                               alpha=float(t["linear_alpha"]), seed=seed)
                    name = "logistic"
                else:
                    def build():
                        return lgbm_pipeline(kind, cats, params=lgbm_params, seed=seed)
                    name = "lgbm"
                out.append(Candidate(name, build, {"model": name}))
            return out

        return candidates

    def baseline(kind: str):
        return lambda: GroupBaseline(levels=[list(lv) for lv in t["baseline_levels"]],
                                     min_count=int(t["baseline_min_count"]), kind=kind)

    labels = list(f["bucket_labels"])
    metric = t["selection_metric"]
    all_tasks = {
        "regression": Task("regression", "regression", "arr_delay", metric["regression"],
                           with_plain("regression", "regression", regression),
                           baseline("regression")),
        "delayed": Task("delayed", "binary", "delayed", metric["delayed"],
                        with_plain("delayed", "binary", classifier("binary")), baseline("binary")),
        "buckets": Task("buckets", "multiclass", "bucket", metric["buckets"],
                        with_plain("buckets", "multiclass", classifier("multiclass")),
                        baseline("multiclass"), classes=labels),
    }
    return [all_tasks[name] for name in t["tasks"]]
