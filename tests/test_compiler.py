"""The MJML compiler with `mj-text` bodies held out gives the same email as compiling
the whole source, and copies each body verbatim as the official compiler does."""

from __future__ import annotations

import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import mjml
import pytest

from mailer.authoring.compiler import CompileError, _hold_out, compile_mjml, squeeze
from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer
from mailer.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SEEDS = sorted((REPO / "examples" / "issues").glob("*.yaml"))


class _Stream(HTMLParser):
    """Tags with their attributes and non-blank text, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items.append(("start", tag, repr(sorted(attrs))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "img", "meta", "link", "hr"):
            self.items.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.items.append(("text", " ".join(data.split())))

    def handle_comment(self, data: str) -> None:
        self.items.append(("comment", " ".join(data.split())))


def stream(markup: str) -> list[tuple[str, ...]]:
    parser = _Stream()
    parser.feed(markup)
    parser.close()
    return parser.items


def whole(source: str) -> str:
    return squeeze(str(mjml.mjml2html(source, disable_comments=True)))


def _chars(markup: str) -> int:
    return len(re.sub(r"&#\d+;", "x", markup))


def doc(body: str, head: str = "") -> str:
    return (
        f"<mjml><mj-head>{head}</mj-head><mj-body><mj-section><mj-column>{body}"
        "</mj-column></mj-section></mj-body></mjml>"
    )


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
def test_seed_issues_compile_to_the_same_document(seed: Path) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(
            env_file=None, data_dir=Path(data), public_base_url="https://news.example.org"
        )
        source = Renderer.from_settings(settings).mjml(load_issue(seed))
    skeleton, bodies = _hold_out(source)
    assert len(bodies) > 10  # the fast path is the one taken
    # Most of the document is held out (counted in characters: attributes write
    # Thai or Chinese as numeric references, seven bytes a character).
    assert _chars(skeleton) < _chars(source) / 3
    assert stream(compile_mjml(source)) == stream(whole(source))


def test_a_body_is_copied_byte_for_byte() -> None:
    body = '<p class="x">a &amp; b<br>\n<span title=\'q "x"\'>ไทย ខ្មែរ</span></p>'
    out = compile_mjml(doc(f'<mj-text padding="0">{body}</mj-text>'))
    assert body in out


def test_mj_text_defaults_in_mj_attributes_still_apply() -> None:
    source = doc(
        '<mj-text>hello</mj-text><mj-text color="#123456">there</mj-text>',
        head='<mj-attributes><mj-text color="#abcdef" font-size="19px" /></mj-attributes>',
    )
    out = compile_mjml(source)
    assert out.count("font-size:19px") == 2
    assert "color:#abcdef" in out and "color:#123456" in out
    assert stream(out) == stream(whole(source))


def test_a_quoted_greater_than_sign_in_an_attribute_is_not_the_end_of_the_tag() -> None:
    source = doc('<mj-text css-class="a>b" padding="3px">body</mj-text>')
    _, bodies = _hold_out(source)
    assert bodies == ["body"]
    assert stream(compile_mjml(source)) == stream(whole(source))


def test_a_token_lookalike_in_an_attribute_falls_back_to_a_whole_compile() -> None:
    source = doc(
        '<mj-image src="https://example.org/a.png" alt="%%MJTEXT0%%" />'
        "<mj-text>first</mj-text><mj-text>second</mj-text>"
    )
    out = compile_mjml(source)
    assert stream(out) == stream(whole(source))
    assert 'alt="%%MJTEXT0%%"' in out
    assert out.index("first") < out.index("second")


def test_a_token_lookalike_in_a_body_is_left_alone() -> None:
    source = doc("<mj-text>%%MJTEXT1%%</mj-text><mj-text>%%MJTEXT0%%</mj-text>")
    out = compile_mjml(source)
    assert out.index("%%MJTEXT1%%") < out.index("%%MJTEXT0%%")


def test_a_source_without_mj_text_compiles_as_a_whole() -> None:
    source = doc('<mj-button href="https://example.org">Go</mj-button>')
    assert compile_mjml(source) == whole(source)


def test_broken_mjml_is_a_compile_error() -> None:
    with pytest.raises(CompileError):
        compile_mjml("<mjml><mj-body><mj-text>unclosed</mj-body>")
    with pytest.raises(CompileError):
        compile_mjml("not mjml at all <")
