"""Card fraud with an SMS approve/deny loop: what to build and what to optimise."""

from cases.lifecycle.contract import Case, register


@register("fraud")
def build() -> Case:
    from cases.fraud import analysis, data, eda, features, story, tasks

    return Case(name="fraud", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, extra_metrics=tasks.rare_event_metrics,
                analyze=analysis.analyze)
