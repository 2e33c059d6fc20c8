"""Issue + newsletter profile -> MJML (Jinja2, autoescaped) -> HTML, and a plain-text part.

Rendering happens once per campaign; what differs per recipient (unsubscribe link,
name, address) is left in the output as *slots*: ASCII placeholders that survive
Jinja2 escaping and the MJML compiler byte for byte, so delivery can substitute them
in the encoded message and previews can `fill` them.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    pass_context,
)
from jinja2.runtime import Context
from markupsafe import Markup

from mailer import urls
from mailer.authoring.compiler import CompileError, compile_mjml
from mailer.authoring.content import Issue
from mailer.authoring.loader import ContentError, Problem
from mailer.authoring.markdown import Links, Markdown, Memo, Style, attr
from mailer.authoring.media import MediaStore
from mailer.authoring.profile import Profile, load_profile
from mailer.authoring.slots import Slot as Slot  # re-exported: delivery and previews fill slots
from mailer.errors import UserInputError
from mailer.settings import Settings

TEXT_WIDTH = 78

# Latin, Vietnamese, Chinese, Thai, Khmer, Lao and Burmese on Windows, macOS, Android
# and Linux. Unquoted family names are valid CSS and keep `"` out of attributes.
FONT_STACK = (
    "Arial, Helvetica, Noto Sans, Noto Sans SC, Noto Sans Thai, Noto Sans Khmer, "
    "Noto Sans Lao, Noto Sans Myanmar, Microsoft YaHei, PingFang SC, Leelawadee UI, "
    "Khmer UI, Lao UI, Myanmar Text, sans-serif"
)

# Display widths in px (photos are stored at twice these).
PORTRAIT_WIDTH = 56
IMAGE_WIDTH = 544


def fill(rendered_text: str, values: Mapping[Slot, str], *, html: bool) -> str:
    """Replace slots with values (HTML-escaped when `html`); slots not given stay as they are."""
    out = rendered_text
    for slot, value in values.items():
        out = out.replace(slot.value, _escape(value) if html else value)
    return out


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def sample_values(base_url: str, view_url: str) -> Mapping[Slot, str]:
    """What previews and test files show where each recipient's own values will go."""
    return {
        Slot.UNSUBSCRIBE_URL: urls.unsubscribe(base_url, "preview"),
        Slot.PREFERENCES_URL: urls.preferences(base_url, "preview"),
        Slot.VIEW_URL: view_url,
        Slot.NAME: "Preview Reader",
        Slot.EMAIL: "reader@example.org",
    }


def with_sample_values(rendered: RenderedIssue, base_url: str, view_url: str) -> RenderedIssue:
    """The parts as files for a person to open show them (`mailer render`, the demo):
    sample values where each recipient's own will go, never a bare `%%NAME%%`."""
    values = sample_values(base_url, view_url)
    return replace(
        rendered,
        html=fill(rendered.html, values, html=True),
        text=fill(rendered.text, values, html=False),
    )


# What only the email shows (its recipient's lines and links, "view in browser"), as
# the templates mark it with two empty elements:
# <span data-email-only="NAME"></span>...<span data-email-only-end="NAME"></span>.
# Mail clients show nothing of them, and unlike comments (which mjml-python drops when
# mailer.authoring.compiler falls back to compiling the whole source) they survive either path.
_EMAIL_ONLY = re.compile(
    r'<span data-email-only="([a-z-]+)"></span>.*?<span data-email-only-end="\1"></span>',
    re.DOTALL,
)


def web_copy(rendered_html: str, web_parts: Mapping[str, str]) -> str | None:
    """The email's HTML as a web page: each email-only part replaced by `web_parts[NAME]`
    (markup, inserted as it is; nothing for a name not given). None when the HTML marks
    no part (rendered before the marks existed, or from a template without them)."""
    page, found = _EMAIL_ONLY.subn(lambda part: web_parts.get(part.group(1), ""), rendered_html)
    return page if found else None


class TemplateProblem(UserInputError):
    """A template (edited by a person) is broken; the message names file and line."""


@contextmanager
def _template_errors() -> Iterator[None]:
    try:
        yield
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
    except TemplateNotFound as exc:
        raise TemplateProblem(f"template not found: {exc.name}") from None
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None


@dataclass(frozen=True)
class RenderedIssue:
    """What an issue looks like as email, before per-recipient substitution."""

    subject: str
    preheader: str
    html: str
    text: str
    language: str


@dataclass(frozen=True)
class _Frame:
    """The two things the email frame (`base.mjml.j2`) reads of an issue."""

    language: str
    preheader: str


