"""The status page in a real browser: headless Debian chromium against the real exporter and the simulator.

Asserts what a person sees: every pool present, a depleted pool marked, the page refreshing itself
from /status.json (no reload), the filter, nothing blocked by the page's own Content-Security-Policy,
values shown as text (an ARM error carrying HTML stays text), no sideways scrolling at phone width.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from exporter.simulator import Fault, Simulator, SimulatorServer
from tests.conftest import require_tool
from tests.e2e.conftest import SUB, ExporterProcess
from tests.support.browser import start_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RG_WEB, RG_BATCH = "rg-web", "rg-batch"
HOSTILE = "<img src=x id=injected> <b>bold</b>"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    chromium = require_tool("chromium", "chromium")
    chromedriver = require_tool("chromedriver", "chromium-driver")
    driver = start_chromium(chromium, chromedriver, tmp_path / "profile", log_path=tmp_path / "chromedriver.log")
    try:
        yield driver
    finally:
        driver.quit()


def _config(server: SimulatorServer) -> dict[str, Any]:
    pools = [(RG_WEB, "web", "container_group"), (RG_WEB, "api", "container_group"), (RG_BATCH, "vm-pool", "virtual_machine"),
             (RG_BATCH, "broken", "container_group")]
    return {
        "azure": {"resource_manager_endpoint": server.url},
        "polling": {"interval": "1s", "timeout": "2s", "stale_after": "1m"},
        "pools": [{"subscription_id": SUB, "resource_group": rg, "name": name, "kind": kind} for rg, name, kind in pools],
    }


# Read in one script call: the page's own refresh replaces the cards, so elements found earlier may be gone.
_CARD = """
const item = document.querySelector('#pools li.pool[data-pool="' + arguments[0] + '"]');
if (!item) return null;
const errors = item.querySelector('.errors'), spark = item.querySelector('svg.spark');
return {text: item.innerText, condition: item.className, badge: item.querySelector('.badge').innerText.toLowerCase(),
        errors: errors ? errors.innerText : '', spark: !!spark && spark.getBoundingClientRect().width > 0};
"""
_SHOWN = "return Array.from(document.querySelectorAll('#pools li.pool')).filter(i => i.offsetParent !== null).map(i => i.dataset.pool)"


def _card(driver: WebDriver, name: str) -> dict[str, Any]:
    card: dict[str, Any] | None = driver.execute_script(_CARD, name)
    assert card is not None, f"no card for {name}"
    return card


def _shown(driver: WebDriver) -> list[str]:
    shown: list[str] = driver.execute_script(_SHOWN)
    return shown


def _text(driver: WebDriver, selector: str) -> str:
    text: str = driver.execute_script("return document.querySelector(arguments[0]).innerText", selector)
    return text


def test_status_page_in_chromium(
    simulator: tuple[Simulator, SimulatorServer], start_exporter: Callable[..., ExporterProcess], browser: WebDriver,
) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, RG_WEB, "web", max_ready_capacity=4)
    sim.add_container_group_pool(SUB, RG_WEB, "api", max_ready_capacity=6, forecast=True)
    sim.add_virtual_machine_pool(SUB, RG_BATCH, "vm-pool", max_ready_capacity=3)
    sim.add_container_group_pool(SUB, RG_BATCH, "broken", max_ready_capacity=2)
    body = json.dumps({"error": {"code": "InternalServerError", "message": HOSTILE}}).encode()
    sim.faults.add(Fault(match="/standbycontainergrouppools/broken/runtimeviews", status=500, body=body))
    exporter = start_exporter(_config(server), server)
    exporter.wait_for(lambda: exporter.get("/readyz").status_code == 200, what="every pool polled once")
    assert exporter.get("/").headers["Content-Security-Policy"].startswith("default-src 'self'")

    browser.get(exporter.url + "/")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)
    assert browser.title.startswith("Standby pools")
    shown = _shown(browser)
    assert shown[0] == "broken" and sorted(shown) == ["api", "broken", "vm-pool", "web"]  # worst first
    web = _card(browser, "web")
    assert web["badge"] == "fine" and "4 / 4 ready" in web["text"]
    assert "Running 4" in web["text"] and "members 4 of 4 ready" in web["text"] and "s ago" in web["text"]
    vm = _card(browser, "vm-pool")
    assert "3 / 3 ready" in vm["text"] and "Deallocated 3" in vm["text"] and "keeps VMs Deallocated" in vm["text"]
    assert _card(browser, "api")["spark"]  # Azure's forecast
    broken = _card(browser, "broken")
    assert broken["badge"] == "unknown" and "runtime view" in broken["errors"] and HOSTILE in broken["errors"]  # shown as text
    assert not browser.find_elements(By.ID, "injected") and "Shard" in _text(browser, "#facts")

    browser.execute_script("window.notReloaded = true")
    cycles = _text(browser, '[data-fact="cycles"]')
    wait.until(lambda d: _text(d, '[data-fact="cycles"]') != cycles)  # the script refreshed the header
    sim.deplete(SUB, RG_WEB, "web")
    wait.until(lambda d: "depleted" in _card(d, "web")["condition"])
    web = _card(browser, "web")
    assert web["badge"] == "depleted" and "0 / 4 ready" in web["text"]
    assert _shown(browser)[0] == "web"  # the depleted pool moved to the top
    assert "1 depleted" in _text(browser, "#summary")
    assert browser.execute_script("return window.notReloaded") is True  # updated in place, not by reloading

    Select(browser.find_element(By.ID, "group")).select_by_visible_text(RG_BATCH)
    assert sorted(_shown(browser)) == ["broken", "vm-pool"]
    cycles = _text(browser, '[data-fact="cycles"]')
    wait.until(lambda d: _text(d, '[data-fact="cycles"]') != cycles)
    assert browser.execute_script("return document.getElementById('group').value") == f"{SUB}/{RG_BATCH}"
    assert sorted(_shown(browser)) == ["broken", "vm-pool"]  # the filter outlives a refresh

    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems  # no script error, nothing refused by the Content-Security-Policy

    browser.set_window_size(390, 844)  # a phone
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth") is True
