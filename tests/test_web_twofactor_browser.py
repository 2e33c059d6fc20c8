"""Two-factor sign-in and password reset in real headless Chromium, with mail through a
real SMTP server (aiosmtpd): what a person does, click by click. Codes are computed with
pyotp from the key the enrolment page shows. Screenshots: test-artifacts/2fa-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from sqlalchemy import update

from mailer.compose import Root, build
from mailer.people import resets, twofactor, websessions
from mailer.people.accounts import get_user
from tests.conftest import make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401  (the fixture)
from tests.test_accessibility import AXE, axe_violations
from tests.web_harness import (
    CHROMIUM_ARGS,
    PASSWORD,
    ConsoleLog,
    add_user,
    free_socket,
    make_app,
    serve,
)

pytestmark = pytest.mark.browser
DESKTOP: ViewportSize = {"width": 1360, "height": 900}
LINK = re.compile(r"https?://\S+/login/reset/[A-Za-z0-9_\-]+")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Site:
    def __init__(self, app: FastAPI, root: Root, base: str, browser: Browser) -> None:
        self.app, self.root, self.base, self.browser = app, root, base, browser
        self.console = ConsoleLog()
        self.contexts: list[BrowserContext] = []

    def page(self, bypass_csp: bool = False) -> Page:
        context = self.browser.new_context(viewport=DESKTOP, bypass_csp=bypass_csp)
        self.contexts.append(context)
        page = context.new_page()
        self.console.attach(page)
        return page

    def password(self, page: Page, email: str, password: str = PASSWORD) -> None:
        page.goto(f"{self.base}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()

    def code(self, page: Page, code: str) -> None:
        page.fill("input[name=code]", code)
        page.click("main button[type=submit]")
        page.wait_for_load_state()

    def sign_out(self, page: Page) -> None:
        page.click("button:has-text('Sign out')")
        page.wait_for_url(f"{self.base}/login")

    def user_id(self, email: str) -> int:
        with self.root.sessions() as session:
            return get_user(session, email).id


@pytest.fixture
def site(
    browser: Browser,
    database_url: str,
    tmp_path: Path,
    smtp_server: SMTPTestServer,  # noqa: F811
) -> Iterator[Site]:
    sock = free_socket()
    host, port = sock.getsockname()
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        public_base_url=f"http://{host}:{port}",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        require_2fa_for_admins=True,
    )
    root = build(settings)
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    add_user(app, "ed@example.org", "editor")
    with serve(app, sock) as base:
        site = Site(app, root, base, browser)
        yield site
        for context in site.contexts:
            context.close()
    root.close()
    # Pages answered 400 or 429 on purpose (a wrong code, a spent link) are logged by
    # Chromium as failed loads; any other console error fails the test.
    expected = re.compile(
        r"Failed to load resource: the server responded with a status of 4(00|29)"
    )
    assert [e for e in site.console.errors if not expected.search(e)] == []


def step_now() -> int:
    return int(time.time()) // 30


def wrong_code(totp: pyotp.TOTP) -> str:
    step = step_now()
    valid = {totp.generate_otp(s) for s in range(step - 2, step + 3)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


def enrol_in_page(page: Page, artifacts: Path | None = None) -> tuple[pyotp.TOTP, list[str]]:
    """On the enrolment page: scan (read the key), type the app's code; the codes shown."""
    page.wait_for_url("**/account/2fa")
    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()  # waits for the page to finish loading, however slow
    assert qr.bounding_box()["width"] >= 150  # type: ignore[index]
    if artifacts is not None:
        page.screenshot(path=str(artifacts / "2fa-enrol.png"), full_page=True)
    totp = pyotp.TOTP(page.locator("#secret").inner_text().replace(" ", ""))
    page.fill("input[name=code]", totp.generate_otp(step_now()))
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10, page.content()
    if artifacts is not None:
        page.screenshot(path=str(artifacts / "2fa-codes.png"), full_page=True)
    return totp, codes