class Renderer:
    """Built once (templates, profile, Markdown parser); renders any number of issues."""

    def __init__(self, templates_dir: Path, profile: Profile, media: MediaStore) -> None:
        self.profile = profile
        self.media = media
        self.templates_dir = templates_dir
        self._md = Markdown()
        self._style = Style(link=f"color:{profile.colours.link};text-decoration:underline")
        loader = FileSystemLoader(str(templates_dir))
        self._mjml_env = Environment(
            loader=loader,
            autoescape=True,
            undefined=StrictUndefined,
            auto_reload=True,
            finalize=_no_backslash,
        )
        self._text_env = Environment(
            loader=loader,
            autoescape=False,  # noqa: S701 - plain text, never parsed as HTML
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=True,
        )
        self._mjml_env.filters.update(
            attr=lambda value: Markup(attr(str(value))),  # noqa: S704 - escaped by attr()
            md=_html_md(self._md, self._style),
            md_inline=_html_md_inline(self._md, self._style),
            initials=initials,
        )
        self._text_env.filters.update(md=_text_md(self._md), md_inline=_text_md_inline(self._md))
        self._text_env.filters["wrap"] = wrap

    @classmethod
    def from_settings(cls, settings: Settings) -> Renderer:
        return cls(
            settings.templates_dir,
            load_profile(settings.profile_path),
            MediaStore(settings.resolved_media_dir, settings.public_base_url),
        )

    # --- public API -----------------------------------------------------------------

    def render(self, issue: Issue) -> RenderedIssue:
        """Both parts of the email; raises ContentError/MediaError on bad content."""
        memo: Memo = {}  # each text field is parsed once for both parts
        return RenderedIssue(
            subject=self.subject(issue),
            preheader=issue.preheader,
            html=self.html(self.mjml(issue, memo)),
            text=self.text(issue, memo),
            language=issue.language,
        )

    def subject(self, issue: Issue) -> str:
        return " ".join((issue.subject or issue.title).split())

    def mjml(self, issue: Issue, memo: Memo | None = None) -> str:
        """The MJML source (for debugging and for comparing MJML compilers)."""
        context = self._context(
            issue, photo_url=self._photo_url(issue), logo_url=self._logo_url(), md_memo=memo
        )
        with _template_errors():
            return self._mjml_env.get_template("issue.mjml.j2").render(context)

    @staticmethod
    def html(mjml_source: str) -> str:
        """Compile MJML (see `mailer.authoring.compiler`); indentation collapsed."""
        try:
            return compile_mjml(mjml_source)
        except CompileError as exc:
            raise TemplateProblem(f"the MJML compiler refused the template output: {exc}") from None

    def text(self, issue: Issue, memo: Memo | None = None) -> str:
        context = self._context(issue, links=Links(), md_memo=memo)
        with _template_errors():
            raw = self._text_env.get_template("issue.txt.j2").render(context)
        lines = [line.rstrip() for line in raw.splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"

    def render_notice(
        self, name: str, *, subject: str, preheader: str, language: str, **values: Any
    ) -> RenderedIssue:
        """A service email (a sign-up confirmation) from `name.mjml.j2` and `name.txt.j2`,
        in the same frame, profile and compiler as an issue; `values` go to both."""
        context = {
            "issue": _Frame(language, preheader),  # what base.mjml.j2 reads of an issue
            "profile": self.profile,
            "colours": self.profile.colours,
            "labels": self.profile.labels,
            "fonts": FONT_STACK,
            "subject": subject,
            "logo_url": self._logo_url(),
            **values,
        }
        with _template_errors():
            mjml = self._mjml_env.get_template(f"{name}.mjml.j2").render(context)
            raw = self._text_env.get_template(f"{name}.txt.j2").render(context)
        lines = [line.rstrip() for line in raw.splitlines()]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
        return RenderedIssue(subject, preheader, self.html(mjml), text, language)

    # --- helpers ----------------------------------------------------------------------

    def _context(self, issue: Issue, **extra: Any) -> dict[str, Any]:
        profile = self.profile
        if issue.newsletter != profile.id:
            raise ContentError(
                [
                    Problem(
                        issue.name,
                        issue.line_of("newsletter"),
                        "newsletter",
                        f"unknown newsletter {issue.newsletter!r}; this profile is {profile.id!r}",
                    )
                ]
            )
        labels = profile.labels
        return {
            "issue": issue,
            "profile": profile,
            "colours": profile.colours,
            "labels": labels,
            "fonts": FONT_STACK,
            "subject": self.subject(issue),
            "issue_label": labels.issue.format(number=issue.number, year=issue.year),
            "date_label": labels.date.format(
                month=labels.months[issue.date.month - 1],
                day=issue.date.day,
                year=issue.date.year,
            ),
            "contact": issue.contact if issue.contact is not None else profile.contact,
            "about": issue.about if issue.about is not None else profile.about,
            "sent_to": labels.sent_to.format(name=Slot.NAME.value, email=Slot.EMAIL.value),
            "slot": {slot.name: slot.value for slot in Slot},
            "portrait_width": PORTRAIT_WIDTH,
            "image_width": IMAGE_WIDTH,
            **extra,
        }

    def _logo_url(self) -> str:
        logo = self.profile.logo
        if logo is None:
            return ""
        local = self.profile.resolve(logo.src)
        return logo.src if local is None else self.media.publish(local, logo.width)

    def _photo_url(self, issue: Issue) -> Callable[[str, int], str]:
        def photo_url(src: str, width: int) -> str:
            local = issue.resolve(src) or self.media.local_copy(src)  # or an upload's URL
            return src if local is None else self.media.publish(local, width)

        return photo_url


# --- template filters -------------------------------------------------------------------


def _no_backslash(value: Any) -> Any:
    """Plain text printed into MJML (title, preheader...) as `&#92;` for a backslash, like
    Markdown fields: a `\\u{` in the HTML is then always the compiler's, never an editor's."""
    if isinstance(value, str) and not isinstance(value, Markup) and "\\" in value:
        return Markup(html.escape(value, quote=True).replace("\\", "&#92;"))  # noqa: S704
    return value


_HONORIFICS = re.compile(r"^(mr|mrs|ms|miss|dr|prof|h\.?e)\.?\s+", re.IGNORECASE)


def initials(name: str) -> str:
    """A monogram for a card without a photo: "Mr. ZHOU Jun" -> "ZJ", "李霞" -> "李"."""
    words = _HONORIFICS.sub("", name.strip()).split() or [name.strip() or "?"]
    if not unicodedata.name(words[0][0], "").startswith("LATIN"):
        # One letter reads best in Chinese and the Southeast Asian scripts.
        return _first_grapheme(words[0])
    picked = words[:1] if len(words) == 1 else [words[0], words[-1]]
    return "".join(_first_grapheme(word) for word in picked).upper()


_LEADING_VOWELS = set("\u0e40\u0e41\u0e42\u0e43\u0e44\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4")


def _first_grapheme(word: str) -> str:
    """The first letter with its combining marks (Thai, Khmer, Lao, Burmese vowels).

    Thai and Lao write some vowels before the consonant they follow in speech; a
    monogram shows the consonant.
    """
    word = word.lstrip("".join(_LEADING_VOWELS)) or word
    out = word[:1]
    for char in word[1:]:
        if unicodedata.category(char) in ("Mn", "Mc") or char in "\u200c\u200d\u17d2\u1039":
            out += char
        else:
            break
    return out


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "") -> str:
    """Wrap each line at `width` columns; never split words, URLs, slots or hyphenations.

    Greedy, like textwrap with break_long_words and break_on_hyphens off, but several
    times faster; runs of spaces inside a line become one. Chinese characters count
    two columns and a line may break between them (not before closing punctuation).
    """
    out: list[str] = []
    for line in str(text).split("\n"):
        tokens = _tokens(line)
        if not tokens:
            out.append("")
            continue
        current, used = indent + tokens[0][1], len(indent) + tokens[0][2]
        for joiner, piece, piece_width in tokens[1:]:
            if used + len(joiner) + piece_width <= width:
                current += joiner + piece
                used += len(joiner) + piece_width
            else:
                out.append(current)
                current, used = indent + piece, len(indent) + piece_width
        out.append(current)
    return "\n".join(out)


