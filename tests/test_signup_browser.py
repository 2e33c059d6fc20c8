"""Sign-up in real Chromium, with mail through a real SMTP server, on SQLite and
PostgreSQL: on our page (at 375 px, screenshot in test-artifacts/) and through the
embedded snippet served by a partner's site on another origin; the link's page, the
Confirm button, the next campaign; and axe-core on the new pages."""

# ruff: noqa: F811
from __future__ import annotations

import functools
import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer
from mailer.compose import Root, build
from mailer.delivery import campaigns, lifecycle
from subscribers import mailing_lists, repository
from subscribers.audience import Audience
from subscribers.models import SubscriptionStatus
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401
from tests.test_accessibility import AXE, axe_violations
from tests.web_harness import (
    CHROMIUM_ARGS,
    ConsoleLog,
    add_user,
    free_socket,
    login,
    make_app,
    no_horizontal_overflow,
    serve,
)

pytestmark = pytest.mark.browser

SEED = REPO / "examples" / "issues" / "2022-13.yaml"
LINK = re.compile(r"http://127\.0\.0\.1:[0-9]+/subscribe/confirm/[0-9]+\.[0-9]+\.[A-Za-z0-9_-]+")


@dataclass
class Site:
    root: Root
    app: FastAPI
    base: str
    browser: Browser
    smtp: SMTPTestServer
    db: str


@pytest.fixture
def site(tmp_path: Path, database_url: str, smtp_server: SMTPTestServer) -> Iterator[Site]:
    sock = free_socket()
    host, port = sock.getsockname()
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        smtp_port=smtp_server.port,
        public_base_url=f"http://{host}:{port}",
        signup_min_fill_seconds=0,  # the fill time has its own test (test_signup.py)
        retry_base_seconds=0.0,
    )
    root = build(settings)
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", "Every issue", public=True)
        mailing_lists.add_list(session, "events", "Events", "Workshops and meetings", public=True)
        mailing_lists.add_list(session, "partners-only", "Partners only", public=False)
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    with serve(app, sock) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield Site(root, app, base, browser, smtp_server, root.engine.dialect.name)
        finally:
            browser.close()
    root.close()


def confirmation_link(smtp: SMTPTestServer, count: int) -> str:
    assert smtp.wait_for(count)
    message = smtp.parsed()[count - 1]
    text = message.get_body(("plain",))
    assert text is not None
    found = LINK.search(text.get_content())
    assert found, text.get_content()
    return found.group()


def fill_form(page: Page, email: str) -> None:
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=name]").fill("ສົມພອນ ວົງສາ")
    page.locator("select[name=country]").select_option("LA")
    page.get_by_role("checkbox", name=re.compile("I want to receive")).check()


def confirm_in_browser(page: Page, site: Site, link: str, email: str, slug: str) -> None:
    """Open the emailed link (nothing changes), then press Confirm."""
    page.goto(link)
    assert page.get_by_role("heading", name="Confirm your subscription").is_visible()
    assert _subscription(site, email, slug) is None
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()


def _subscription(site: Site, email: str, slug: str) -> tuple[str, str | None, str] | None:
    with site.root.sessions() as session:
        person = repository.find_subscriber(session, email)
        if person is None:
            return None
        for s in repository.subscriptions_of(session, person.id):
            if s.list.slug == slug and s.status == SubscriptionStatus.ACTIVE:
                return s.consent_source, s.consent_form, s.consent_text or ""
    return None


def send_campaign(site: Site) -> None:
    with site.root.sessions.begin() as session:
        campaign_id = campaigns.create_campaign(
            session,
            name="Issue 13",
            issue_path=SEED,
            issue=load_issue(SEED),
            sender="LMEC Newsletter <newsletter@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        ).id
    lifecycle.start_sending(
        site.root.sessions, campaign_id, renderer=Renderer.from_settings(site.root.settings)
    )
    site.root.worker().run(threading.Event(), until_idle=True)


def test_sign_up_on_our_page_at_375_px_confirm_and_receive_the_next_issue(
    site: Site, artifacts: Path
) -> None:
    console = ConsoleLog()
    page = site.browser.new_context(viewport={"width": 375, "height": 800}).new_page()
    console.attach(page)
    page.goto(f"{site.base}/subscribe/newsletter")
    assert page.get_by_role("checkbox", name="LMEC Newsletter").is_checked()
    assert not page.get_by_role("checkbox", name="Events").is_checked()
    assert page.get_by_role("checkbox", name="Partners only").count() == 0
    fill_form(page, "somphone@example.la")
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(artifacts / f"signup-375-{site.db}.png"), full_page=True)
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(artifacts / f"signup-sent-375-{site.db}.png"), full_page=True)

    link = confirmation_link(site.smtp, 1)
    assert site.smtp.parsed()[0]["To"] == "somphone@example.la"
    confirm_in_browser(page, site, link, "somphone@example.la", "newsletter")
    page.screenshot(path=str(artifacts / f"signup-confirmed-375-{site.db}.png"), full_page=True)
    record = _subscription(site, "somphone@example.la", "newsletter")
    assert record is not None and record[:2] == ("signup-page", "page:newsletter")

    site.smtp.clear()
    send_campaign(site)
    assert site.smtp.wait_for(1)
    issue = site.smtp.parsed()[0]
    assert issue["To"].addresses[0].addr_spec == "somphone@example.la"
    assert "Working-Group Meeting" in str(issue["Subject"])
    page.context.close()
    assert console.errors == []


