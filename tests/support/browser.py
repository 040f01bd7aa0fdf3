"""Headless Debian chromium driven by chromium-driver through selenium, for the status page's browser test and screenshot.

The machine may have no network: every background fetch chromium would make is switched off, and a
fresh profile directory is used each time.
"""

from __future__ import annotations

import base64
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
)


def start_chromium(chromium: str, chromedriver: str, profile: Path, width: int = 1280, height: int = 900,
                   log_path: Path | None = None) -> webdriver.Chrome:
    """A headless chromium session at ``width`` x ``height`` with a fresh ``--user-data-dir`` in ``profile``."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(log_path) if log_path else None)
    return webdriver.Chrome(service=service, options=options)


def full_page_png(driver: webdriver.Chrome, width: int) -> bytes:
    """A PNG of the whole page at ``width`` CSS pixels (DevTools' beyond-viewport capture)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    return base64.b64decode(shot["data"])
