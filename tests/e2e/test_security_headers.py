"""Security headers on every answer of every server of a deployment, and an API docs page that
works under the content-security policy with nothing loaded from the internet (issue 8, S11)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import missing_service
from tests.e2e.deployments import TENANT_A, Api, Deployment

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def assert_secured(headers: Any, where: str) -> None:
    policy = headers.get("content-security-policy", "")
    assert "default-src 'self'" in policy, where
    assert "frame-ancestors 'none'" in policy, where
    assert "unsafe-inline" not in policy, where
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, (where, name)
    assert "server" not in headers, where


def test_every_answer_carries_the_security_headers(api: Api, deployment: Deployment) -> None:
    agent = deployment.key(TENANT_A, "agent")
    for service in api.services:
        for path, key in [("/health", None), ("/openapi.json", None), ("/docs", None),
                          ("/v1/alerts", None), ("/v1/alerts", agent), ("/no-such-page", None)]:  # fmt: skip
            response = service.get(path, headers={"Authorization": f"Bearer {key}"} if key else {})
            assert_secured(response.headers, f"{service.base_url}{path}")
    personal = api.get("/v1/alerts", agent)
    assert personal.status_code == 200
    assert personal.headers["cache-control"] == "no-store"


def test_the_docs_page_loads_only_local_files_and_no_inline_script(api: Api) -> None:
    for service in api.services:
        page = service.get("/docs").text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources and all(s.startswith("/static/") for s in sources), sources
        assert len(re.findall(r"<script\b", page)) == len(re.findall(r"<script src=", page))
        for source in sources:
            asset = service.get(source)
            assert asset.status_code == 200, source
            assert_secured(asset.headers, source)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        missing_service("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(str(driver)), options=options)
    try:
        yield session
    finally:
        session.quit()


def test_the_docs_page_works_in_a_browser_under_the_policy(api: Api, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    for service in api.services:
        browser.get(f"{service.base_url}/docs")
        WebDriverWait(browser, 60).until(
            ready.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock"))
        )
        title = browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        assert "cem" in title
        violations = [
            entry["message"]
            for entry in browser.get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]
        assert violations == []
