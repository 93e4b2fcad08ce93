"""The fleet page in Debian's headless chromium (selenium + chromedriver): sign in with a read
token, see a proven and an unproven lane, open a record and see its eight gates.

LP_EVIDENCE_SCREENSHOTS=<dir> keeps the screenshots (docs/evidence-fleet.png comes from here)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from agent.contracts import Gate, RunnerLaneMaintainerAuditRecord
from evidence.app import create_app
from evidence.pg_store import PostgresEvidenceStore
from evidence.serving import serve_in_thread
from evidence.store import StoredRecord
from tests.evidence import factories as ef
from tests.evidence.conftest import TEMPLATE, Tokens
from tests.evidence.postgres import Cluster

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} missing: run `make evidence-deps` (as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1000,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _stored(rec: RunnerLaneMaintainerAuditRecord) -> StoredRecord:
    digest = hashlib.sha256(rec.model_dump_json().encode()).hexdigest()
    return StoredRecord(rec, digest, rec.created_at, "seed")


def test_fleet_page_shows_proven_and_unproven_lanes_and_a_records_gates(
    browser: webdriver.Chrome, pg_cluster: Cluster, tokens: Tokens, tmp_path: Path
) -> None:
    store = PostgresEvidenceStore(pg_cluster.create_database("evidence_page", TEMPLATE))
    for rec in (
        ef.record("completed", lane="web-build", at=ef.minutes(1)),
        ef.record("planned", lane="web-build", host="build-02", at=ef.minutes(2)),
        ef.record("failed", lane="web-build", host="build-02", at=ef.minutes(3)),
        ef.record("completed", lane="odoo-test", host="build-02", at=ef.minutes(4)),
    ):
        store.put(_stored(rec))
    app = create_app(store, tokens.registry, stale_after=timedelta(days=1),
                     clock=lambda: ef.minutes(90))  # fmt: skip
    shots = Path(os.environ.get("LP_EVIDENCE_SCREENSHOTS", tmp_path))
    try:
        with serve_in_thread(app) as url:
            browser.get(f"{url}/fleet")
            assert browser.current_url.endswith("/fleet/login")
            browser.find_element(By.ID, "token").send_keys(tokens.read)
            browser.find_element(By.ID, "sign-in").click()
            WebDriverWait(browser, 60).until(expected_conditions.url_to_be(f"{url}/fleet"))
            counts = browser.find_element(By.ID, "counts").text
            assert counts.startswith("2 of 3 lanes proven, 2 hosts")
            proven = browser.find_element(
                By.CSS_SELECTOR, "td.lane.proven[data-host='chris-testing'][data-lane='web-build']"
            )
            unproven = browser.find_element(
                By.CSS_SELECTOR, "td.lane.unproven[data-host='build-02'][data-lane='web-build']"
            )
            assert "last proof: 1h 29m ago" in proven.text
            assert "failed gate: github_exactly_one_online" in unproven.text
            assert "no proof yet" in unproven.text
            browser.save_screenshot(str(shots / "evidence-fleet.png"))
            proven.find_element(By.TAG_NAME, "a").click()
            WebDriverWait(browser, 60).until(
                expected_conditions.presence_of_element_located((By.ID, "gates"))
            )
            gates = browser.find_elements(By.CSS_SELECTOR, "#gates li.gate")
            assert [g.get_attribute("data-gate") for g in gates] == [g.value for g in Gate]
            assert all("passed" in (g.get_attribute("class") or "") for g in gates)
            assert "completed" in browser.find_element(By.ID, "record").text
            browser.save_screenshot(str(shots / "evidence-record.png"))
            browser.get(f"{url}/fleet/login")
            browser.delete_all_cookies()
            browser.get(f"{url}/fleet")
            assert browser.current_url.endswith("/fleet/login")  # no cookie, no page
    finally:
        store.close()
    assert (shots / "evidence-fleet.png").stat().st_size > 0
