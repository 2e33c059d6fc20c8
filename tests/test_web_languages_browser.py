"""Each public page in each language, as a reader's Chromium shows it at 600 and 375 px:
no character drawn as a box (the Noto fonts are installed), no horizontal overflow on
a phone, no serious or critical axe-core violation. Screenshots in
test-artifacts/public-<page>-<lang>-<width>.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mailer import db
from mailer.authoring.content import load_issue
from mailer.authoring.labels import label
from mailer.authoring.render import Renderer, fill, sample_values
from mailer.compose import Root, build
from mailer.delivery import campaigns, lifecycle, tokens
from mailer.languages import LANGUAGES
from subscribers import mailing_lists, repository
from subscribers.audience import Audience
from tests.conftest import REPO, make_settings
from tests.test_accessibility import AXE, axe_violations
from tests.web_harness import CHROMIUM_ARGS, ConsoleLog, free_socket, make_app, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Each character of the page's text drawn alone in the font its element uses, compared
# with what the browser draws for a code point no font has (U+0378 is unassigned): the
# same pixels mean a box. Marks, spaces and format characters are drawn with their base.
BOXES = """
(extra) => {
  const canvas = document.createElement('canvas');
  canvas.width = 48; canvas.height = 48;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (text, family) => {
    ctx.clearRect(0, 0, 48, 48);
    ctx.font = `32px ${family}`;
    ctx.fillText(text, 4, 36);
    return ctx.getImageData(0, 0, 48, 48).data.join(',');
  };
  const byFamily = new Map();
  const add = (text, family) => {
    if (!byFamily.has(family)) byFamily.set(family, new Set());
    for (const ch of text) {
      if (!/[\\s\\p{M}\\p{Cf}]/u.test(ch)) byFamily.get(family).add(ch);
    }
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    if (!element || !element.checkVisibility()) continue;
    add(node.data, getComputedStyle(element).fontFamily);
  }
  if (extra) add(extra, getComputedStyle(document.body).fontFamily);
  const boxes = [];
  for (const [family, chars] of byFamily) {
    const box = draw('\\u0378', family);
    for (const ch of chars) if (draw(ch, family) === box) boxes.push(ch);
  }
  return boxes;
}
"""

PAGES = ("unsubscribe", "unsubscribed", "preferences", "invalid", "web-copy", "archive")
WIDTHS = (600, 375)


class Site:
    """The app with a public list, two readers (one unsubscribed) and a sent issue."""

    def __init__(self, root: Root) -> None:
        secret = root.settings.secret_key.get_secret_value()
        path = REPO / "examples" / "issues" / "2022-13.yaml"
        issue = load_issue(path)
        with root.sessions.begin() as session:
            mailing_lists.add_list(
                session, "newsletter", "LMEC Newsletter", "Every issue", public=True
            )
            mailing_lists.add_list(session, "partners-only", "Partners only", "Invitations")
            reader = repository.add_subscriber(
                session,
                "sokha@example.org",
                name="សុខា",
                language="km",
                lists=["newsletter", "partners-only"],
            )
            gone = repository.add_subscriber(
                session, "linh@example.vn", name="Linh", language="vi", lists=["newsletter"]
            )
            campaign = campaigns.create_campaign(
                session,
                name="Issue 13",
                issue_path=path,
                issue=issue,
                sender="LMEC Newsletter <newsletter@lmec.example.org>",
                audience=Audience(lists=("newsletter",)),
            )
            campaigns.freeze(
                session, campaign.id, Renderer.from_settings(root.settings).render(issue)
            )
            lifecycle.start_sending(session, campaign.id)
            self.campaign = campaign.id
            self.reader = tokens.make_token(secret, reader.id)
            gone_id = gone.id
        with root.sessions.begin() as session:
            repository.unsubscribe(session, gone_id, source="unsubscribe-page")
        self.gone = tokens.make_token(secret, gone_id)

    def path(self, page: str, lang: str) -> str:
        return {
            "unsubscribe": f"/unsubscribe/{self.reader}",
            "unsubscribed": f"/unsubscribe/{self.gone}",
            "preferences": f"/preferences/{self.reader}",
            "invalid": "/preferences/not-a-valid-token",
            "web-copy": f"/view/{self.campaign}",
            "archive": "/archive",
        }[page] + f"?lang={lang}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Site, Browser]]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run ./run setup (it installs axe-core with npm)")
    tmp_path = tmp_path_factory.mktemp("languages")
    sock = free_socket()
    host, port = sock.getsockname()
    url = f"sqlite:///{tmp_path / 'mailer.db'}"
    engine = db.make_engine(url)  # one database is enough here: the pages' words are the point
    db.upgrade(engine)
    engine.dispose()
    root = build(
        make_settings(
            tmp_path,
            database_url=url,
            public_base_url=f"http://{host}:{port}",
        )
    )
    try:
        site = Site(root)
        with serve(make_app(root), sock) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            yield base, site, browser
            browser.close()
    finally:
        root.close()


def _page(browser: Browser, width: int, console: ConsoleLog) -> Page:
    # The app's Content-Security-Policy forbids inline scripts; axe is one.
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    console.attach(page)
    return page


def test_the_box_finder_finds_a_box(served: tuple[str, Site, Browser]) -> None:
    """A CJK Extension H character (Unicode 15) no installed font has is found; the
    Thai, Khmer, Lao and Burmese letters next to it are not."""
    base, _, browser = served
    page = _page(browser, 600, ConsoleLog())
    page.goto(f"{base}/archive?lang=en")
    assert page.evaluate(BOXES, "กខລမ\U00031350") == ["\U00031350"]
    page.context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_public_page_in_each_language(
    served: tuple[str, Site, Browser], lang: str, artifacts: Path
) -> None:
    base, site, browser = served
    console = ConsoleLog()
    problems: dict[str, Any] = {}
    for width in WIDTHS:
        page = _page(browser, width, console)
        for name in PAGES:
            response = page.goto(base + site.path(name, lang))
            assert response is not None and response.status in (200, 400)
            where = f"{name} {lang} {width}px"
            html_lang = page.evaluate("document.documentElement.lang")
            # The web copy is the issue's own HTML (English here); its own words are in a
            # part marked with the reader's language.
            if name == "web-copy":
                assert page.locator(f'span[lang="{lang}"]').count() >= 2, where
            else:
                assert html_lang == lang, where
            current = page.locator('a[aria-current="true"]')
            assert current.count() == 1 and current.get_attribute("hreflang") == lang, where
            if boxes := page.evaluate(BOXES, ""):
                problems[f"{where}: boxes"] = boxes
            if width == 375:
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if overflow > 0:
                    problems[f"{where}: overflow"] = overflow
                if found := axe_violations(page):
                    problems[f"{where}: axe"] = found
            page.screenshot(
                path=str(artifacts / f"public-{name}-{lang}-{width}.png"), full_page=True
            )
        page.context.close()
    assert problems == {}
    # The "link not valid" page answers 400, which Chromium logs; nothing else may.
    assert [e for e in console.errors if "not-a-valid-token" not in e] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_emails_labels_in_each_language(
    served: tuple[str, Site, Browser], lang: str, artifacts: Path, tmp_path: Path
) -> None:
    """Issue 13 rendered with each `language`: its labels and date drawn without a box,
    nothing wider than a 375 px phone. Screenshots of the masthead and the footer in
    test-artifacts/email-labels-<lang>-<width>-{top,footer}.png."""
    _, _, browser = served
    issue = load_issue(REPO / "examples" / "issues" / "2022-13.yaml")
    renderer = Renderer.from_settings(make_settings(tmp_path))
    rendered = renderer.render(issue.model_copy(update={"language": lang}))
    values = sample_values("https://news.example.org", "https://news.example.org/view/1")
    markup = fill(rendered.html, values, html=True)
    for width in WIDTHS:
        page = _page(browser, width, ConsoleLog())
        page.set_content(markup)
        assert page.evaluate("document.documentElement.lang") == lang
        assert page.evaluate(BOXES, "") == []
        if width == 375:
            assert page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
        page.screenshot(path=str(artifacts / f"email-labels-{lang}-{width}-top.png"))
        page.locator("a", has_text=values_label(lang)).last.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"email-labels-{lang}-{width}-footer.png"))
        page.context.close()


def values_label(lang: str) -> str:
    """The footer's unsubscribe link text in `lang`, from the catalog."""
    return label("unsubscribe", lang)
