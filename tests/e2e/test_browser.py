"""The MLflow UI and the portfolio page in headless Chromium (Debian's), driven by Selenium, on
a store and reports a real (small) flights run wrote. Screenshots go to artifacts/screenshots/
(each path is printed: run pytest with -s to see them)."""

import csv
import io
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEFAULT_UI = "http://127.0.0.1:5000"  # conf/config.yaml report.mlflow_ui, what the run linked


def wait_text(drv, text: str, timeout: int = 60) -> None:
    WebDriverWait(drv, timeout).until(
        EC.text_to_be_present_in_element((By.TAG_NAME, "body"), text))


def body(drv) -> str:
    return drv.find_element(By.TAG_NAME, "body").text


def number(text: str) -> float:
    """The first number of a cell ("1,234.5" of "1,234.5 ⚑ worse than baseline")."""
    return float(re.search(r"[-+]?[\d,]+(?:\.\d+)?", text).group(0).replace(",", ""))


def card_link(root: Path, text: str) -> str:
    card = json.loads((root / "reports/cards/flights.json").read_text())
    return dict(card["links"])[text]


@pytest.fixture(scope="module")
def store(mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server["uri"])
    exp = client.get_experiment_by_name("casebook-flights")
    train = json.loads((mlflow_server["root"] / "data/flights/run.json").read_text())
    serving = json.loads((mlflow_server["root"] / "reports/flights/serving.json").read_text())
    children = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{train['run_id']}'",
                                  max_results=500)
    return {"client": client, "exp": exp, "train": train, "serving": serving,
            "children": children, "url": mlflow_server["url"], "root": mlflow_server["root"]}


def test_experiment_opens_on_its_training_runs(browser, store):
    exp = store["exp"]
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    card = json.loads((store["root"] / "reports/cards/flights.json").read_text())
    assert card["question"] in exp.tags["mlflow.note.content"]  # the case's question
    # the card's link, as a reader follows it (the configured UI address: this test's server)
    link = card_link(store["root"], "MLflow experiment")
    assert link.startswith(DEFAULT_UI)
    browser.get(link.replace(DEFAULT_UI, store["url"]))
    wait_text(browser, "flights-nycflights13")  # the training run, not the traces overview
    wait_text(browser, "flights-train")  # the Dataset column
    assert "Detect Issues" not in body(browser) and "Training runs" not in body(browser)
    shot(browser, "mlflow_experiment")


def test_parent_run_says_what_was_selected_and_whether_it_passed(browser, store):
    client, train, serving = store["client"], store["train"], store["serving"]
    run = client.get_run(train["run_id"])
    tags, metrics = run.data.tags, run.data.metrics
    # the stages that ran on it, in order (flights has no analyses: no analyze run)
    ran = [r.data.tags["stage"] for r in sorted(store["children"], key=lambda r: r.info.start_time)
           if r.data.tags.get("stage") != "train"]
    assert tags["stages_ran"] == ",".join(dict.fromkeys(["train", *ran]))
    assert tags["stages_ran"].startswith("train,evaluate,") and tags["stages_ran"].endswith(
        "report")
    metrics_json = json.loads((store["root"] / "reports/flights/metrics.json").read_text())
    for task, views in metrics_json["tasks"].items():
        assert tags[f"selected_model.{task}"] == serving["models"][task]["candidate"]
        assert tags[f"gate_passed.{task}"] == str(serving["models"][task]["gate_passed"]).lower()
        for view, r in views.items():  # the headline test figures of every task and view
            for m, x in r["test"][r["selected"]].items():
                assert metrics[f"{task}.{view}.test_{m}"] == pytest.approx(x, rel=1e-5)
    note = tags["mlflow.note.content"]
    for task, views in metrics_json["tasks"].items():
        for view, r in views.items():
            assert f"| {task} | {view} | `{r['selected']}` |" in note
    # the Dataset, Source and User columns
    inputs = run.inputs.dataset_inputs
    assert [d.dataset.digest for d in inputs] == [metrics_json["data_hash"]]
    assert inputs[0].dataset.name == "flights-train"
    assert tags["mlflow.source.name"] == "cases.stages.train" and tags["mlflow.user"]

    browser.get(card_link(store["root"], "MLflow run").replace(DEFAULT_UI, store["url"]))
    wait_text(browser, "Description")  # the description, on top of the run page
    wait_text(browser, "Data:")
    more = browser.find_elements(By.XPATH, "//*[text()='Show more']")
    if more:
        more[0].click()
    wait_text(browser, "Served per task")
    wait_text(browser, "stages_ran")
    shot(browser, "mlflow_parent_run")


