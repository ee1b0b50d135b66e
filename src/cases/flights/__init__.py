"""Flight delays up to 12 hours: what to do with the outliers, answered with the run's numbers."""

from cases.lifecycle.contract import Case, hook, register


@register("flights")
def build() -> Case:
    return Case(
        name="flights",
        load=hook("cases.flights.data:load"),
        eda=hook("cases.flights.eda:profile"),
        features=hook("cases.flights.features:build"),
        tasks=hook("cases.flights.tasks:make_tasks"),
        story=hook("cases.flights.story:story"),
        segments=hook("cases.flights.evaluation:segments"),
        evaluation_plots=hook("cases.flights.evaluation:evaluation_plots"),
        analyze=hook("cases.flights.analysis:analyze"),
    )
