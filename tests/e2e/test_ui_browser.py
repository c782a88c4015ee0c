"""The Prefect UI as the control room, in real Chromium (Debian's, driven by Playwright).

Logs in with the stack's API auth string, sees every deployment on the deployments page, opens a
completed weather trading run and its artifacts, and saves screenshots (their paths are printed;
``EVENTDESK_E2E_SCREENSHOTS`` chooses the folder). Skips with the reason when Chromium or the
playwright package is absent; CI installs both with ``.ci/install-browser.sh``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.desk_stack import Desk, acquire, release

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CHROMIUM = "/usr/bin/chromium"
# as the machine notes say: no sandbox as root, and no background traffic to a closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def desk() -> Iterator[Desk]:
    handle = acquire()
    yield handle
    release(handle)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed: run .ci/install-browser.sh (Debian chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed: run .ci/install-browser.sh")
    profile = tempfile.mkdtemp(prefix="eventdesk-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _shots() -> Path:
    folder = Path(os.environ.get("EVENTDESK_E2E_SCREENSHOTS")
                  or tempfile.mkdtemp(prefix="eventdesk-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_ui_browser_login_deployments_and_completed_run_artifacts(desk: Desk, browser) -> None:  # type: ignore[no-untyped-def]
    run = desk.manual_trade_run()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    shots = _shots()
    page = browser.new_page()

    # the server has an API auth string: the UI asks for it
    page.goto(f"{desk.ui_url}/v2/login", wait_until="domcontentloaded")
    page.get_by_placeholder("admin:pass").fill(desk.auth_string)
    page.get_by_role("button", name="Login").click()
    page.get_by_placeholder("admin:pass").wait_for(state="detached")

    page.goto(f"{desk.ui_url}/v2/deployments", wait_until="domcontentloaded")
    page.get_by_text("guard-paper").first.wait_for()
    assert page.get_by_text("Every minute").first.is_visible()
    page.screenshot(path=str(shots / "deployments.png"))
    page.get_by_placeholder("Search deployments").fill("trade-weather")
    page.get_by_text("trade-weather-paper").first.wait_for()

    page.goto(f"{desk.ui_url}/v2/runs/flow-run/{run['id']}", wait_until="domcontentloaded")
    page.get_by_text(run["name"]).first.wait_for()
    page.get_by_text("Completed").first.wait_for()
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("trade-weather-decisions").first.wait_for()
    page.screenshot(path=str(shots / "run-artifacts.png"), full_page=True)
    page.close()

    for name in ("deployments.png", "run-artifacts.png"):
        assert (shots / name).stat().st_size > 10_000, name
    print(f"screenshots in {shots}")
