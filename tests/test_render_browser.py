"""The rendered emails and the preview page in real headless Chromium.

Screenshots go to test-artifacts/ (authoring-*.png) for a person to look at: both
seed issues at 600 px (desktop) and 375 px (phone), names in the six countries'
scripts, and the live preview page.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from mailer.authoring.content import load_issue, load_issue_text
from mailer.authoring.preview import create_app
from mailer.authoring.render import Renderer, fill, sample_values
from tests.conftest import make_settings
from tests.test_render import PEOPLE, issue_yaml

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "issues"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_email(browser: Browser, path: Path, width: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
@pytest.mark.parametrize("width", [600, 375])
def test_seed_issue_fits_and_shows_every_card(
    browser: Browser, artifacts: Path, tmp_path: Path, slug: str, width: int
) -> None:
    settings = make_settings(tmp_path)
    renderer = Renderer.from_settings(settings)
    issue = load_issue(EXAMPLES / f"{slug}.yaml")
    rendered = renderer.render(issue)
    html_path = artifacts / f"authoring-{slug}-{width}.html"
    values = sample_values(settings.public_base_url, html_path.as_uri())
    html_path.write_text(fill(rendered.html, values, html=True), encoding="utf-8")

    page = open_email(browser, html_path, width)
    try:
        page.screenshot(path=artifacts / f"authoring-{slug}-{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        cards = page.locator("table.s")
        assert cards.count() == len(issue.statements)
        for index, statement in enumerate(issue.statements):
            card = cards.nth(index)
            assert card.is_visible()
            box = card.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
            assert box["height"] > 80
            assert statement.name in card.inner_text()
        masthead = page.get_by_text("澜沧江-湄公河环境合作中心", exact=True)
        assert masthead.is_visible()
        assert page.get_by_text(f"Issue {issue.number}, {issue.year}").is_visible()
        assert page.get_by_text("Contact Us").is_visible()
        # At phone width the cards use nearly the whole screen, not a shrunken desktop.
        if width == 375:
            first = cards.nth(0).bounding_box()
            assert first is not None and first["width"] > 330
    finally:
        page.close()


# Draws each character of the page in the font the page uses for it and compares
# it with what the same font draws for a code point no font has (the box, .notdef):
# the number of characters drawn as that box.
COUNT_BOXES = r"""
(selector) => {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (text, font) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = font; ctx.fillStyle = '#000'; ctx.textBaseline = 'middle';
    ctx.fillText(text, 8, 32);
    return ctx.getImageData(0, 0, 64, 64).data.join(',');
  };
  const missing = [];
  for (const element of document.querySelectorAll(selector)) {
    const style = getComputedStyle(element);
    const font = `${style.fontWeight} 24px ${style.fontFamily}`;
    const box = draw('\u{10FFFD}', font);
    for (const char of new Set(element.innerText.replace(/\s/g, ''))) {
      if (draw(char, font) === box) missing.push(char);
    }
  }
  return missing;
}
"""


@pytest.mark.parametrize("language", ["zh", "th"])
@pytest.mark.parametrize("width", [600, 375])
def test_language_variants_fit_and_show_every_glyph(
    browser: Browser, artifacts: Path, tmp_path: Path, language: str, width: int
) -> None:
    """The Chinese and Thai variants of Issue 13: every card, no overflow at phone width
    and no character drawn as a box (a font missing for the script)."""
    settings = make_settings(tmp_path)
    issue = load_issue(EXAMPLES / f"2022-13.{language}.yaml")
    rendered = Renderer.from_settings(settings).render(issue)
    html_path = artifacts / f"authoring-2022-13-{language}-{width}.html"
    values = sample_values(settings.public_base_url, html_path.as_uri())
    html_path.write_text(fill(rendered.html, values, html=True), encoding="utf-8")
    assert f'lang="{language}"' in rendered.html

    page = open_email(browser, html_path, width)
    try:
        shot = artifacts / f"authoring-2022-13-{language}-{width}.png"
        page.screenshot(path=shot, full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.get_by_text(issue.title, exact=True).first.is_visible()
        cards = page.locator("table.s")
        assert cards.count() == len(issue.statements)
        for index, statement in enumerate(issue.statements):
            box = cards.nth(index).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
            assert statement.name in cards.nth(index).inner_text()
        assert page.evaluate(COUNT_BOXES, "h1, h2, h3, p, td") == []
    finally:
        page.close()


def test_the_box_counter_sees_a_missing_glyph(browser: Browser, tmp_path: Path) -> None:
    """The check above can fail: a private-use character no font draws is a box."""
    path = tmp_path / "box.html"
    path.write_text('<p style="font-family: sans-serif">ok \ue000 ไทย</p>', encoding="utf-8")
    page = open_email(browser, path, 375)
    try:
        assert page.evaluate(COUNT_BOXES, "p") == ["\ue000"]
    finally:
        page.close()


def test_names_in_six_scripts_render_with_real_glyphs(
    browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    blocks = "".join(
        f'  - statement: {{name: "{name}", roles: ["{role}"], country: {country},'
        f' text: "{role}"}}\n'
        for name, role, country in PEOPLE
    )
    renderer = Renderer.from_settings(make_settings(tmp_path))
    rendered = renderer.render(load_issue_text(issue_yaml(blocks), "scripts.yaml"))
    path = artifacts / "authoring-scripts.html"
    path.write_text(rendered.html, encoding="utf-8")
    page = open_email(browser, path, 375)
    try:
        page.screenshot(path=artifacts / "authoring-scripts-375.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        for name, role, _ in PEOPLE:
            assert page.get_by_text(name, exact=True).first.is_visible()
            assert page.get_by_text(role, exact=True).first.is_visible()
    finally:
        page.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def preview_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "issue"
    (folder / "photos").mkdir(parents=True)
    shutil.copy(EXAMPLES / "2022-13.yaml", folder / "2022-13.yaml")
    Image.new("RGB", (600, 600), "#3b7d6e").save(folder / "photos" / "zhou.jpg")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, public_base_url=base)
    app = create_app(folder / "2022-13.yaml", settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield base, folder / "2022-13.yaml"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_preview_reloads_when_the_issue_changes(
    browser: Browser, artifacts: Path, preview_server: tuple[str, Path]
) -> None:
    base, issue_path = preview_server
    page = browser.new_page(viewport={"width": 1700, "height": 1000})
    try:
        page.goto(base + "/")
        page.wait_for_function("document.body.dataset.version !== undefined")
        first = page.evaluate("document.body.dataset.version")
        desktop = page.frame_locator("#desktop")
        phone = page.frame_locator("#phone")
        assert desktop.get_by_text("Mr. ZHOU Jun", exact=True).is_visible()
        assert "Mr. ZHOU Jun" in page.locator("#text").inner_text()

        # Give Mr. ZHOU a photo and change the title; the page follows by itself.
        text = issue_path.read_text(encoding="utf-8")
        text = text.replace(
            "      name: Mr. ZHOU Jun\n",
            "      name: Mr. ZHOU Jun\n      photo: photos/zhou.jpg\n",
        ).replace("was Successfully Held", "was Successfully Held (updated)")
        issue_path.write_text(text, encoding="utf-8")
        page.wait_for_function(f"document.body.dataset.version !== {first!r}", timeout=120_000)
        desktop.get_by_text("(updated)").first.wait_for()
        phone.get_by_text("(updated)").first.wait_for()
        portrait = desktop.locator("img[alt='Mr. ZHOU Jun']")
        portrait.wait_for()
        assert portrait.evaluate("img => img.complete && img.naturalWidth") == 112
        page.screenshot(path=artifacts / "authoring-preview.png")

        # A broken file shows its problems instead of failing silently.
        issue_path.write_text(text.replace("number: 13", "number: thirteen"), encoding="utf-8")
        problems = page.locator("#problems")
        problems.wait_for(state="visible", timeout=120_000)
        assert "2022-13.yaml:5: number:" in problems.inner_text()
    finally:
        page.close()
