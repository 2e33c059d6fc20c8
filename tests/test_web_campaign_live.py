"""The campaign page follows its campaign in real Chromium, without a reload by hand
(issue 11 items 14, 15, 18): a start more than two minutes away fires and the page goes
scheduled -> sending -> sent by itself; a local-time campaign shows each wave with its
local date, counts the people of later waves, and shows them cancelled after a cancel.

Waves are fired the way the scheduler fires them, with its clock set to the wave's start;
the worker runs in the test. Nothing waits for a fixed time: the test waits for the text.
Screenshots: test-artifacts/web-campaign-live-*.png. SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select

from mailer.compose import Root, build
from mailer.delivery import lifecycle
from mailer.schedule.runner import WaveRunner
from mailer.schedule.waves import CampaignWave
from subscribers import mailing_lists, repository
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401 - the fixture
from tests.test_accessibility import axe_violations
from tests.web_harness import (
    CHROMIUM_ARGS,
    PASSWORD,
    ConsoleLog,
    add_user,
    free_socket,
    make_app,
    serve,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PEOPLE = (
    ("somchai@example.th", "สมชาย ใจดี", "TH"),
    ("malee@example.th", "มาลี ศรีสุข", "TH"),
    ("linh@example.vn", "Nguyễn Thị Linh", "VN"),
    ("khamla@example.la", "Khamla", "LA"),
    ("wang@example.cn", "王芳", "CN"),
)
WAIT_MS = 60_000  # an upper bound for a busy machine, not an expected time


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(
    database_url: str,
    tmp_path: Path,
    smtp_server: SMTPTestServer,  # noqa: F811
) -> Iterator[tuple[Root, str]]:
    sock = free_socket()
    host, port = sock.getsockname()
    root = build(
        make_settings(
            tmp_path,
            database_url=database_url,
            public_base_url=f"http://{host}:{port}",
            issues_dir=REPO / "examples" / "issues",
            smtp_port=smtp_server.port,
        )
    )
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter", public=True)
        for email, name, country in PEOPLE:
            repository.add_subscriber(
                session, email, name=name, country=country, lists=["newsletter"]
            )
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    try:
        with serve(app, sock) as base:
            yield root, base
    finally:
        root.close()


def _signed_in(browser: Browser, base: str, console: ConsoleLog, *, axe: bool = False) -> Page:
    """A signed-in editor's page; `axe`: the CSP lets axe-core's injected script run."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=axe)
    page = context.new_page()
    console.attach(page)
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "editor@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/issues")
    return page


def _new_campaign(page: Page, base: str, name: str) -> int:
    page.goto(f"{base}/campaigns/new?issue=2022-13&lists=newsletter")
    page.fill("input[name=name]", name)
    page.click("text=Create draft campaign")
    page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def _waves(root: Root, campaign_id: int) -> list[CampaignWave]:
    with root.sessions() as session:
        return list(
            session.scalars(
                select(CampaignWave)
                .where(CampaignWave.campaign_id == campaign_id)
                .order_by(CampaignWave.starts_at, CampaignWave.timezone)
            )
        )


def _fire(root: Root, wave: CampaignWave) -> None:
    """What the scheduler does at the wave's time: its clock is set to that time."""
    runner = WaveRunner(root.sessions, default_grace_seconds=3600, clock=lambda: wave.starts_at)
    assert runner.fire(wave.id) == "started"


def _send(root: Root) -> None:
    root.worker().run(threading.Event(), until_idle=True)


def _state(page: Page, state: str) -> None:
    page.wait_for_selector(f"#campaign-state:text-is('{state}')", timeout=WAIT_MS)


