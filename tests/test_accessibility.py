"""Accessibility of what people read: axe-core's WCAG 2.1 A and AA rules in Chromium.

Both seed emails (as rendered, sample values filled in) and every page of the web app,
staff and public, with real data behind them: no serious or critical violation. axe-core
comes from npm (tests/axe/package.json, installed by `./run setup`) and is injected into
each page.

Text hidden by colouring it like its background is also what spam filters score
(SpamAssassin's HTML_FONT_LOW_CONTRAST): the emails have none, the preheader is hidden
another way and is still not displayed.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer, fill, sample_values
from mailer.compose import Root, build
from mailer.delivery import campaigns, lifecycle, tokens
from mailer.delivery.testsend import preview_eml
from subscribers import mailing_lists, repository, suppression
from subscribers import partners as partner_store
from subscribers.audience import Audience
from tests.conftest import REPO, make_settings
from tests.web_harness import CHROMIUM_ARGS, PASSWORD, add_user, free_socket, make_app, serve

pytestmark = pytest.mark.browser

AXE = REPO / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
EXAMPLES = REPO / "examples" / "issues"
DESKTOP: ViewportSize = {"width": 1360, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run ./run setup (it installs axe-core with npm)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def axe_violations(page: Page) -> list[str]:
    """The serious and critical WCAG 2.1 A/AA violations on the page, one line each.

    Frames are not entered (the previews are sandboxed without scripts): the emails
    they show are checked on their own below.
    """
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, iframes: false})",
        TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {json.dumps(node['target'])}:"
        f" {node.get('failureSummary', '')}"
        for v in result["violations"]
        if v["impact"] in BLOCKING
        for node in v["nodes"]
    ]


def render_seed(tmp_path: Path, slug: str) -> tuple[Path, str]:
    """The seed issue as `mailer render` writes it: HTML file with sample values, and a
    complete .eml beside it; returns the HTML file and the preheader."""
    settings = make_settings(tmp_path)
    root = build(settings)
    rendered = root.renderer().render(load_issue(EXAMPLES / f"{slug}.yaml"))
    path = tmp_path / f"{slug}.html"
    values = sample_values(settings.public_base_url, path.as_uri())
    filled = fill(rendered.html, values, html=True)
    path.write_text(filled, encoding="utf-8")
    text = fill(rendered.text, values, html=False)
    shown = dataclasses.replace(rendered, html=filled, text=text)
    eml = preview_eml(root.identity(), root.profile, shown)
    root.close()
    path.with_suffix(".eml").write_bytes(eml)
    return path, rendered.preheader


@pytest.mark.parametrize("slug", ["2022-13", "2022-15", "2022-13.zh", "2022-13.th"])
@pytest.mark.parametrize("width", [600, 375])
def test_seed_emails_have_no_serious_violation(
    browser: Browser, tmp_path: Path, slug: str, width: int
) -> None:
    path, _ = render_seed(tmp_path, slug)
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(path.as_uri())
        assert axe_violations(page) == []
    finally:
        page.close()


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_the_preheader_is_in_the_email_but_not_displayed(
    browser: Browser, tmp_path: Path, slug: str
) -> None:
    path, preheader = render_seed(tmp_path, slug)
    assert preheader and preheader in html.unescape(path.read_text(encoding="utf-8"))
    page = browser.new_page(viewport={"width": 600, "height": 900})
    try:
        page.goto(path.as_uri())
        assert preheader not in page.locator("body").inner_text()  # rendered text only
        hidden = page.evaluate(
            """text => [...document.querySelectorAll('body *')]
                .filter(e => e.children.length === 0 && e.textContent.includes(text))
                .map(e => { const r = e.getBoundingClientRect();
                            return {visible: e.checkVisibility(), w: r.width, h: r.height}; })""",
            preheader,
        )
        assert hidden, "the preheader element is gone"
        assert all(not h["visible"] or (h["w"] <= 1 and h["h"] <= 1) for h in hidden), hidden
    finally:
        page.close()


class Site:
    """The web app with people, lists, partners, a suppression and a sent campaign."""

    def __init__(self, root: Root, base: str, browser: Browser) -> None:
        self.root, self.base = root, base
        # The app's Content-Security-Policy forbids inline scripts; axe is one.
        self.page = browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()
        with root.sessions.begin() as session:
            mailing_lists.add_list(session, "newsletter", "Newsletter", "Every issue", public=True)
            mailing_lists.add_list(session, "events", "Events", "Invitations to workshops")
            partner_store.add_partner(session, "Mekong River Commission", "LA")
            self.subscriber = repository.add_subscriber(
                session,
                "linh@example.vn",
                name="Nguyễn Thị Linh",
                country="VN",
                partner="Mekong River Commission",
                lists=["newsletter", "events"],
            ).id
            repository.add_subscriber(
                session, "aung@example.mm", name="အောင်ကျော်", country="MM", lists=["newsletter"]
            )
            suppression.suppress(session, "gone@example.org", "hard bounce: 550 no such user")
            path = root.settings.resolved_issues_dir / "2022-13.yaml"
            issue = load_issue(path)
            self.campaign = campaigns.create_campaign(
                session,
                name="Issue 13 to the newsletter",
                issue_path=path,
                issue=issue,
                sender="LMEC Newsletter <newsletter@lmec.example.org>",
                audience=Audience(lists=("newsletter",)),
            ).id
            campaigns.freeze(
                session, self.campaign, Renderer.from_settings(root.settings).render(issue)
            )
            lifecycle.start_sending(session, self.campaign)
            draft_path = root.settings.resolved_issues_dir / "2022-15.yaml"
            campaigns.create_campaign(
                session,
                name="Issue 15 draft",
                issue_path=draft_path,
                issue=load_issue(draft_path),
                sender="LMEC Newsletter <newsletter@lmec.example.org>",
                audience=Audience(lists=("events",)),
            )
        self.token = tokens.make_token(root.settings.secret_key.get_secret_value(), self.subscriber)

    def login(self) -> None:
        self.page.goto(f"{self.base}/login")
        self.page.fill("input[name=email]", "admin@example.org")
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base}/issues")


@pytest.fixture
def site(browser: Browser, database_url: str, tmp_path: Path) -> Iterator[Site]:
    sock = free_socket()
    host, port = sock.getsockname()
    issues = tmp_path / "issues"
    shutil.copytree(EXAMPLES, issues)
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        public_base_url=f"http://{host}:{port}",
        issues_dir=issues,
    )
    root = build(settings)
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    with serve(app, sock) as base:
        site = Site(root, base, browser)
        yield site
        site.page.context.close()
    root.close()


def test_every_web_page_has_no_serious_violation(site: Site) -> None:
    public = {
        "login": "/login",
        "unsubscribe": f"/unsubscribe/{site.token}",
        "unsubscribe help": "/unsubscribe",
        "preferences": f"/preferences/{site.token}",
        "view": f"/view/{site.campaign}",
        "archive": "/archive",
    }
    staff = {
        "issues": "/issues",
        "issue": "/issues/2022-13",
        "campaigns": "/campaigns",
        "campaign": f"/campaigns/{site.campaign}",
        "new campaign": "/campaigns/new?issue=2022-15",
        "subscribers": "/subscribers",
        "subscriber": f"/subscribers/{site.subscriber}",
        "import": "/subscribers/import",
        "partners": "/partners",
        "lists": "/lists",
        "suppression": "/suppression",
        "users": "/users",
        "account": "/account",
        "settings": "/settings",
    }
    paths = public | staff
    found: dict[str, list[str]] = {}
    for name, path in public.items():
        response = site.page.goto(f"{site.base}{path}")
        assert response is not None and response.ok, (name, response and response.status)
        found[name] = axe_violations(site.page)
    site.login()
    for name, path in staff.items():
        response = site.page.goto(f"{site.base}{path}")
        assert response is not None and response.ok, (name, response and response.status)
        assert "/login" not in site.page.url
        found[name] = axe_violations(site.page)
    report = [f"{name} ({paths[name]}): {line}" for name, lines in found.items() for line in lines]
    assert not report, "\n".join(report)


def test_live_campaign_pages_update_in_place_without_a_meta_refresh(site: Site) -> None:
    """A sending campaign's pages follow it by fetching, not by reloading the page."""
    site.login()
    page = site.page
    for path in ("/campaigns", f"/campaigns/{site.campaign}"):
        page.goto(f"{site.base}{path}")
        assert page.locator("meta[http-equiv=refresh]").count() == 0
    page.goto(f"{site.base}/campaigns")
    row = page.locator(f"tr:has(a[href='/campaigns/{site.campaign}'])")
    assert row.locator(".badge").inner_text() == "sending"
    page.evaluate("window.notReloaded = true")
    with site.root.sessions.begin() as session:
        lifecycle.pause(session, site.campaign)
    row.locator(".badge:text-is('paused')").wait_for(timeout=60_000)
    assert page.evaluate("window.notReloaded") is True  # same document, updated in place


