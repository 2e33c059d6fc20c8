"""Editors' inline Markdown, rendered to email-safe HTML and to plain text.

The subset is deliberately small: paragraphs, emphasis, strong, links and line
breaks. Raw HTML, entities, lists, headings, code and images are off, so anything
else an editor types (`<script>`, `&amp;`, `- item`, `# title`) is text and comes out
literally, escaped. We walk markdown-it's tokens ourselves so that every byte of the
HTML is under our control: inline styles for mail clients, and attribute values
with non-ASCII written as numeric character references (mjml-python otherwise
mangles them into `\\u{...}`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

_INLINE_RULES = ["text", "newline", "escape", "emphasis", "link", "autolink"]
_INLINE_RULES2 = ["balance_pairs", "emphasis", "fragments_join"]


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False})
    md.block.ruler.enableOnly(["paragraph"])
    md.inline.ruler.enableOnly(_INLINE_RULES)
    md.inline.ruler2.enableOnly(_INLINE_RULES2)
    md.core.ruler.enableOnly(["normalize", "block", "inline", "text_join"])
    return md


def attr(value: str) -> str:
    """An HTML attribute value: escaped, and ASCII only (non-ASCII as `&#NNNN;`)."""
    escaped = html.escape(value, quote=True).replace("\\", "&#92;")
    return escaped.encode("ascii", "xmlcharrefreplace").decode("ascii")


def text_html(value: str) -> str:
    """Element content: `&`, `<`, `>` escaped; other characters kept as they are.

    A backslash becomes `&#92;`, so a `\\u{` or `\\"` in the HTML can only be the MJML
    compiler's mangling (which `mailer check` looks for), never an editor's text.
    """
    return html.escape(value, quote=False).replace("\\", "&#92;")


@dataclass
class Links:
    """Link targets collected while rendering the plain-text part, listed at its end."""

    urls: list[str] = field(default_factory=list)

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1


@dataclass(frozen=True)
class Style:
    """Inline CSS for the elements we emit (mail clients ignore most stylesheets)."""

    paragraph: str = "margin:0 0 14px"
    link: str = "color:#0b6e4f;text-decoration:underline"


# Characters that can start Markdown syntax in the enabled subset; text without any
# of them (most names and role lines) needs no parsing at all.
_SYNTAX = re.compile(r"[*_\[\]<>\\\n\r\x00]")

Memo = dict[tuple[str, bool], list[Token]]

# Only read by `link_targets`, never changed after it is built.
_LINK_PARSER = _parser()


def link_targets(source: str) -> list[str]:
    """The address of every link in an editor's text, as rendering will write it.

    Lets the content loader refuse relative links with the field they are in.
    Addresses markdown-it refuses (javascript:, data:...) are no links: they stay text.
    """
    if "[" not in source and "<" not in source:  # no link without either
        return []
    return [
        str(child.attrs.get("href", ""))
        for token in _LINK_PARSER.parse(source)
        if token.type == "inline"
        for child in token.children or []
        if child.type == "link_open"
    ]


class Markdown:
    """Built once; renders editors' text fields. Stateless apart from the parser.

    Callers may pass a `memo` dict shared by the HTML and text passes of one render,
    so each text field is parsed once.
    """

    def __init__(self) -> None:
        self._md = _parser()

    def _blocks(self, source: str, memo: Memo | None) -> list[list[Token]]:
        """The inline children of each paragraph of `source`."""
        return [t.children or [] for t in self._parse(source, False, memo) if t.type == "inline"]

    def _inline(self, source: str, memo: Memo | None) -> list[Token]:
        tokens = self._parse(source, True, memo)
        return (tokens[0].children or []) if tokens else []

    def _parse(self, source: str, inline: bool, memo: Memo | None) -> list[Token]:
        key = (source, inline)
        if memo is not None and key in memo:
            return memo[key]
        if not _SYNTAX.search(source) and source.strip() == source:
            tokens = [_plain(source)] if source else []
        else:
            tokens = self._md.parseInline(source) if inline else self._md.parse(source)
        if memo is not None:
            memo[key] = tokens
        return tokens

    # --- HTML ------------------------------------------------------------------------

    def html(self, source: str, style: Style = Style(), memo: Memo | None = None) -> str:
        """Paragraphs (`<p>`) with inline formatting."""
        bodies = [self._inline_html(children, style) for children in self._blocks(source, memo)]
        last = len(bodies) - 1
        return "".join(
            f'<p style="{style.paragraph if i < last else "margin:0"}">{body}</p>'
            for i, body in enumerate(bodies)
        )

    def inline_html(self, source: str, style: Style = Style(), memo: Memo | None = None) -> str:
        """One line of inline formatting, no paragraph element."""
        return self._inline_html(self._inline(source, memo), style)

    def _inline_html(self, children: Sequence[Token], style: Style) -> str:
        out: list[str] = []
        for token in children:
            kind = token.type
            if kind == "text":
                out.append(text_html(token.content))
            elif kind == "softbreak":
                out.append(" ")
            elif kind == "hardbreak":
                out.append("<br>")
            elif kind == "em_open":
                out.append("<em>")
            elif kind == "em_close":
                out.append("</em>")
            elif kind == "strong_open":
                out.append("<strong>")
            elif kind == "strong_close":
                out.append("</strong>")
            elif kind == "link_open":
                href = str(token.attrs.get("href", ""))
                title = token.attrs.get("title")
                extra = f' title="{attr(str(title))}"' if title else ""
                out.append(f'<a href="{attr(href)}"{extra} style="{style.link}">')
            elif kind == "link_close":
                out.append("</a>")
            else:  # pragma: no cover - every enabled rule is handled above
                out.append(text_html(token.content))
        return "".join(out)

    # --- plain text -------------------------------------------------------------------

    def text(self, source: str, links: Links, memo: Memo | None = None) -> list[str]:
        """Paragraphs of plain text; hard breaks stay newlines, soft ones become spaces."""
        return [self._inline_text(children, links) for children in self._blocks(source, memo)]

    def inline_text(self, source: str, links: Links, memo: Memo | None = None) -> str:
        return self._inline_text(self._inline(source, memo), links)

    def _inline_text(self, children: Sequence[Token], links: Links) -> str:
        """Formatting markers are dropped; a link shows its target as a reader needs it.

        A link written as its own address shows that address (web addresses in angle
        brackets, the plain-text convention); other links get a number, listed at the
        end of the message.
        """
        out: list[str] = []
        href: str | None = None
        label: list[str] = []
        for token in children:
            kind = token.type
            if kind == "link_open":
                href, label = str(token.attrs.get("href", "")), []
            elif kind == "link_close" and href is not None:
                shown = "".join(label)
                if href in (shown, f"mailto:{shown}"):
                    out.append(
                        f"<{shown}>" if token.markup == "autolink" and "://" in href else shown
                    )
                elif href.startswith("mailto:"):
                    out.append(f"{shown} ({href.removeprefix('mailto:')})")
                else:
                    out.append(f"{shown} [{links.number(href)}]")
                href = None
            else:
                piece = (
                    token.content
                    if kind == "text"
                    else "\n"
                    if kind == "hardbreak"
                    else " "
                    if kind == "softbreak"
                    else ""
                )
                (label if href is not None else out).append(piece)
        return "".join(out)


def _plain(source: str) -> Token:
    """What markdown-it makes of text without syntax: one paragraph of one text token."""
    return Token("inline", "", 0, content=source, children=[Token("text", "", 0, content=source)])
