"""Loan rejection reasons without the weights: SHAP reason codes, acceptance curves, audits."""

from cases.lifecycle.contract import Case, hook, register


@register("loans")
def build() -> Case:
    return Case(
        name="loans",
        load=hook("cases.loans.data:load"),
        eda=hook("cases.loans.eda:profile"),
        features=hook("cases.loans.features:build"),
        tasks=hook("cases.loans.tasks:make_tasks"),
        story=hook("cases.loans.story:story"),
        extra_metrics=hook("cases.loans.fairness:fairness_metrics"),
        extra_statistics=hook("cases.loans.fairness:fairness_statistics"),
        analyze=hook("cases.loans.analysis:analyze"),
    )
