"""Seattle housing with 20% of square footage missing: every way of filling it, measured against
the truth and against the model that had nothing missing."""

from cases.lifecycle.contract import Case, register


@register("housing")
def build() -> Case:
    from cases.housing import analysis, data, eda, features, story, tasks

    return Case(name="housing", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, segments=tasks.masked_segment,
                extra_metrics=tasks.price_metrics, analyze=analysis.analyze)
