"""Will a driver accept this ride? A simulator with a known rule, scored and served in budget."""

from cases.lifecycle.contract import Case, hook, register


@register("acceptance")
def build() -> Case:
    return Case(
        name="acceptance",
        load=hook("cases.acceptance.data:load"),
        eda=hook("cases.acceptance.eda:profile"),
        features=hook("cases.acceptance.features:build"),
        tasks=hook("cases.acceptance.tasks:make_tasks"),
        story=hook("cases.acceptance.story:story"),
        analyze=hook("cases.acceptance.analysis:analyze"),
    )
