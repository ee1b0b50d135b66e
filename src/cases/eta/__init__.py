"""Ride ETA on a million trips: is it enough data? A learning curve and a model, not a guess."""

from cases.lifecycle.contract import Case, hook, register


@register("eta")
def build() -> Case:
    return Case(
        name="eta",
        load=hook("cases.eta.data:load"),
        eda=hook("cases.eta.eda:profile"),
        features=hook("cases.eta.features:build"),
        tasks=hook("cases.eta.tasks:make_tasks"),
        story=hook("cases.eta.story:story"),
        extra_metrics=hook("cases.eta.tasks:duration_metrics"),
        extra_statistics=hook("cases.eta.tasks:duration_statistics"),
        analyze=hook("cases.eta.analysis:analyze"),
    )
