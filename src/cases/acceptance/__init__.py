"""Will a driver accept this ride? A simulator with a known rule, scored and served in budget."""

from cases.lifecycle.contract import Case, register


@register("acceptance")
def build() -> Case:
    from cases.acceptance import analysis, data, eda, features, story, tasks

    return Case(name="acceptance", load=data.load, eda=eda.profile, features=features.build,
                tasks=tasks.make_tasks, story=story.story, analyze=analysis.analyze)
