"""The web app in real headless Chromium: login, issue previews, upload errors, operator
pages, public pages; at desktop and 375 px phone width, with no console errors.
Screenshots go to test-artifacts/web-*.png (look at them)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Dialog, Page, ViewportSize, sync_playwright

from mailer.compose import Root, build
from mailer.delivery import tokens
from mailer.settings import Settings
from subscribers import mailing_lists, repository
from subscribers import partners as partner_store
from tests.conftest import REPO, make_settings
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

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"
PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1360, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Site:
    """A running app, its root, and pages that record console errors."""

    def __init__(self, app: FastAPI, root: Root, base: str, browser: Browser) -> None:
        self.app, self.root, self.base, self.browser = app, root, base, browser
        self.console = ConsoleLog()

    def page(self, viewport: ViewportSize = DESKTOP) -> Page:
        page = self.browser.new_context(viewport=viewport).new_page()
        self.console.attach(page)
        return page

    def login(self, page: Page, email: str = "admin@example.org") -> None:
        page.goto(f"{self.base}/issues")
        assert "/login" in page.url
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.base}/issues")


@pytest.fixture
def site(browser: Browser, database_url: str, tmp_path: Path) -> Iterator[Site]:
    sock = free_socket()
    host, port = sock.getsockname()
    issues = tmp_path / "issues"  # a copy: tests may change and upload files
    shutil.copytree(REPO / "examples" / "issues", issues)
    settings: Settings = make_settings(
        tmp_path,
        database_url=database_url,
        public_base_url=f"http://{host}:{port}",
        issues_dir=issues,
    )
    root = build(settings)
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    add_user(app, "editor@example.org", "editor")
    with serve(app, sock) as base:
        yield Site(app, root, base, browser)
    root.close()


def shot(page: Page, artifacts: Path, name: str, db: str) -> None:
    page.screenshot(path=str(artifacts / f"web-{name}-{db}.png"), full_page=True)


def _db(site: Site) -> str:
    return site.root.engine.dialect.name


def test_login_and_preview_both_seed_issues(site: Site, artifacts: Path) -> None:
    db = _db(site)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = site.page(viewport)
        site.login(page, "editor@example.org")
        shot(page, artifacts, f"issues-{label}", db)
        # Issue 13 has Chinese and Thai variants beside it, each listed with its language.
        for key in ("2022-13", "2022-13.zh", "2022-13.th", "2022-15"):
            assert page.locator(f"a[href='/issues/{key}']").count() == 1, key
        assert page.locator("text=Issue 13, 2022").count() == 3
        assert page.locator("text=Issue 15, 2022").count() == 1
        for slug in ("2022-13", "2022-15"):
            page.goto(f"{site.base}/issues/{slug}")
            frames = page.locator("iframe:visible")
            assert frames.count() == (2 if label == "desktop" else 1)
            for index in range(frames.count()):
                body = frames.nth(index).content_frame.locator("body")
                assert "Lancang-Mekong" in body.inner_text()
                width = body.evaluate("b => window.innerWidth")
                assert width <= 620
                fits = "b => document.documentElement.scrollWidth <= window.innerWidth"
                assert body.evaluate(fits)
            assert "Unsubscribe" in page.locator("#text-part").inner_text()
            assert page.locator("#checks li").count() >= 1
            if label == "phone":
                assert no_horizontal_overflow(page), slug
            shot(page, artifacts, f"preview-{slug}-{label}", db)
        page.context.close()
    assert site.console.errors == []


def test_import_of_a_broken_file_shows_each_error_by_line_and_field(
    site: Site, artifacts: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "newsletter: lmec\nnumber: thirteen\nyear: 2022\ndate: 2022-09-29\nlanguage: en\n"
        "title: A title\npreheader: x\nblocks:\n  - paragraph: fine\n  - statement:\n"
        "      roles: [Director]\n      text: no name\n  - carousel: {}\n",
        encoding="utf-8",
    )
    page = site.page(PHONE)
    site.login(page, "editor@example.org")
    page.set_input_files("input[type=file]", str(broken))
    page.click("button:has-text('Import into a draft')")
    page.wait_for_selector("#upload-errors")
    table = page.locator("#upload-errors").inner_text()
    assert "broken.yaml was not imported" in table
    assert "number" in table and "blocks[1].statement.name" in table
    assert "carousel" in table
    assert no_horizontal_overflow(page)
    shot(page, artifacts, "upload-errors-phone", _db(site))
    assert not (site.root.settings.resolved_issues_dir / "broken.yaml").exists()
    assert page.locator("tr.draft-row").count() == 0
    assert site.console.errors == []


def _seed_people(root: Root) -> dict[str, int]:
    with root.sessions.begin() as session:
        mailing_lists.add_list(
            session, "newsletter", "Newsletter", "Every issue, about six a year", public=True
        )
        mailing_lists.add_list(session, "events", "Events", "Invitations to workshops")  # private
        partner_store.add_partner(session, "Mekong River Commission", "LA")
        ids = {
            "xss": repository.add_subscriber(
                session, "xss@example.org", name=XSS, country="TH", lists=["newsletter"]
            ).id,
            "linh": repository.add_subscriber(
                session,
                "linh@example.vn",
                name="Nguyễn Thị Linh",
                country="VN",
                lists=["newsletter", "events"],
            ).id,
            "aung": repository.add_subscriber(
                session,
                "aung@example.mm",
                name="အောင်ကျော်",
                country="MM",
                partner="Mekong River Commission",
                lists=["newsletter"],
            ).id,
        }
    return ids


def test_operator_pages_show_hostile_names_as_text(site: Site, artifacts: Path) -> None:
    ids = _seed_people(site.root)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # an executed onerror=alert(1) would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = site.page(viewport)
        page.on("dialog", on_dialog)
        site.login(page)
        for name, path in (
            ("subscribers", "/subscribers"),
            ("subscriber", f"/subscribers/{ids['xss']}"),
            ("partners", "/partners"),
            ("lists", "/lists"),
            ("suppression", "/suppression"),
            ("users", "/users"),
            ("settings", "/settings"),
            ("import", "/subscribers/import"),
            ("account", "/account"),
            ("campaigns", "/campaigns"),
            ("new-campaign", "/campaigns/new"),
        ):
            page.goto(f"{site.base}{path}")
            if label == "phone":
                assert no_horizontal_overflow(page), path
            shot(page, artifacts, f"{name}-{label}", _db(site))
        page.goto(f"{site.base}/subscribers")
        assert page.get_by_text(XSS).count() >= 1  # shown literally, as text
        assert page.locator("img[src=x]").count() == 0
        page.context.close()
    assert dialogs == []
    assert site.console.errors == []


def test_public_pages_unsubscribe_and_preferences(site: Site, artifacts: Path) -> None:
    ids = _seed_people(site.root)
    secret = site.root.settings.secret_key.get_secret_value()
    token = tokens.make_token(secret, ids["linh"])
    page = site.page(PHONE)
    page.goto(f"{site.base}/unsubscribe/{token}")
    assert "l***@example.vn" in page.inner_text("main")
    assert no_horizontal_overflow(page)
    shot(page, artifacts, "public-unsubscribe-confirm", _db(site))
    page.click("text=Choose lists instead")
    page.wait_for_url(f"**/preferences/{token}")
    page.uncheck("input[value=events]")
    page.click("text=Save my choice")
    page.wait_for_url("**saved=1")
    shot(page, artifacts, "public-preferences-saved", _db(site))
    with site.root.sessions() as session:
        active = {
            s.list.slug
            for s in repository.subscriptions_of(session, ids["linh"])
            if s.status.value == "active"
        }
    assert active == {"newsletter"}
    page.goto(f"{site.base}/unsubscribe/{token}")
    page.click("button:has-text('Unsubscribe')")
    page.wait_for_selector("text=You are unsubscribed")
    shot(page, artifacts, "public-unsubscribed", _db(site))
    with site.root.sessions() as session:
        assert repository.get_subscriber(session, ids["linh"]).status.value == "unsubscribed"
    page.goto(f"{site.base}/unsubscribe/{ids['linh']}.forged")
    assert "not valid" in page.inner_text("main")
    # The only console entry: Chromium reporting the 400 answer to the forged link.
    assert len(site.console.errors) == 1 and "status of 400" in site.console.errors[0]
    site.console.errors.clear()
    page.goto(f"{site.base}/archive")
    shot(page, artifacts, "public-archive", _db(site))
    assert site.console.errors == []


def test_login_page_throttle_and_phone_menu(site: Site, artifacts: Path) -> None:
    page = site.page(PHONE)
    page.goto(f"{site.base}/subscribers")
    page.wait_for_url("**/login?next=/subscribers")
    shot(page, artifacts, "login-phone", _db(site))
    for _ in range(5):
        page.fill("input[name=email]", "editor@example.org")
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Wrong email address or password")
    page.fill("input[name=email]", "editor@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    # The block lasts 30 s from the last failure; how much of it is left when the page
    # answers depends on how busy the machine is, so only its range is checked.
    notice = page.wait_for_selector(r"text=/Too many failed logins; try again in \d+ seconds?/")
    assert notice is not None
    left = re.search(r"try again in (\d+) second", notice.inner_text())
    assert left is not None and 0 < int(left.group(1)) <= 30
    shot(page, artifacts, "login-throttled-phone", _db(site))
    # Chromium reports the 429 answer itself; nothing else may appear.
    assert len(site.console.errors) == 1 and "status of 429" in site.console.errors[0]
    site.console.errors.clear()

    admin = site.page(PHONE)
    site.login(admin)
    assert not admin.locator("nav a[href='/subscribers']").is_visible()
    admin.click("label.menu-button")
    assert admin.locator("nav a[href='/subscribers']").is_visible()
    assert no_horizontal_overflow(admin)
    shot(admin, artifacts, "menu-open-phone", _db(site))
    admin.click("nav a[href='/subscribers']")
    admin.wait_for_url(f"{site.base}/subscribers")
    assert site.console.errors == []


def test_preview_reloads_when_the_content_file_changes(site: Site, artifacts: Path) -> None:
    page = site.page(DESKTOP)
    site.login(page, "editor@example.org")
    page.goto(f"{site.base}/issues/2022-13")
    heading = page.locator("section.card h2").first
    assert heading.inner_text().startswith("2022 Second Working-Group Meeting")
    path = site.root.settings.resolved_issues_dir / "2022-13.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("title: 2022 Second", "title: Edited live, 2022 Second", 1), encoding="utf-8"
    )
    page.wait_for_selector("h2:has-text('Edited live, 2022 Second')", timeout=120_000)
    frame = page.frame_locator("iframe").first
    assert "Edited live" in frame.locator("body").inner_text()
    assert site.console.errors == []


def test_import_of_a_valid_file_makes_a_draft_each_time(
    site: Site, artifacts: Path, tmp_path: Path
) -> None:
    """The Issues page's upload imports into a draft (the issues folder is not written);
    importing the same file again makes another draft, nothing is replaced."""
    source = (REPO / "examples" / "issues" / "2022-13.yaml").read_text(encoding="utf-8")
    upload = tmp_path / "my draft.yaml"
    upload.write_text(source.replace("number: 13", "number: 16", 1), encoding="utf-8")
    page = site.page(DESKTOP)
    site.login(page, "editor@example.org")
    page.set_input_files("input[type=file]", str(upload))
    page.click("button:has-text('Import into a draft')")
    page.wait_for_selector("text=Imported my draft.yaml into draft 1.")
    assert not (site.root.settings.resolved_issues_dir / "2022-16.yaml").exists()
    page.goto(f"{site.base}/issues")
    assert page.locator("text=Issue 16, 2022").count() == 1
    page.set_input_files("input[type=file]", str(upload))
    page.click("button:has-text('Import into a draft')")
    page.wait_for_selector("text=Imported my draft.yaml into draft 2.")
    page.goto(f"{site.base}/issues")
    assert page.locator("text=Issue 16, 2022").count() == 2
    assert site.console.errors == []
