"""The whole editor path in headless Chromium against a real SMTP server, scheduler and
worker: log in, send a test, create a campaign for the demo subscribers, schedule it,
watch it reach "sent", follow an unsubscribe link from a received message, and see the
next campaign skip that subscriber. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import func, select

from mailer.compose import Root, build
from mailer.delivery.campaigns import Campaign
from mailer.delivery.ledger import LedgerRow
from subscribers.demo import seed_demo
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401 - the fixture
from tests.web_harness import (
    CHROMIUM_ARGS,
    PASSWORD,
    ConsoleLog,
    add_user,
    free_socket,
    make_app,
    no_horizontal_overflow,
    serve,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LIST_UNSUBSCRIBE = re.compile(r"<(http[^>]+)>")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def running(
    database_url: str,
    tmp_path: Path,
    smtp_server: SMTPTestServer,  # noqa: F811
) -> Iterator[tuple[Root, str]]:
    """Web app, scheduler and one worker, as `mailer serve` runs them."""
    sock = free_socket()
    host, port = sock.getsockname()
    root = build(
        make_settings(
            tmp_path,
            database_url=database_url,
            public_base_url=f"http://{host}:{port}",
            issues_dir=REPO / "examples" / "issues",
            smtp_port=smtp_server.port,
            scheduler_poll_seconds=0.5,
        )
    )
    with root.sessions.begin() as session:
        seed_demo(session, REPO / "examples" / "subscribers.csv")
    app = make_app(root)
    add_user(app, "editor@lmec.example.org", "editor")
    scheduler = root.scheduler()
    scheduler.start()
    stop = threading.Event()
    worker = root.worker()
    worker_thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    worker_thread.start()
    try:
        with serve(app, sock) as base:
            yield root, base
    finally:
        stop.set()
        worker_thread.join(timeout=30)
        scheduler.stop()
        root.close()


def m_name(message: EmailMessage) -> str:
    return str(message["To"].addresses[0].display_name)


def _wait_for_state(page: Page, state: str) -> None:
    """The campaign page follows its campaign by itself (static/campaign.js): no reload."""
    page.wait_for_selector(f"#campaign-state:text-is('{state}')", timeout=300_000)


def _create_campaign(page: Page, base: str, name: str, shot: Path | None = None) -> tuple[int, str]:
    page.goto(f"{base}/campaigns/new?issue=2022-15")
    page.check("input[name=countries][value=MM]")  # the count follows the ticks by itself
    page.wait_for_selector("#audience-count:not(:has-text('Vietnam'))")
    assert "Myanmar (Burma)" in page.locator("#audience-count").inner_text()
    page.uncheck("input[name=countries][value=MM]")
    page.check("input[name=lists][value=newsletter]")
    page.click("text=Count recipients")
    counts = page.locator("#audience-count").inner_text()
    assert "Myanmar" in counts and "Vietnam" in counts and "China" in counts
    assert no_horizontal_overflow(page)
    if shot is not None:
        page.screenshot(path=str(shot), full_page=True)
    page.fill("input[name=name]", name)
    page.click("text=Create draft campaign")
    page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
    return int(page.url.rsplit("/", 1)[1]), counts


def test_editor_sends_schedules_and_a_subscriber_unsubscribes(
    running: tuple[Root, str],
    browser: Browser,
    smtp_server: SMTPTestServer,  # noqa: F811
    artifacts: Path,
) -> None:
    root, base = running
    db = root.engine.dialect.name
    console = ConsoleLog()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    console.attach(page)

    page.goto(f"{base}/login")
    page.fill("input[name=email]", "editor@lmec.example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/issues")

    # A test copy to the editor's own address.
    page.goto(f"{base}/issues/2022-15")
    page.click("text=Send me a test")
    page.wait_for_selector("text=Test sent to editor@lmec.example.org")
    assert smtp_server.wait_for(1)
    test_copy = smtp_server.parsed()[0]
    assert test_copy["To"] == "editor <editor@lmec.example.org>"
    assert str(test_copy["Subject"]).startswith("[TEST] ")
    smtp_server.clear()

    # A campaign for the newsletter list, scheduled a few seconds ahead.
    first, counts = _create_campaign(
        page, base, "Issue 15 to the newsletter list", artifacts / f"web-e2e-new-{db}.png"
    )
    with root.sessions() as session:
        from subscribers.audience import Audience, count_audience

        expected = count_audience(session, Audience(lists=("newsletter",)))
    assert expected > 30
    assert f"Recipients: {expected}" in counts
    # The form freezes the content when it is sent, which takes a while on a busy
    # machine: a time that passed meanwhile is refused, then tried further ahead.
    for lead in (20, 60, 180):
        at = (datetime.now(UTC) + timedelta(seconds=lead)).strftime("%Y-%m-%dT%H:%M:%S")
        page.fill("input[name=at]", at)
        page.select_option("select[name=tz]", "UTC")
        page.click("#schedule-form button[type=submit]")
        scheduled = page.locator("text=Scheduled in 1 wave")
        scheduled.or_(page.locator("text=is in the past")).first.wait_for()
        if scheduled.count():
            break
    else:
        raise AssertionError("the schedule form never finished within its lead")
    assert page.locator("#campaign-state").inner_text() == "scheduled"
    page.screenshot(path=str(artifacts / f"web-e2e-scheduled-{db}.png"), full_page=True)
    _wait_for_state(page, "sent")
    page.screenshot(path=str(artifacts / f"web-e2e-sent-{db}.png"), full_page=True)
    assert page.locator("#count-sent").inner_text() == str(expected)
    assert page.locator("svg.chart:visible").count() == 2
    assert smtp_server.count() == expected
    assert max(smtp_server.arrivals().values()) == 1

    # A subscriber follows the unsubscribe link of the message they received.
    address = "thuha.nguyen@example.org"  # Nguyễn Thị Thu Hà, Vietnam
    message = next(m for m in smtp_server.parsed() if m["To"].addresses[0].addr_spec == address)
    assert m_name(message) == "Nguyễn Thị Thu Hà"
    link = LIST_UNSUBSCRIBE.search(str(message["List-Unsubscribe"]))
    assert link is not None and link.group(1).startswith(f"{base}/unsubscribe/")
    text_part = message.get_body(("plain",))
    assert text_part is not None and link.group(1) in text_part.get_content()
    subscriber_page = browser.new_context(viewport={"width": 375, "height": 812}).new_page()
    console.attach(subscriber_page)
    subscriber_page.goto(link.group(1))
    assert no_horizontal_overflow(subscriber_page)
    # She reads Vietnamese (the demo data give Vietnam's readers `vi`): so does the page.
    assert subscriber_page.get_attribute("html", "lang") == "vi"
    subscriber_page.click("button:has-text('Hủy đăng ký')")  # "Unsubscribe"
    subscriber_page.wait_for_selector("text=Bạn đã hủy đăng ký")  # "You are unsubscribed"
    subscriber_page.screenshot(path=str(artifacts / f"web-e2e-unsubscribed-{db}.png"))

    # The next campaign skips them.
    smtp_server.clear()
    second, counts = _create_campaign(page, base, "Issue 15 again")
    assert f"Recipients: {expected - 1}" in counts
    page.click("text=Send now")
    page.wait_for_selector("text=Sending started")
    _wait_for_state(page, "sent")
    assert smtp_server.count() == expected - 1
    assert address not in smtp_server.arrivals()
    with root.sessions() as session:
        rows = session.scalar(
            select(func.count()).select_from(LedgerRow).where(LedgerRow.campaign_id == second)
        )
        assert rows == expected - 1
        assert session.get(Campaign, first) is not None

    # The archive lists the issue once and its web copy shows no one's address.
    page.goto(f"{base}/archive")
    assert page.locator(".archive-list li").count() == 1
    page.click(".archive-list a")
    page.wait_for_url(f"{base}/view/{first}")
    body = page.content()
    assert "%%" not in body and address not in body
    page.screenshot(path=str(artifacts / f"web-e2e-view-{db}.png"))
    feed = page.request.get(f"{base}/archive/feed.atom")
    assert feed.ok and f"{base}/view/{first}" in feed.text()

    # The editor's campaign pages on a phone.
    phone = browser.new_context(
        viewport={"width": 375, "height": 812}, storage_state=page.context.storage_state()
    ).new_page()
    console.attach(phone)
    for path in ("/campaigns", f"/campaigns/{first}", "/campaigns/new", "/archive"):
        phone.goto(f"{base}{path}")
        assert no_horizontal_overflow(phone), path
    phone.goto(f"{base}/campaigns/{first}")
    phone.screenshot(path=str(artifacts / f"web-e2e-campaign-phone-{db}.png"), full_page=True)
    assert console.errors == []