def test_an_admin_is_sent_to_enrol_then_signs_in_with_codes(site: Site, artifacts: Path) -> None:
    page = site.page()
    site.password(page, "admin@example.org")
    page.wait_for_url(f"{site.base}/account/2fa")  # before anything else
    assert "Admins must sign in with a second factor" in page.inner_text("main")
    page.goto(f"{site.base}/campaigns")
    page.wait_for_url(f"{site.base}/account/2fa")
    totp, codes = enrol_in_page(page, artifacts)
    page.click("text=I have saved them")
    page.wait_for_url(f"{site.base}/account")
    assert "10 unused recovery codes left" in page.inner_text("main")
    page.goto(f"{site.base}/campaigns")
    assert page.url == f"{site.base}/campaigns"
    site.sign_out(page)

    # the password, then a wrong code, then the app's code
    site.password(page, "admin@example.org")
    page.wait_for_url(f"{site.base}/login/code")
    page.screenshot(path=str(artifacts / "2fa-code.png"), full_page=True)
    site.code(page, wrong_code(totp))
    assert "not right" in page.inner_text("main") and page.url.endswith("/login/code")
    code = totp.generate_otp(step_now() + 1)  # later than the step that turned it on
    site.code(page, code)
    page.wait_for_url(f"{site.base}/issues")
    site.sign_out(page)

    # the same code again: refused, even within its 30 s
    site.password(page, "admin@example.org")
    site.code(page, code)
    assert "used already" in page.inner_text("main") and page.url.endswith("/login/code")
    site.code(page, codes[0])
    page.wait_for_url(f"{site.base}/issues")
    assert "recovery code; 9 left" in page.inner_text("main")
    site.sign_out(page)

    # a recovery code works once
    site.password(page, "admin@example.org")
    site.code(page, codes[0])
    assert "not right" in page.inner_text("main")
    site.code(page, codes[1].upper())
    page.wait_for_url(f"{site.base}/issues")


def test_an_admin_resets_an_editors_second_factor(site: Site) -> None:
    ed_id = site.user_id("ed@example.org")
    editor = site.page()
    site.password(editor, "ed@example.org")
    editor.wait_for_url(f"{site.base}/issues")  # editors are not required to enrol
    editor.goto(f"{site.base}/account")
    editor.click("text=Set up two-factor sign-in")
    enrol_in_page(editor)

    admin = site.page()
    site.password(admin, "admin@example.org")
    enrol_in_page(admin)
    admin.goto(f"{site.base}/users")
    admin.locator(f"#user-{ed_id} button:has-text('Reset two-factor')").click()
    admin.wait_for_load_state()
    question = admin.inner_text("main")
    assert "Reset two-factor sign-in for ed@example.org?" in question
    assert "10 unused recovery codes stop working" in question
    assert "1 open session end" in question
    with site.root.sessions() as session:
        assert twofactor.is_enabled(session, ed_id)  # asked first: nothing changed yet
    admin.click("button:has-text('Reset two-factor sign-in')")
    admin.wait_for_url(f"{site.base}/users")
    assert "Two-factor sign-in reset for ed@example.org" in admin.inner_text("main")
    with site.root.sessions() as session:
        assert not twofactor.is_enabled(session, ed_id)
    editor.goto(f"{site.base}/issues")
    assert "/login" in editor.url  # their session ended
    site.password(editor, "ed@example.org")
    editor.wait_for_url(f"{site.base}/issues")  # the password alone again


