"""Flight delays up to 12 hours: what to do with the outliers, answered with the run's numbers."""

from cases.lifecycle.contract import Case, register


@register("flights")
def build() -> Case:
    from cases.flights import data, eda, evaluation, features, story, tasks

    return Case(name="flights", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, segments=evaluation.segments,
                evaluation_plots=evaluation.evaluation_plots)
