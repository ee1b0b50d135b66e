"""The MLflow UI and the portfolio page in headless Chromium (Debian's), driven by Selenium."""

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def wait_text(drv, text: str, timeout: int = 60) -> None:
    WebDriverWait(drv, timeout).until(
        EC.text_to_be_present_in_element((By.TAG_NAME, "body"), text))


def test_mlflow_ui_shows_experiment_runs_and_comparison(browser, mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server["uri"])
    exp = client.get_experiment_by_name("casebook-flights")
    run_id = json.loads((mlflow_server["root"] / "data/flights/run.json").read_text())["run_id"]
    browser.get(f"{mlflow_server['url']}/#/experiments/{exp.experiment_id}/runs")
    wait_text(browser, "casebook-flights")
    wait_text(browser, "flights-nycflights13")
    shot(browser, "mlflow_experiment")

    browser.get(f"{mlflow_server['url']}/#/experiments/{exp.experiment_id}/runs/{run_id}")
    wait_text(browser, "cv_mae")
    wait_text(browser, "data_hash")
    shot(browser, "mlflow_parent_run")
    evaluation = client.search_runs([exp.experiment_id],
                                    filter_string=f"tags.mlflow.parentRunId = '{run_id}' "
                                                  f"and tags.stage = 'evaluate'")[0]
    browser.get(f"{mlflow_server['url']}/#/experiments/{exp.experiment_id}/runs/"
                f"{evaluation.info.run_id}")
    wait_text(browser, "test_mae")
    wait_text(browser, "selected_model")
    shot(browser, "mlflow_evaluation_run")

    children = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}' "
                                                f"and tags.stage = 'train' "
                                                f"and tags.task = 'regression' "
                                                f"and tags.view = 'pre_departure'")
    ids = ",".join(f'"{r.info.run_id}"' for r in children[:4])
    browser.get(f"{mlflow_server['url']}/#/compare-runs?runs=[{ids}]"
                f"&experiments=[\"{exp.experiment_id}\"]")
    wait_text(browser, f"Comparing {min(4, len(children))} Runs")
    wait_text(browser, "cv_mae")  # the metrics table (virtualised: the first rows render)
    for r in children[:4]:
        wait_text(browser, r.data.params["candidate"])
    shot(browser, "mlflow_compare_candidates")


def test_portfolio_cards_match_metrics(browser, mlflow_server):
    reports = mlflow_server["root"] / "reports"
    browser.get((reports / "index.html").as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "section.card")
    expected_cases = sorted(p.stem for p in (reports / "cards").glob("*.json"))
    assert sorted(c.get_attribute("data-case") for c in cards) == expected_cases
    for card in cards:
        case = card.get_attribute("data-case")
        metrics = json.loads((reports / case / "metrics.json").read_text())
        view = metrics["primary"]["view"]
        rows = card.find_elements(By.CSS_SELECTOR, "tr[data-metric]")
        assert rows
        for row in rows:
            task, metric = row.get_attribute("data-metric").split(".", 1)
            views = metrics["tasks"][task]
            r = views[view] if view in views else next(iter(views.values()))
            assert row.find_element(By.CSS_SELECTOR, ".model").text == \
                f"{r['test'][r['selected']][metric]:.3f}"
            assert row.find_element(By.CSS_SELECTOR, ".baseline").text == \
                f"{r['test']['baseline'][metric]:.3f}"
        assert card.find_element(By.CSS_SELECTOR, ".selected").text == metrics["selected_model"]
        assert card.find_element(By.CSS_SELECTOR, ".rows").text == f"{metrics['rows']:,}"
        img = card.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
    shot(browser, "portfolio")
    browser.find_element(By.LINK_TEXT, "talking points").click()
    wait_text(browser, "talking points")
    assert "Selected by time-ordered CV" in browser.find_element(By.TAG_NAME, "body").text
    shot(browser, "talking_points")
