"""A person signs in to the demo dashboard through Tessera, in Chromium.

Every piece is a real process: ``tessera serve``, ``tessera users create``,
``tessera clients create`` and ``tessera demo-dashboard``. The browser goes
dashboard → Tessera's login page → consent → back to the dashboard, refreshes
the tokens, signs out through Tessera, and finds that signing in again asks
for the password again.

Run with TESSERA_UPDATE_SCREENSHOTS=1 to rewrite docs/screenshots/login.png
and consent.png from the pages the test sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import RunningServer, free_port, running

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach
# Google's services, and on a machine with no route out it stalls for them.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CLIENT_ID = "demo-dashboard"
USERNAME = "alice"
PASSWORD = "correct horse battery staple"
EMAIL = "alice@example.test"


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = (
            f"no Chromium at {CHROMIUM}: apt-get install -y "
            "--no-install-recommends chromium"
        )
        # CI installs Chromium, so there a missing browser is a failure.
        if os.environ.get("TESSERA_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tessera(tmp_path: Path) -> Iterator[RunningServer]:
    yield from running(tmp_path / "tessera")


def tessera_cli(
    server: RunningServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tessera", *args],
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def dashboard(tessera: RunningServer, tmp_path: Path) -> Iterator[Dashboard]:
    """alice, the dashboard's client, and the dashboard itself, running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tessera_cli(
        tessera,
        "users",
        "create",
        USERNAME,
        "--name",
        "Alice Example",
        "--email",
        EMAIL,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    tessera_cli(
        tessera,
        "clients",
        "create",
        CLIENT_ID,
        "--public",
        "--redirect-uri",
        f"{url}/callback",
        "--post-logout-redirect-uri",
        f"{url}/signed-out",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        "openid profile email offline_access",
    )
    log_path = tmp_path / "dashboard.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tessera",
                "demo-dashboard",
                "--issuer",
                tessera.base_url,
                "--client-id",
                CLIENT_ID,
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running_dashboard = Dashboard(url, process, log_path)
    try:
        wait_until_up(running_dashboard)
        yield running_dashboard
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(dashboard: Dashboard) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if dashboard.process.poll() is not None:
            pytest.fail(f"the dashboard exited:\n{dashboard.log_path.read_text()}")
        try:
            httpx.get(f"{dashboard.url}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"the dashboard did not start:\n{dashboard.log_path.read_text()}")


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 760, "height": 440})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def at(page: Page, url: str) -> None:
    """Wait until the browser shows ``url`` (its query string aside)."""
    page.wait_for_url(lambda shown: shown.split("?")[0] == url)


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("TESSERA_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / name, full_page=True)


def test_sign_in_refresh_and_sign_out(
    page: Page, tessera: RunningServer, dashboard: Dashboard
) -> None:
    page.goto(dashboard.url)
    page.get_by_role("button", name="Sign in").click()

    at(page, f"{tessera.base_url}/login")
    expect(page.get_by_text(CLIENT_ID)).to_be_visible()
    screenshot(page, "login.png")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    at(page, f"{tessera.base_url}/consent")
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    screenshot(page, "consent.png")
    page.get_by_role("button", name="Allow").click()

    at(page, f"{dashboard.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Signed in as Alice Example"
    )
    sub = page.locator('#id-token td[data-claim="sub"]').inner_text()
    body = page.locator("body").inner_text()
    assert sub and sub in body
    assert USERNAME in body
    assert EMAIL in body
    expect(page.locator('#userinfo td[data-claim="sub"]')).to_have_text(sub)
    # Claims only: no JWT and no refresh token reaches the browser.
    html = page.content()
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", html)
    assert "trt_" not in html

    token_id = page.locator('#access-token td[data-claim="jti"]')
    first_id = token_id.inner_text()
    page.get_by_role("button", name="Refresh tokens").click()
    expect(token_id).not_to_have_text(first_id)
    expect(page.locator('#id-token td[data-claim="sub"]')).to_have_text(sub)

    page.get_by_role("button", name="Sign out").click()
    at(page, f"{dashboard.url}/signed-out")
    expect(page.get_by_role("heading", level=1)).to_have_text("Signed out")
    expect(page.get_by_text("Tessera has ended your sign-in session")).to_be_visible()

    # The session at Tessera ended too: signing in asks for the password.
    page.get_by_role("button", name="Sign in").click()
    at(page, f"{tessera.base_url}/login")
    expect(page.get_by_label("Password")).to_be_visible()
