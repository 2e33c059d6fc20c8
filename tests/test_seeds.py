"""The two real issues in ../shared/seeds are reproduced word for word by the examples.

Each seed paragraph (text between blank lines) must appear, whitespace-normalised,
in the rendered plain-text part and in the visible text of the HTML part. Markdown
markers in the seeds (`**bold**`, `*italic*`) are formatting, not words.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailer.authoring.content import load_issue
from mailer.authoring.render import RenderedIssue, Renderer
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO.parent / "shared" / "seeds"
EXAMPLES = REPO / "examples" / "issues"
MAX_HTML_BYTES = 90 * 1024


def seed_for(slug: str) -> str:
    """The seed file whose masthead says this issue (file names are opaque)."""
    year, number = slug.split("-")
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if f"Issue {number}, {year}" in text:
            return text
    raise AssertionError(f"no seed for {slug} in {SEEDS}")


def normalise(text: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text, flags=re.DOTALL)
    text = re.sub(r"\*(.+?)\*", r"\1", text, flags=re.DOTALL)
    return " ".join(text.split())


def paragraphs(seed: str) -> list[str]:
    return [normalise(p) for p in re.split(r"\n\s*\n", seed) if normalise(p)]


class VisibleText(HTMLParser):
    """The words a reader sees: element boundaries become spaces, head is skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "title", "head"):
            self._skip += 1
        if tag in ("br", "p", "div", "td", "tr", "table", "h1", "h2"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "head"):
            self._skip -= 1
        if tag in ("p", "div", "td", "tr", "table", "h1", "h2"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(markup: str) -> str:
    parser = VisibleText()
    parser.feed(markup)
    return " ".join("".join(parser.parts).split())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RenderedIssue]:
    renderer = Renderer.from_settings(make_settings(tmp_path_factory.mktemp("seeds")))
    return {
        slug: renderer.render(load_issue(EXAMPLES / f"{slug}.yaml"))
        for slug in ("2022-13", "2022-15")
    }


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_seed_text_appears_in_plain_text_paragraph_by_paragraph(
    slug: str, rendered: dict[str, RenderedIssue]
) -> None:
    text = normalise(rendered[slug].text)
    seed = paragraphs(seed_for(slug))
    assert len(seed) > 30
    missing = [p for p in seed if p not in text]
    assert missing == []


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_seed_text_appears_in_html(slug: str, rendered: dict[str, RenderedIssue]) -> None:
    # The HTML shows web addresses as links, not in the angle brackets of plain text.
    seen = visible_text(rendered[slug].html)
    seed = [
        p.replace("<http://en.lmec.org.cn/>", "http://en.lmec.org.cn/")
        for p in paragraphs(seed_for(slug))
    ]
    missing = [p for p in seed if p not in seen]
    assert missing == []


def test_italic_document_titles_stay_italic(rendered: dict[str, RenderedIssue]) -> None:
    markup = rendered["2022-13"].html
    assert (
        "<em>Lancang-Mekong Environmental Cooperation Strategy and Action Framework 2023-2027</em>"
        in markup
    )
    assert "<em>Lancang-Mekong Environmental Cooperation Strategy 2018-2022</em>" in markup


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_seed_html_is_under_90_kb(slug: str, rendered: dict[str, RenderedIssue]) -> None:
    assert len(rendered[slug].html.encode("utf-8")) < MAX_HTML_BYTES


@pytest.mark.parametrize(("slug", "cards"), [("2022-13", 7), ("2022-15", 14)])
def test_every_statement_is_a_card(
    slug: str, cards: int, rendered: dict[str, RenderedIssue]
) -> None:
    issue = load_issue(EXAMPLES / f"{slug}.yaml")
    assert len(issue.statements) == cards
    markup = rendered[slug].html
    assert markup.count('class="q"') == cards + 1  # the cards and the contact panel
    for statement in issue.statements:
        assert statement.name in markup


def test_contact_block_differences_between_seeds_are_kept(
    rendered: dict[str, RenderedIssue],
) -> None:
    assert "WeChat ID: lancang-mekongcec" in rendered["2022-13"].text
    assert "Cooperation(LMEC)" in rendered["2022-13"].text
    assert "WeChat ID: lancang-mekongec" in rendered["2022-15"].text
    assert "Cooperation (LMEC)" in rendered["2022-15"].text
