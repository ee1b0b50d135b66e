"""A gate against a baseline that is one of the candidates cannot fail: the lifecycle refuses it,
and no case's committed configuration has one."""

import pytest

from cases.config import compose, known_case_configs
from cases.errors import CasebookError
from cases.lifecycle.contract import Candidate, Task, check_baseline, get_case
from cases.lifecycle.models import linear_pipeline


def test_a_baseline_equal_to_a_candidate_is_refused():
    logistic = lambda: linear_pipeline("binary", ["debt", "income"], [], alpha=1.0)  # noqa: E731
    task = Task("hmda", "binary", "approve", "log_loss",
                lambda view, cols: [Candidate("logistic", logistic)], baseline=logistic)
    with pytest.raises(CasebookError, match="case loans, task hmda, view hmda: the baseline is "
                                            "the same estimator as candidate 'logistic'"):
        check_baseline("loans", task.name, "hmda", task.baseline(),
                       [(c.name, c.build()) for c in task.candidates("hmda", [])])
    # a scorecard on fewer inputs is a different estimator
    check_baseline("loans", "hmda", "hmda", linear_pipeline("binary", ["debt"], [], alpha=1.0),
                   [("logistic", logistic())])


@pytest.mark.parametrize("name", known_case_configs())
def test_no_case_baseline_equals_a_candidate(name):
    cfg = compose([f"case={name}"])
    case = get_case(name)
    for task in case.tasks(cfg.case, int(cfg.seed)):
        for view, cols in cfg.case.features.views.items():
            if task.views is not None and view not in task.views:
                continue
            cols = list(cols)
            check_baseline(name, task.name, view, task.baseline_for(view, cols)(),
                           [(c.name, c.build()) for c in task.candidates(view, cols)])
