"""Variants in real Chromium: the Chinese and Thai web copies at 600 and 375 px, the
archive's links to them, the campaign form's Languages field and the campaign page's
count per language; no horizontal overflow at 375 px, no serious or critical axe-core
violation. Screenshots: test-artifacts/variants-*.png (look at them)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mailer import db
from mailer.app import campaigns as app_campaigns
from mailer.authoring.content import load_issue
from mailer.compose import Root, build
from mailer.delivery import lifecycle
from subscribers import mailing_lists, repository
from subscribers.audience import Audience
from tests.conftest import REPO, make_settings
from tests.test_accessibility import AXE, axe_violations
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
FIXTURES = REPO / "tests" / "fixtures" / "variants"
PEOPLE = [
    ("zhang@cn.example.org", "张玉军", "CN", "zh"),
    ("narumon@th.example.org", "นฤมล โอริส", "TH", "th"),
    ("sokha@kh.example.org", "ស្រី សុនលាង", "KH", "km"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run ./run setup")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Site:
    def __init__(self, root: Root, base: str, browser: Browser, campaign_id: int) -> None:
        self.root, self.base, self.browser, self.campaign_id = root, base, browser, campaign_id
        self.console = ConsoleLog()

    def page(self, width: int) -> Page:
        # axe is an inline script, which the app's Content-Security-Policy forbids.
        context = self.browser.new_context(
            viewport={"width": width, "height": 900}, bypass_csp=True
        )
        page = context.new_page()
        self.console.attach(page)
        return page

    def login(self, page: Page) -> None:
        page.goto(f"{self.base}/login")
        page.fill("input[name=email]", "editor@example.org")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/issues$"))


@pytest.fixture
def site(browser: Browser, tmp_path: Path) -> Iterator[Site]:
    sock = free_socket()
    host, port = sock.getsockname()
    issues = tmp_path / "issues"
    shutil.copytree(FIXTURES, issues)
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    root = build(
        make_settings(
            tmp_path, database_url=url, public_base_url=f"http://{host}:{port}", issues_dir=issues
        )
    )
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", public=True)
        for email, name, country, language in PEOPLE:
            repository.add_subscriber(
                session, email, name=name, country=country, language=language, lists=["newsletter"]
            )
        path = issues / "2022-13.zh.yaml"
        campaign = app_campaigns.create_from_issue(
            session, root.profile, path, load_issue(path), Audience(lists=("newsletter",))
        )
        campaign_id = campaign.id
    lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    with serve(app, sock) as base:
        yield Site(root, base, browser, campaign_id)
    root.close()


def test_chinese_and_thai_web_copies_at_600_and_375(site: Site, artifacts: Path) -> None:
    for lang, words in (("zh", "以线上方式召开"), ("th", "จัดขึ้นทางออนไลน์")):
        for width in (600, 375):
            page = site.page(width)
            page.goto(f"{site.base}/view/{site.campaign_id}?lang={lang}")
            assert page.evaluate("document.documentElement.lang") == lang
            assert words in page.locator("body").inner_text()
            assert no_horizontal_overflow(page), (lang, width)
            page.screenshot(
                path=str(artifacts / f"variants-view-{lang}-{width}.png"), full_page=True
            )
            assert axe_violations(page) == []
            page.context.close()
    assert site.console.errors == []


def test_archive_links_the_variants(site: Site, artifacts: Path) -> None:
    for width in (600, 375):
        page = site.page(width)
        page.goto(f"{site.base}/archive")
        links = page.locator(f'a[href="/view/{site.campaign_id}?lang=th"]')
        assert links.count() == 1 and links.get_attribute("lang") == "th"
        assert no_horizontal_overflow(page)
        page.screenshot(path=str(artifacts / f"variants-archive-{width}.png"), full_page=True)
        assert axe_violations(page) == []
        links.click()
        page.wait_for_url(re.compile(r".*lang=th$"))
        assert page.evaluate("document.documentElement.lang") == "th"
        page.context.close()


def test_campaign_form_languages_and_report_per_language(site: Site, artifacts: Path) -> None:
    for width in (1280, 375):
        page = site.page(width)
        site.login(page)
        page.goto(f"{site.base}/campaigns/new")
        page.select_option("select[name=issue]", index=1)  # a variant: all of them go
        page.fill("input[name=languages]", "zh, th")
        count = page.locator("#audience-count")
        page.locator("input[name=languages]").blur()  # a change: the count follows by itself
        page.wait_for_function(
            "document.getElementById('audience-count').innerText.includes('Recipients: 2')"
        )
        with page.expect_navigation():
            page.click("button[formaction='/campaigns/new']")  # the same without JavaScript
        assert "Recipients: 2" in count.inner_text()
        assert "languages zh, th" in count.inner_text()
        assert page.locator("input[name=languages]").input_value() == "zh, th"
        assert no_horizontal_overflow(page) or width > 375
        page.screenshot(path=str(artifacts / f"variants-form-{width}.png"), full_page=True)
        assert axe_violations(page) == []
        page.goto(f"{site.base}/campaigns/{site.campaign_id}")
        assert (
            page.locator("#campaign-variants")
            .inner_text()
            .startswith("Language variants: en (default: everyone without their own), th, zh")
        )
        rows = page.locator("#by-language tbody tr")
        assert [r.locator("td").first.inner_text() for r in rows.all()] == ["km", "th", "zh"]
        page.screenshot(path=str(artifacts / f"variants-campaign-{width}.png"), full_page=True)
        found = axe_violations(page)
        assert found == [], (width, found)
        page.context.close()
