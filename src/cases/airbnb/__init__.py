"""Airbnb nightly prices: linear regression against random forest against LightGBM, and how to
encode a categorical with many levels."""

from cases.lifecycle.contract import Case, register


@register("airbnb")
def build() -> Case:
    from cases.airbnb import analysis, data, eda, features, story, tasks

    return Case(name="airbnb", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, extra_metrics=tasks.price_metrics,
                analyze=analysis.analyze)
