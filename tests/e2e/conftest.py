import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(scripts/install-browser.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--allow-file-access-from-files"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    drv.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield drv
    drv.quit()


def shot(drv, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    drv.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="session")
def mlflow_server(flights_in_one_process):
    """A real MLflow server on a free local port over a store filled by a real run (the
    session's flights run, shared with the flights tests)."""
    root = flights_in_one_process
    uri = f"sqlite:///{root}/mlflow.db"
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited at start")
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("mlflow server did not answer /health within 90 s")
    yield {"url": url, "root": root, "uri": uri}
    proc.terminate()
    proc.wait(timeout=20)
