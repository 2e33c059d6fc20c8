"""The drafts' pages in headless Chromium, as an editor uses them: import a file into a
draft from the Issues page, compare two revisions on the history page, restore one
(the page asks first; going back changes nothing), at 600 px and 375 px, with no
console errors and no serious axe-core violation. Screenshots go to
test-artifacts/web-drafts-*.png (look at them)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from mailer.compose import Root, build
from mailer.drafts import store
from mailer.drafts.yamlfile import from_yaml
from mailer.timestamps import utcnow
from tests.conftest import REPO, make_settings
from tests.test_accessibility import axe_violations
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
WIDE: ViewportSize = {"width": 600, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 812}
SEED = REPO / "examples" / "issues" / "2022-13.yaml"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Site:
    def __init__(self, root: Root, base: str, browser: Browser) -> None:
        self.root, self.base, self.browser = root, base, browser
        self.console = ConsoleLog()

    def page(self, viewport: ViewportSize, *, axe: bool = False) -> Page:
        # axe-core is injected as an inline script: only its pages bypass the CSP
        page = self.browser.new_context(viewport=viewport, bypass_csp=axe).new_page()
        self.console.attach(page)
        page.goto(f"{self.base}/login")
        page.fill("input[name=email]", "editor@example.org")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.base}/issues")
        return page


@pytest.fixture
def site(browser: Browser, database_url: str, tmp_path: Path) -> Iterator[Site]:
    sock = free_socket()
    host, port = sock.getsockname()
    issues = tmp_path / "issues"
    shutil.copytree(REPO / "examples" / "issues", issues)
    root = build(
        make_settings(
            tmp_path,
            database_url=database_url,
            public_base_url=f"http://{host}:{port}",
            issues_dir=issues,
        )
    )
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    with serve(app, sock) as base:
        yield Site(root, base, browser)
    root.close()


def shot(page: Page, artifacts: Path, name: str, site: Site) -> None:
    db = site.root.engine.dialect.name
    page.screenshot(path=str(artifacts / f"web-drafts-{name}-{db}.png"), full_page=True)


def _second_revision(site: Site, draft_id: int) -> tuple[str, str]:
    """Another editor's save: a statement's words changed and a paragraph moved last."""
    with site.root.sessions.begin() as session:
        draft = store.get_draft(session, draft_id)
        document = draft.document
        statement = document["blocks"][3]["statement"]
        statement["text"] = "Cooperation on <clean> rivers & {{ 7*7 }} matters to us all."
        document["blocks"].append(document["blocks"].pop(1))
        store.save_draft(
            session,
            draft_id,
            document,
            base_version=draft.version,
            author_id=None,
            now=utcnow() + timedelta(minutes=3),
            autosave=False,
        )
        return str(statement["name"]), str(document["title"])


def test_history_shows_the_changes_and_restore_asks_first(site: Site, artifacts: Path) -> None:
    page = site.page(WIDE)
    # import the seed from the Issues page, as an editor would
    page.set_input_files("input[type=file]", str(SEED))
    page.click("button:has-text('Import into a draft')")
    page.wait_for_selector("text=Imported 2022-13.yaml into draft 1.")
    frame = page.locator("iframe:visible").first.content_frame
    frame.locator("text=ZHOU Jun").first.wait_for(state="attached")
    assert "Mr. ZHOU Jun" in frame.locator("body").inner_text()
    shot(page, artifacts, "imported-600", site)
    name, title = _second_revision(site, 1)

    page.goto(f"{site.base}/drafts/1/history")
    assert page.locator("#revisions tbody tr").count() == 2
    page.select_option("select[name=old]", "1")
    page.select_option("select[name=new]", "2")
    page.click("button:has-text('Show the changes')")
    page.wait_for_selector("#changes")
    changes = page.locator("#changes").inner_text()
    assert f"Block 3 (statement, {name})" in changes  # 3 now: the paragraph before it moved
    assert "text changed" in changes
    assert "Cooperation on <clean> rivers & {{ 7*7 }} matters to us all." in changes
    assert "moved from position 2" in changes
    assert no_horizontal_overflow(page)
    shot(page, artifacts, "history-600", site)

    # Restore asks first and says what it takes with it; going back changes nothing.
    page.click("button[aria-label='Restore revision 1']")
    page.wait_for_selector("h1:has-text('Restore revision 1')")
    question = page.locator("main").inner_text()
    assert "saved as a new revision 3" in question and "is not deleted" in question
    shot(page, artifacts, "restore-asks-600", site)
    page.click("text=Keep the draft as it is")
    page.wait_for_url(f"{site.base}/drafts/1/history")
    with site.root.sessions() as session:
        assert store.get_draft(session, 1).head == 2
    page.click("button[aria-label='Restore revision 1']")
    page.click("button:has-text('Restore revision 1')")
    page.wait_for_selector("text=Restored revision 1 as revision 3.")
    assert "restore of 1" in page.locator("#revisions").inner_text()
    with site.root.sessions() as session:
        draft = store.get_draft(session, 1)
        assert draft.head == 3
        assert draft.document == store.get_revision(session, 1, 1).document
    assert title in page.locator("h1").inner_text()

    phone = site.page(PHONE)
    phone.goto(f"{site.base}/drafts/1/history?old=2&new=3")
    phone.wait_for_selector("#changes")
    shot(phone, artifacts, "history-375", site)
    wide = phone.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter(e => !(e.parentElement && e.parentElement.closest('.table-wrap')))
        .map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)
        .slice(0, 8)""")
    assert no_horizontal_overflow(phone), wide
    phone.goto(f"{site.base}/drafts/1/revisions/2")
    frame = phone.locator("iframe:visible").first.content_frame
    frame.locator("text=Cooperation on").first.wait_for(state="attached")
    assert no_horizontal_overflow(phone)
    shot(phone, artifacts, "revision-375", site)
    phone.goto(f"{site.base}/issues")
    assert phone.locator("tr.draft-row").count() == 1
    assert no_horizontal_overflow(phone)
    shot(phone, artifacts, "issues-375", site)
    assert site.console.errors == []


def test_the_draft_pages_pass_axe(site: Site) -> None:
    with site.root.sessions.begin() as session:
        document = {"newsletter": "lmec", "language": "en", "blocks": []}
        store.create_draft(session, document, author_id=None, now=utcnow())
    _second_revision_of_empty(site)
    page = site.page(WIDE, axe=True)
    found = {}
    for path in (
        "/issues",
        "/drafts/1/history?old=1&new=2",
        "/drafts/1/revisions/1",
        "/drafts/1/revisions/2",
    ):
        response = page.goto(f"{site.base}{path}")
        assert response is not None and response.ok, path
        found[path] = axe_violations(page)
    page.goto(f"{site.base}/drafts/1/history")
    page.click("button[aria-label='Restore revision 1']")
    page.wait_for_selector("h1:has-text('Restore revision 1')")
    found["restore question"] = axe_violations(page)
    assert {path: lines for path, lines in found.items() if lines} == {}


def _second_revision_of_empty(site: Site) -> None:
    document = from_yaml(SEED.read_text(encoding="utf-8"), str(SEED))
    with site.root.sessions.begin() as session:
        store.save_draft(
            session, 1, document, base_version=1, author_id=None, now=utcnow(), autosave=True
        )