def test_child_runs_are_named_by_candidate_and_the_readme_filter_finds_them(browser, store):
    selection = json.loads((store["root"] / "data/flights/selection.json").read_text())
    candidates = [c for c in store["children"] if c.data.tags.get("stage") == "train"]
    expected = {(t, v, c) for t, views in selection["tasks"].items()
                for v, e in views.items() for c in e["candidates"]}
    assert {(r.data.tags["task"], r.data.tags["view"], r.data.tags["candidate"])
            for r in candidates} == expected
    for r in candidates:
        assert r.info.run_name == r.data.tags["candidate"]
        assert r.data.tags["model"]  # the candidate's own params as tags (model, encoding...)
    # the README's recipe, typed into the search box as the URL carries it
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    recipe = readme[readme.index("To compare candidates"):]
    query = re.search(r"`(tags\.task = [^`]+)`", recipe).group(1)
    assert query == 'tags.task = "regression" and tags.view = "pre_departure"'
    browser.get(card_link(store["root"], "MLflow experiment").replace(DEFAULT_UI, store["url"])
                + f"&searchFilter={urllib.parse.quote(query)}")
    # the candidates match, shown under their training run: expand it (the button before its
    # name), as the README says
    matching = [c for c in candidates if c.data.tags["task"] == "regression"
                and c.data.tags["view"] == "pre_departure"]
    wait_text(browser, f"{len(matching) + 1} matching runs")  # and their training run
    name = browser.find_element(By.XPATH, "//*[text()='flights-nycflights13']")
    name.find_element(By.XPATH, "./ancestor::*[@role='gridcell'][1]//button").click()
    for run in sorted(matching, key=lambda r: r.info.start_time)[:6]:
        wait_text(browser, run.info.run_name)
    shot(browser, "mlflow_filtered_candidates")


def test_comparison_artifact_lists_every_candidate(browser, store):
    client, train = store["client"], store["train"]
    selection = json.loads((store["root"] / "data/flights/selection.json").read_text())
    files = {a.path for a in client.list_artifacts(train["run_id"], "comparison")}
    assert files == {f"comparison/{t}.{ext}" for t in selection["tasks"] for ext in ("csv", "png")}
    local = client.download_artifacts(train["run_id"], "comparison/regression.csv")
    rows = list(csv.DictReader(io.StringIO(Path(local).read_text())))
    views = selection["tasks"]["regression"]
    assert {(r["view"], r["candidate"]) for r in rows} == {
        (v, c) for v, e in views.items() for c in e["candidates"]}
    assert {r["role"] for r in rows} >= {"selected", "baseline"}
    assert all(r["cv_mean"] and r["test"] and r["fit_seconds"] and r["predict_ms_per_1k_rows"]
               for r in rows)
    browser.get(f"{store['url']}/#/experiments/{store['exp'].experiment_id}/runs/"
                f"{train['run_id']}/artifacts/comparison/regression.png"
                f"?workflowType=machine_learning")
    wait_text(browser, "regression.png")
    WebDriverWait(browser, 60).until(lambda d: any(
        d.execute_script("return arguments[0].naturalWidth", i) > 0
        for i in d.find_elements(By.CSS_SELECTOR, "img")))
    shot(browser, "mlflow_comparison_artifact")


