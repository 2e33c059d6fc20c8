"""Imported issues as subscribers see them: screenshots for a person to look at.

The seed of Issue 13 and an unseen sample are imported from plain text, rendered and
opened in Chromium at 600 px and 375 px (test-artifacts/importer-*.png): every card
the importer found is a card on screen, and nothing overflows the phone's width.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from mailer.authoring.content import Issue
from mailer.authoring.importer import import_file
from mailer.authoring.profile import load_profile
from mailer.authoring.render import Renderer, fill, sample_values
from tests.conftest import REPO, make_settings
from tests.test_importer_layout import SAMPLES, SEED_13
from tests.test_render_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

SOURCES = {"issue-13": SEED_13, "youth-dialogue": SAMPLES / "youth-dialogue-crlf.txt"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_an_imported_issue_shows_its_cards(
    browser: Browser, artifacts: Path, tmp_path: Path, source: str
) -> None:
    if not SOURCES[source].exists():
        pytest.skip("the seed texts are not here")
    settings = make_settings(tmp_path)
    profile = load_profile(REPO / "config" / "newsletter.yaml")
    issue = Issue.model_validate(import_file(SOURCES[source], profile).document)
    rendered = Renderer.from_settings(settings).render(issue)
    html_path = artifacts / f"importer-{source}.html"
    values = sample_values(settings.public_base_url, html_path.as_uri())
    html_path.write_text(fill(rendered.html, values, html=True), encoding="utf-8")
    for width in (600, 375):
        page = browser.new_page(viewport={"width": width, "height": 900})
        try:
            page.goto(html_path.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=artifacts / f"importer-{source}-{width}.png", full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            cards = page.locator("table.s")
            assert cards.count() == len(issue.statements)
            for statement in issue.statements:
                assert page.get_by_text(statement.name, exact=True).first.is_visible()
        finally:
            page.close()