def test_a_start_days_away_fires_and_the_page_follows_until_sent(
    site: tuple[Root, str],
    browser: Browser,
    smtp_server: SMTPTestServer,  # noqa: F811
    artifacts: Path,
) -> None:
    root, base = site
    db = root.engine.dialect.name
    console = ConsoleLog()
    page = _signed_in(browser, base, console)
    campaign_id = _new_campaign(page, base, "Far away")
    at = datetime.now(UTC) + timedelta(days=2)
    page.fill("input[name=at]", at.strftime("%Y-%m-%dT%H:%M"))
    page.select_option("select[name=tz]", "UTC")
    page.click("#schedule-form button[type=submit]")
    page.wait_for_selector("text=Scheduled in 1 wave")
    _state(page, "scheduled")
    local = at.astimezone(ZoneInfo("Asia/Shanghai"))
    scheduled = page.locator("#campaign-scheduled").inner_text()
    assert f"({local.day} {local:%b %H:%M} Asia/Shanghai)" in scheduled
    assert page.locator("button:has-text('Pause')").count() == 1
    page.evaluate("window.notReloaded = true")
    page.screenshot(path=str(artifacts / f"web-campaign-live-scheduled-{db}.png"), full_page=True)

    [wave] = _waves(root, campaign_id)
    _fire(root, wave)
    _state(page, "sending")  # by itself: the start was two days away when the page loaded
    [fired] = _waves(root, campaign_id)
    assert (fired.status, fired.recipients, fired.status_reason) == ("started", len(PEOPLE), "")
    assert page.locator("#count-total").inner_text() == str(len(PEOPLE))
    _send(root)
    _state(page, "sent")
    page.wait_for_selector(f"#count-sent:text-is('{len(PEOPLE)}')", timeout=WAIT_MS)
    assert page.evaluate("window.notReloaded === true")  # swapped in place, not reloaded
    assert smtp_server.count() == len(PEOPLE)
    page.screenshot(path=str(artifacts / f"web-campaign-live-sent-{db}.png"), full_page=True)
    assert console.errors == []


def test_local_time_waves_show_dates_progress_and_cancel_live(
    site: tuple[Root, str],
    browser: Browser,
    artifacts: Path,
) -> None:
    root, base = site
    db = root.engine.dialect.name
    console = ConsoleLog()
    page = _signed_in(browser, base, console, axe=True)
    campaign_id = _new_campaign(page, base, "Local nine o'clock")
    page.goto(f"{base}/campaigns/{campaign_id}/edit")  # a draft's edit form
    assert axe_violations(page) == []
    page.goto(f"{base}/campaigns/{campaign_id}")
    page.fill("input[name=at]", "2030-01-01T09:00")
    page.check("input[name=mode][value=local]")
    page.click("#schedule-form button[type=submit]")
    page.wait_for_selector("text=Scheduled in 4 waves")
    rows = page.locator("#campaign-waves tbody tr")
    assert rows.count() == 4
    for index in range(4):
        assert "1 Jan 09:00 there" in rows.nth(index).inner_text()
    page.evaluate("window.notReloaded = true")

    waves = _waves(root, campaign_id)
    assert waves[0].timezone == "Asia/Shanghai"  # 09:00 there is the earliest instant
    _fire(root, waves[0])
    _send(root)
    page.wait_for_selector("#count-sent:text-is('1')", timeout=WAIT_MS)
    assert page.locator("#count-total").inner_text() == str(len(PEOPLE))
    assert page.locator("#count-later").inner_text() == str(len(PEOPLE) - 1)
    page.screenshot(path=str(artifacts / f"web-campaign-live-wave-{db}.png"), full_page=True)
    assert axe_violations(page) == []

    with root.sessions.begin() as session:  # another editor cancels it (or the CLI)
        lifecycle.cancel(session, campaign_id, "cancelled by another editor")
    _state(page, "cancelled")
    page.wait_for_selector(f"#count-not-sent:text-is('{len(PEOPLE) - 1}')", timeout=WAIT_MS)
    statuses = [rows.nth(index).locator(".badge").inner_text() for index in range(rows.count())]
    assert statuses == ["started", "cancelled", "cancelled", "cancelled"]
    assert page.locator("#count-later").count() == 0
    assert page.evaluate("window.notReloaded === true")
    page.screenshot(path=str(artifacts / f"web-campaign-live-cancelled-{db}.png"), full_page=True)
    assert axe_violations(page) == []

    page.goto(f"{base}/campaigns")
    row = page.locator(f"tr:has(a[href='/campaigns/{campaign_id}'])").inner_text()
    assert "cancelled" in row and "finished" not in row
    assert f"1 / {len(PEOPLE)}" in row
    assert console.errors == []
