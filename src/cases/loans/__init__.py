"""Loan rejection reasons without the weights: SHAP reason codes, acceptance curves, audits."""

from cases.lifecycle.contract import Case, register


@register("loans")
def build() -> Case:
    from cases.loans import analysis, data, eda, features, story, tasks

    return Case(name="loans", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, analyze=analysis.analyze)
