"""Ride ETA on a million trips: is it enough data? A learning curve and a model, not a guess."""

from cases.lifecycle.contract import Case, register


@register("eta")
def build() -> Case:
    from cases.eta import analysis, data, eda, features, story, tasks

    return Case(name="eta", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, extra_metrics=tasks.duration_metrics,
                analyze=analysis.analyze)
