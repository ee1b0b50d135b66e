"""Seattle housing with 20% of square footage missing: every way of filling it, measured against
the truth and against the model that had nothing missing."""

from cases.lifecycle.contract import Case, hook, register


@register("housing")
def build() -> Case:
    return Case(
        name="housing",
        load=hook("cases.housing.data:load"),
        eda=hook("cases.housing.eda:profile"),
        features=hook("cases.housing.features:build"),
        tasks=hook("cases.housing.tasks:make_tasks"),
        story=hook("cases.housing.story:story"),
        segments=hook("cases.housing.tasks:masked_segment"),
        extra_metrics=hook("cases.housing.tasks:price_metrics"),
        extra_statistics=hook("cases.housing.tasks:price_statistics"),
        analyze=hook("cases.housing.analysis:analyze"),
    )