class LowContrastText(HTMLParser):
    """Text whose declared colour is (nearly) that of its declared background, judged as
    SpamAssassin 4's Mail::SpamAssassin::HTML does for HTML_FONT_LOW_CONTRAST: colours
    come from `style` on table, tr, td, div, span, p and a (and font/body attributes),
    not from `bgcolor` attributes, which it reads but never applies; black on white
    until declared; flagged when the brightness-weighted distance is under 12."""

    STYLED = frozenset({"table", "tr", "td", "th", "div", "span", "p", "a"})
    VOID = frozenset({"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "wbr"})
    HEX = re.compile(r"#[0-9a-f]{6}")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str, str]] = [("", "#000000", "#ffffff")]
        self.flagged: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        _, fg, bg = self.stack[-1]
        values = {name: value or "" for name, value in attrs}
        if tag in ("font", "body"):
            fg = values.get("color" if tag == "font" else "text") or fg
        if tag in self.STYLED:
            for part in values.get("style", "").split(";"):
                name, _, value = (x.strip().lower() for x in part.partition(":"))
                value = value.removesuffix("!important").strip()
                if name == "color":
                    fg = value
                elif name == "background-color":
                    bg = value
                elif name == "background" and (found := self.HEX.search(value)):
                    bg = found.group()
        self.stack.append((tag, fg, bg))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        tag, fg, bg = self.stack[-1]
        if not data.strip() or tag in ("style", "script", "title"):
            return
        if fg == bg or (self.HEX.fullmatch(fg) and self.HEX.fullmatch(bg) and _near(fg, bg)):
            self.flagged.append(f"{data.strip()[:50]!r}: {fg} on {bg}")


