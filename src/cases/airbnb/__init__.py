"""Airbnb nightly prices: linear regression against random forest against LightGBM, and how to
encode a categorical with many levels."""

from cases.lifecycle.contract import Case, hook, register


@register("airbnb")
def build() -> Case:
    return Case(
        name="airbnb",
        load=hook("cases.airbnb.data:load"),
        eda=hook("cases.airbnb.eda:profile"),
        features=hook("cases.airbnb.features:build"),
        tasks=hook("cases.airbnb.tasks:make_tasks"),
        story=hook("cases.airbnb.story:story"),
        extra_metrics=hook("cases.airbnb.tasks:price_metrics"),
        extra_statistics=hook("cases.airbnb.tasks:price_statistics"),
        analyze=hook("cases.airbnb.analysis:analyze"),
    )