def test_password_reset_by_email_end_to_end(
    site: Site,
    smtp_server: SMTPTestServer,  # noqa: F811
) -> None:
    ed_id = site.user_id("ed@example.org")
    elsewhere = [site.page(), site.page()]  # signed in on two other computers
    for page in elsewhere:
        site.password(page, "ed@example.org")
        page.wait_for_url(f"{site.base}/issues")

    page = site.page()
    page.goto(f"{site.base}/login")
    page.click("text=Forgot password?")
    page.fill("input[name=email]", "nobody@example.org")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    unknown = page.inner_text("main")
    page.goto(f"{site.base}/login/forgot")
    page.fill("input[name=email]", "ed@example.org")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    known = page.inner_text("main")
    assert known.replace("ed@example.org", "X") == unknown.replace("nobody@example.org", "X")
    assert "Check your inbox" in known

    assert smtp_server.wait_for(1)
    messages = smtp_server.parsed()
    assert [m["To"] for m in messages] == ["ed <ed@example.org>"]  # none to the unknown one
    mail = messages[0]
    assert mail.get_content_type() == "text/plain"
    body = mail.get_content()
    assert "works once" in body and "30 minutes" in body
    match = LINK.search(body)
    assert match, body
    link = match.group()
    assert link.startswith(site.base)

    page.goto(link)  # a GET shows the form and changes nothing
    assert "Choose a new password" in page.inner_text("main")
    for other in elsewhere:
        other.goto(f"{site.base}/issues")
        assert other.url == f"{site.base}/issues"
    page.fill("input[name=new]", "qwertyuiop")
    page.fill("input[name=confirm]", "qwertyuiop")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "most common" in page.inner_text("main")
    page.fill("input[name=new]", "a brand new passphrase")
    page.fill("input[name=confirm]", "a brand new passphrase")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site.base}/login")
    assert "every session has ended" in page.inner_text("main")
    for other in elsewhere:
        other.goto(f"{site.base}/issues")
        assert "/login" in other.url
    with site.root.sessions() as session:
        assert websessions.count(session, ed_id) == 0

    page.goto(link)  # once only
    assert "This link does not work" in page.inner_text("main")
    site.password(page, "ed@example.org", PASSWORD)
    assert "wrong email address or password" in page.inner_text("main").lower()
    site.password(page, "ed@example.org", "a brand new passphrase")
    page.wait_for_url(f"{site.base}/issues")

    # an altered link, and an expired one, are refused
    with site.root.sessions.begin() as session:
        token = resets.issue(session, ed_id, 1800)
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    fresh = site.page()
    fresh.goto(resets.link(site.base, altered))
    assert "This link does not work" in fresh.inner_text("main")
    with site.root.sessions.begin() as session:
        session.execute(
            update(resets.PasswordReset).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    fresh.goto(resets.link(site.base, token))
    assert "This link does not work" in fresh.inner_text("main")


def test_the_new_pages_have_no_serious_violation(site: Site, artifacts: Path) -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run ./run setup (it installs axe-core with npm)")
    found: dict[str, list[str]] = {}
    page = site.page(bypass_csp=True)  # axe is an inline script
    for name in ("forgot", "sign in"):
        page.goto(f"{site.base}/login/forgot" if name == "forgot" else f"{site.base}/login")
        found[name] = axe_violations(page)
    page.goto(f"{site.base}/login/forgot")
    page.fill("input[name=email]", "nobody@example.org")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    found["reset sent"] = axe_violations(page)
    with site.root.sessions.begin() as session:
        token = resets.issue(session, site.user_id("ed@example.org"), 1800)
    page.goto(resets.link(site.base, token))
    found["reset form"] = axe_violations(page)
    page.goto(resets.link(site.base, token + "x"))
    found["reset link not valid"] = axe_violations(page)

    site.password(page, "ed@example.org")
    page.goto(f"{site.base}/account")
    found["account (off)"] = axe_violations(page)
    page.goto(f"{site.base}/account/2fa")
    found["enrol"] = axe_violations(page)
    page.fill("input[name=code]", "12345")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    found["enrol (wrong code)"] = axe_violations(page)
    totp = pyotp.TOTP(page.locator("#secret").inner_text().replace(" ", ""))
    page.fill("input[name=code]", totp.generate_otp(step_now()))
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    found["recovery codes"] = axe_violations(page)
    page.goto(f"{site.base}/account")
    found["account (on)"] = axe_violations(page)
    site.sign_out(page)
    site.password(page, "ed@example.org")
    found["code"] = axe_violations(page)
    site.code(page, wrong_code(totp))
    found["code (wrong)"] = axe_violations(page)
    report = [f"{name}: {line}" for name, lines in found.items() for line in lines]
    assert not report, "\n".join(report)