def test_sign_up_through_the_snippet_on_a_partner_site(site: Site, tmp_path: Path) -> None:
    """The snippet from the list's staff page, pasted into a page another server (another
    origin) serves: it posts to us, and the person lands on our "check your inbox" page."""
    http, _ = login(site.app, "admin@example.org")
    staff_page = http.get("/lists/newsletter/signup").text
    found = re.search(r'<textarea id="snippet"[^>]*>(.*?)</textarea>', staff_page, re.DOTALL)
    assert found
    snippet = html.unescape(found.group(1))
    assert "<script" not in snippet and f'action="{site.base}/subscribe"' in snippet
    partner = tmp_path / "partner"
    partner.mkdir()
    (partner / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Green Delta"
        f"</title></head><body><h1>Green Delta</h1><p>Our newsletter partner:</p>{snippet}"
        "</body></html>",
        encoding="utf-8",
    )
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(partner))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        other = f"http://127.0.0.1:{server.server_address[1]}"
        assert other != site.base
        page = site.browser.new_context(viewport={"width": 800, "height": 900}).new_page()
        page.goto(f"{other}/index.html")
        fill_form(page, "dao@example.vn")
        trap = page.locator("input[name=website]")  # off-screen: people never see it
        assert trap.evaluate("e => e.getBoundingClientRect().right") <= 0
        page.get_by_role("button", name="Subscribe to LMEC Newsletter").click()
        page.wait_for_url(f"{site.base}/subscribe")
        assert page.get_by_role("heading", name="Check your inbox").is_visible()
        link = confirmation_link(site.smtp, 1)
        confirm_in_browser(page, site, link, "dao@example.vn", "newsletter")
        record = _subscription(site, "dao@example.vn", "newsletter")
        assert record is not None and record[:2] == ("signup-embed", "embed:newsletter")
        assert record[2] == site.root.settings.signup_consent_text
        page.context.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_sign_up_pages_have_no_serious_accessibility_violation(
    site: Site, artifacts: Path
) -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run ./run setup")
    context = site.browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    page = context.new_page()
    found: dict[str, list[str]] = {}
    for name, path in (("all lists", "/subscribe"), ("one list", "/subscribe/newsletter")):
        page.goto(f"{site.base}{path}")
        found[name] = axe_violations(page)
    page.get_by_role("button", name="Subscribe").click()  # nothing filled in: the errors
    page.get_by_text("Please enter your email address.").wait_for()
    found["form with errors"] = axe_violations(page)
    page.goto(f"{site.base}/subscribe/newsletter")
    fill_form(page, "axe@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    found["check your inbox"] = axe_violations(page)
    link = confirmation_link(site.smtp, 1)
    email = site.smtp.parsed()[0].get_body(("html",))
    assert email is not None
    mail_file = artifacts / f"signup-confirmation-email-{site.db}.html"
    mail_file.write_text(email.get_content(), encoding="utf-8")
    for width in (600, 375):  # the confirmation email itself, as a mail client shows it
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(mail_file.as_uri())
        found[f"confirmation email at {width} px"] = axe_violations(page)
        page.screenshot(
            path=str(artifacts / f"signup-confirmation-email-{width}-{site.db}.png"),
            full_page=True,
        )
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(link)
    found["confirm"] = axe_violations(page)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    found["confirmed"] = axe_violations(page)
    page.goto(f"{site.base}/login")
    page.fill("input[name=email]", "admin@example.org")
    page.fill("input[name=password]", "a long test password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/issues")
    for name, path in (
        ("sign-ups", "/subscribers/signups"),
        ("snippet", "/lists/newsletter/signup"),
    ):
        response = page.goto(f"{site.base}{path}")
        assert response is not None and response.ok
        found[name] = axe_violations(page)
    context.close()
    report = [f"{name}: {line}" for name, lines in found.items() for line in lines]
    assert not report, "\n".join(report)