def test_logged_and_registered_models_carry_their_own_figures(store):
    client, serving = store["client"], store["serving"]
    metrics_json = json.loads((store["root"] / "reports/flights/metrics.json").read_text())
    for task, m in serving["models"].items():
        model = client.get_logged_model(m["model_id"])
        r = metrics_json["tasks"][task][m["view"]]
        own = {f"test_{k}" for k in r["test"][r["selected"]]}
        assert {x.key for x in model.metrics} == own  # no CV metric of another task
        if m["registered_model"]:
            version = client.get_model_version(m["registered_model"], m["version"])
            assert version.tags["task"] == task and version.tags["data_hash"]
            assert version.tags["gate_passed"] == "true" and m["candidate"] in version.description
            registered = client.get_registered_model(m["registered_model"])
            assert registered.description and registered.tags["case"] == "flights"


def test_candidates_compare_side_by_side(browser, store):
    run_id, exp_id = store["train"]["run_id"], store["exp"].experiment_id
    children = [r for r in store["children"] if r.data.tags.get("task") == "regression"
                and r.data.tags.get("view") == "pre_departure"]
    ids = ",".join(f'"{r.info.run_id}"' for r in children[:4])
    browser.get(f"{store['url']}/#/compare-runs?runs=[{ids}]&experiments=[\"{exp_id}\"]")
    wait_text(browser, f"Comparing {min(4, len(children))} Runs")
    wait_text(browser, "cv_mae")  # the metrics table (virtualised: the first rows render)
    for r in children[:4]:
        wait_text(browser, r.data.params["candidate"])
    assert run_id
    shot(browser, "mlflow_compare_candidates")


def _close(a: float, text: str) -> bool:
    """A figure as the card prints it: the value rounded to the printed digits."""
    num = re.match(r"[-+]?[\d,]+(?:\.(\d+))?", text.strip())
    assert num, text
    digits = len(num.group(1) or "")
    return abs(float(num.group(0).replace(",", "")) - a) <= 0.5 * 10 ** -digits + 1e-12


def test_portfolio_summary_and_cards_match_metrics(browser, mlflow_server):
    from cases.lifecycle.evaluate import greater_is_better

    reports = mlflow_server["root"] / "reports"
    browser.get((reports / "index.html").as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "section.card")
    expected_cases = sorted(p.stem for p in (reports / "cards").glob("*.json"))
    assert sorted(c.get_attribute("data-case") for c in cards) == expected_cases
    summary = browser.find_element(By.ID, "summary")
    rows = summary.find_elements(By.CSS_SELECTOR, "tr[data-case]")
    assert [r.get_attribute("data-case") for r in rows] == \
        [c.get_attribute("data-case") for c in cards]
    for row in rows:
        metrics = json.loads((reports / row.get_attribute("data-case") / "metrics.json")
                             .read_text())
        g = metrics["gate"]
        assert row.find_element(By.CSS_SELECTOR, ".delta").text.startswith(
            f"{100 * g['relative_improvement']:+.1f}%")
        assert ("passed" if g["passed"] else "failed") in row.text
        assert f"{metrics['rows']:,} rows" in row.text and metrics["selected_model"] in row.text
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row.text)  # run date and commit
    summary.screenshot(str(shot(browser, "portfolio_summary")))
    for card in cards:
        case = card.get_attribute("data-case")
        metrics = json.loads((reports / case / "metrics.json").read_text())
        view = metrics["primary"]["view"]
        figures = card.find_elements(By.CSS_SELECTOR, "tr[data-metric]")
        assert figures
        for row in figures:
            task, metric = row.get_attribute("data-metric").split(".", 1)
            views = metrics["tasks"][task]
            r = views[view] if view in views else next(iter(views.values()))
            model, base = r["test"][r["selected"]][metric], r["test"]["baseline"][metric]
            assert _close(model, row.find_element(By.CSS_SELECTOR, ".model").text)
            assert _close(base, row.find_element(By.CSS_SELECTOR, ".baseline").text)
            worse = model < base if greater_is_better(metric) else model > base
            assert bool(row.find_elements(By.CSS_SELECTOR, ".model .flag")) == worse  # red flag
            assert ("loses" in (row.get_attribute("class") or "")) == worse
            lo_hi = r["intervals"][r["selected"]].get(metric)
            interval = row.find_element(By.CSS_SELECTOR, ".interval").text
            if lo_hi:  # the interval renders, around the figure
                lo, hi = (float(x.replace(",", "")) for x in interval.strip("[]").split(", "))
                assert lo <= number(row.find_element(By.CSS_SELECTOR, ".model").text) <= hi
            assert ("\u2191" in row.text) == greater_is_better(metric)  # direction mark
        assert card.find_element(By.CSS_SELECTOR, ".selected").text == metrics["selected_model"]
        assert card.find_element(By.CSS_SELECTOR, ".rows").text == f"{metrics['rows']:,}"
        img = card.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
        mlflow = card.find_element(By.LINK_TEXT, "MLflow run")
        assert mlflow.get_attribute("target") == "_blank"
    shot(browser, "portfolio")