def _near(fg: str, bg: str) -> bool:
    weights = (0.2126, 0.7152, 0.0722)
    channels = [int(fg[i : i + 2], 16) - int(bg[i : i + 2], 16) for i in (1, 3, 5)]
    distance: float = sum((w * c) ** 2 for w, c in zip(weights, channels, strict=True)) ** 0.5
    return distance < 12


def low_contrast_text(markup: str) -> list[str]:
    parser = LowContrastText()
    parser.feed(markup)
    return parser.flagged


def test_the_low_contrast_judge_flags_what_spamassassin_flags() -> None:
    white_on_light = '<div style="background:#eef2f0"><div style="color:#ffffff">hidden</div></div>'
    assert low_contrast_text(white_on_light) == ["'hidden': #ffffff on #eef2f0"]
    # A bgcolor attribute does not count: white initials on a green cell inside a card.
    monogram = (
        '<table style="background:#f6f9f8"><tr><td bgcolor="#0b5d4b" style="color:#ffffff">'
        "AB</td></tr></table>"
    )
    assert low_contrast_text(monogram) == ["'AB': #ffffff on #f6f9f8"]
    readable = monogram.replace('style="color', 'style="background-color:#0b5d4b;color')
    assert low_contrast_text(readable) == []
    assert low_contrast_text('<p style="color:#1f2a27">text<br>more</p>') == []


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_seed_emails_hide_no_text_by_colour(tmp_path: Path, slug: str) -> None:
    path, _ = render_seed(tmp_path, slug)
    assert low_contrast_text(path.read_text(encoding="utf-8")) == []


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin not installed")
@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_spamassassin_scores_the_seed_emails_zero(tmp_path: Path, slug: str) -> None:
    """Where Debian's spamassassin is installed (a measurement tool, not a dependency):
    local rules only, as recorded in benchmarks/RESULTS.md."""
    path, _ = render_seed(tmp_path, slug)
    report = subprocess.run(
        ["spamassassin", "-L", "-t"],
        input=path.with_suffix(".eml").read_bytes(),
        capture_output=True,
        timeout=300,
        check=True,
    ).stdout.decode("utf-8", "replace")
    score = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert score, report
    assert float(score.group(1)) == 0.0, report[report.index("Content analysis") :]