_CLOSING = set("，。、；：？！）」』】》〉’”,.;:?!)")


def _tokens(line: str) -> list[tuple[str, str, int]]:
    """(joiner before, text, display width) for each unbreakable piece of a line.

    Space-separated words are pieces; inside a word, each wide (Chinese) character is
    a piece of its own, and closing punctuation sticks to the piece before it.
    """
    tokens: list[tuple[str, str, int]] = []
    for word in line.split():
        if word.isascii():
            tokens.append((" ", word, len(word)))
            continue
        joiner = " "
        for char in word:
            wide = _is_wide(char)
            glue = joiner == "" and (char in _CLOSING or not (wide or _is_wide(tokens[-1][1][-1])))
            if glue:
                before, piece, piece_width = tokens[-1]
                tokens[-1] = (before, piece + char, piece_width + (2 if wide else 1))
            else:
                tokens.append((joiner, char, 2 if wide else 1))
            joiner = ""
    if tokens:
        tokens[0] = ("", tokens[0][1], tokens[0][2])
    return tokens


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _html_md(md: Markdown, style: Style) -> Callable[..., Markup]:
    @pass_context
    def render(context: Context, source: str) -> Markup:
        return Markup(md.html(str(source), style, context["md_memo"]))  # noqa: S704 - escaped

    return render


def _html_md_inline(md: Markdown, style: Style) -> Callable[..., Markup]:
    @pass_context
    def render(context: Context, source: str) -> Markup:
        return Markup(md.inline_html(str(source), style, context["md_memo"]))  # noqa: S704

    return render


def _text_md(md: Markdown) -> Callable[..., str]:
    @pass_context
    def render(context: Context, source: str, indent: str = "") -> str:
        paragraphs = md.text(str(source), context["links"], context["md_memo"])
        return "\n\n".join(wrap(p, indent=indent) for p in paragraphs)

    return render


def _text_md_inline(md: Markdown) -> Callable[..., str]:
    @pass_context
    def render(context: Context, source: str) -> str:
        return md.inline_text(str(source), context["links"], context["md_memo"])

    return render