def test_a_plot_opens_full_size(browser, mlflow_server):
    browser.get((mlflow_server["root"] / "reports/index.html").as_uri())
    thumb = browser.find_element(By.CSS_SELECTOR, "section.card a.zoom img")
    small = thumb.size["width"]
    thumb.click()
    box = browser.find_element(By.ID, "lightbox")
    WebDriverWait(browser, 10).until(lambda d: box.is_displayed())
    big = box.find_element(By.TAG_NAME, "img")
    assert browser.execute_script("return arguments[0].naturalWidth", big) > 0
    assert big.size["width"] > small
    shot(browser, "portfolio_plot_full_size")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    WebDriverWait(browser, 10).until(lambda d: not box.is_displayed())
    # the rollout page embeds the evaluation plots, and they open the same way
    browser.get((mlflow_server["root"] / "reports/flights/rollout.html").as_uri())
    plots = browser.find_elements(By.CSS_SELECTOR, "a.zoom img[src^='evaluation/']")
    assert len(plots) == len(list((mlflow_server["root"] / "reports/flights/evaluation")
                                  .glob("*.png")))


def test_every_link_on_every_page_resolves(browser, store):
    """Every link and image of the portfolio and of every page it links: files exist, anchors
    exist, and the MLflow links name a run of the store (with the configured UI address mapped
    to this test's server) whose page opens."""
    root = store["root"] / "reports"
    todo, seen, checked_runs = [root / "index.html"], set(), set()
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        browser.get(page.as_uri())
        targets = browser.execute_script(
            "return [...document.querySelectorAll('a[href]')].map(a => a.href)"
            ".concat([...document.querySelectorAll('img[src]')].map(i => i.src))")
        ids = set(browser.execute_script(
            "return [...document.querySelectorAll('[id]')].map(e => e.id)"))
        assert targets, page
        for url in targets:
            parsed = urllib.parse.urlparse(url)
            if parsed.scheme == "file":
                path = Path(urllib.parse.unquote(parsed.path))
                assert path.exists(), f"{page}: broken link {url}"
                if parsed.fragment and path == page:
                    assert parsed.fragment in ids, f"{page}: no anchor #{parsed.fragment}"
                if path.suffix == ".html" and path.is_relative_to(root):
                    todo.append(path)
            elif url.startswith(DEFAULT_UI):
                m = re.search(r"#/experiments/(\d+)/runs(?:/([0-9a-f]+))?"
                              r"\?workflowType=machine_learning$", url)
                if m is None:
                    assert url.rstrip("/") == DEFAULT_UI, f"{page}: {url}"
                    continue
                assert m.group(1) == store["exp"].experiment_id, url
                if m.group(2):
                    run = store["client"].get_run(m.group(2))
                    assert run.info.experiment_id == m.group(1), url
                checked_runs.add(url)
            else:
                pytest.fail(f"{page}: a link leaves the portfolio and the MLflow UI: {url}")
    assert {p.name for p in seen} >= {"index.html", "rollout.html", "eda.html",
                                      "analysis.html", "talking_points.html"}
    assert checked_runs  # the card's run and the rollout's training and evaluation runs
    for url in sorted(checked_runs):
        browser.get(url.replace(DEFAULT_UI, store["url"]))
        wait_text(browser, "flights")
