"""Card fraud with an SMS approve/deny loop: what to build and what to optimise."""

from cases.lifecycle.contract import Case, hook, register


@register("fraud")
def build() -> Case:
    return Case(
        name="fraud",
        load=hook("cases.fraud.data:load"),
        eda=hook("cases.fraud.eda:profile"),
        features=hook("cases.fraud.features:build"),
        tasks=hook("cases.fraud.tasks:make_tasks"),
        story=hook("cases.fraud.story:story"),
        extra_metrics=hook("cases.fraud.tasks:rare_event_metrics"),
        extra_statistics=hook("cases.fraud.tasks:rare_event_statistics"),
        analyze=hook("cases.fraud.analysis:analyze"),
    )
