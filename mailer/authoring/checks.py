"""Lints an issue before it is sent: what would break or look wrong in a mail client.

Validation (mailer.authoring.content) says whether a file is an issue at all; these checks say
whether the email made from it is fit to send: size under Gmail's clipping limit,
alt text on every image, absolute links, images that exist, no escape sequences
leaked by the MJML compiler, text colours of the profile readable on their
backgrounds. Errors block sending; warnings are advice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mailer.authoring.content import ImageBlock, Issue, StatementBlock
from mailer.authoring.loader import ContentError
from mailer.authoring.media import too_large
from mailer.authoring.profile import Colours
from mailer.authoring.render import RenderedIssue, Renderer, Slot
from mailer.authoring.variants import check_variants
from mailer.errors import UserInputError

MAX_HTML_BYTES = 90 * 1024  # Gmail clips messages over about 102 KB
WARN_HTML_BYTES = 75 * 1024
MAX_PREHEADER = 150
MAX_SUBJECT = 150
_LINK = re.compile(r"^(https?://[^\s/?#]+[^\s]*|mailto:[^\s@]+@[^\s@]+)$", re.IGNORECASE)
_SLOTS = {slot.value for slot in Slot}
MIN_CONTRAST = 4.5  # WCAG 2.1 AA (1.4.3) for text under 24 px, or 18.7 px bold
WHITE = "#ffffff"
# Where the templates set a colour of the profile as text, and on what: (text colour,
# background, where). "white" is the fixed #ffffff of the body and of text on the band.
TEXT_ON_BACKGROUND = (
    ("text", "white", "title and paragraphs"),
    ("text", "card", "statement cards and the contact block"),
    ("muted", "white", "date line and image captions"),
    ("muted", "card", "role lines and the About text"),
    ("muted", "background", "the footer and the browser link above the masthead"),
    ("accent", "white", "the subtitle"),
    ("accent", "card", "the country line on statement cards"),
    ("link", "white", "links in paragraphs"),
    ("link", "card", "links on statement cards and in the contact block"),
    ("primary", "white", "headings and the issue label"),
    ("primary", "card", "the contact block's label"),
    ("white", "primary", "masthead names, buttons and monograms"),
)


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One result of a check; `field` and `line` point into the content file when known."""

    level: Level
    code: str
    message: str
    field: str = ""
    line: int | None = None

    def format(self, file: str) -> str:
        """One line: "file:line: field: level: message [code]", like content problems."""
        where = f"{file}:{self.line}" if self.line else file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.level}: {self.message} [{self.code}]"

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.level}: {field}{self.message} [{self.code}]"


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level is Level.ERROR for f in findings)


def check_issue(issue: Issue, renderer: Renderer) -> list[Finding]:
    """Every finding for a loaded issue: its images and fields, then the rendered email."""
    findings = check_images(issue) + check_fields(issue) + check_colours(renderer.profile.colours)
    if has_errors(findings):
        return findings  # rendering would fail on the same missing image
    try:
        rendered = renderer.render(issue)
    except ContentError as exc:  # already located in the file: keep line and field
        return findings + [
            Finding(Level.ERROR, "render", p.message, p.field, p.line) for p in exc.problems
        ]
    except UserInputError as exc:
        return [*findings, Finding(Level.ERROR, "render", str(exc))]
    return findings + check_rendered(rendered)


def check_variant_files(path: Path) -> list[Finding]:
    """What the file disagrees on with the other language variants of its issue (see
    `mailer.authoring.variants`): errors for number, year, date, newsletter or a
    language claimed twice; warnings for statements missing from one of them."""
    return [
        Finding(Level.ERROR if d.error else Level.WARNING, "variants", d.message, d.field, d.line)
        for d in check_variants(path)
    ]


def check_images(issue: Issue) -> list[Finding]:
    """Local photos and images exist and are images (https ones are not fetched)."""
    findings: list[Finding] = []
    for index, block in enumerate(issue.blocks):
        sources: list[tuple[str, str]] = []
        if isinstance(block, StatementBlock) and block.statement.photo:
            sources.append((f"blocks[{index}].statement.photo", block.statement.photo))
        if isinstance(block, ImageBlock):
            sources.append((f"blocks[{index}].image.src", block.image.src))
        for field, src in sources:
            local = issue.resolve(src)
            if local is None:
                continue
            problem = _image_problem(local)
            if problem:
                findings.append(
                    Finding(Level.ERROR, "image-missing", problem, field, issue.line_of(field))
                )
    return findings


def _image_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"image not found: {path}"
    try:
        with Image.open(path) as image:
            image.load()  # decodes it all: a truncated file fails here, as in rendering
    except (UnidentifiedImageError, OSError) as exc:
        return f"not a readable image: {path} ({exc})"
    except Image.DecompressionBombError as exc:
        return f"{path}: {too_large(exc)}"
    return None


def check_fields(issue: Issue) -> list[Finding]:
    """Advice on fields that validate but read badly in an inbox."""
    findings: list[Finding] = []
    if not issue.preheader:
        findings.append(
            Finding(
                Level.WARNING,
                "preheader",
                "no preheader: inboxes will show the first words of the email instead",
                "preheader",
                issue.line_of("preheader"),
            )
        )
    elif len(issue.preheader) > MAX_PREHEADER:
        findings.append(
            Finding(
                Level.WARNING,
                "preheader",
                f"preheader has {len(issue.preheader)} characters; inboxes show about"
                f" {MAX_PREHEADER}",
                "preheader",
                issue.line_of("preheader"),
            )
        )
    subject = issue.subject or issue.title
    if len(subject) > MAX_SUBJECT:
        field = "subject" if issue.subject else "title"
        findings.append(
            Finding(
                Level.WARNING,
                "subject",
                f"subject has {len(subject)} characters; set a shorter `subject:`",
                field,
                issue.line_of(field),
            )
        )
    for field, text in _texts(issue.model_dump(exclude_none=True)):
        for slot in sorted(slot for slot in _SLOTS if slot in text):
            findings.append(
                Finding(
                    Level.WARNING,
                    "slot",
                    f"{slot} is replaced with each recipient's own value when sending;"
                    " if it is meant as text, write it differently",
                    field,
                    issue.line_of(field),
                )
            )
    if issue.date.year not in (issue.year, issue.year + 1):
        findings.append(
            Finding(
                Level.WARNING,
                "date",
                f"date {issue.date} is not in the issue's year {issue.year}",
                "date",
                issue.line_of("date"),
            )
        )
    return findings


def _texts(node: object, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) for every string of a dumped issue: "blocks[1].statement.name"."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _texts(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _texts(value, f"{path}[{index}]")


def relative_luminance(colour: str) -> float:
    """WCAG 2.1's relative luminance of a "#rrggbb" colour (0 black to 1 white)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.1's contrast ratio of two colours, from 1 (same) to 21 (black on white)."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def check_colours(colours: Colours) -> list[Finding]:
    """A warning for each text colour of the profile that is hard to read where it is used.

    One finding per text colour, naming its worst background. The smallest text set in a
    profile colour is 11 px, so 4.5:1 applies everywhere (axe-core checks the same).
    """
    palette = {**colours.model_dump(), "white": WHITE}
    worst: dict[str, tuple[float, str, str]] = {}
    for fg, bg, where in TEXT_ON_BACKGROUND:
        ratio = contrast_ratio(palette[fg], palette[bg])
        if ratio < MIN_CONTRAST and (fg not in worst or ratio < worst[fg][0]):
            worst[fg] = (ratio, bg, where)
    findings = []
    for fg, (ratio, bg, where) in worst.items():
        name = {"white": f"white ({WHITE})"}
        shown, on = (name.get(c, f"colours.{c} {palette[c]}") for c in (fg, bg))
        change = "colours.primary" if fg == "white" else f"colours.{fg}"
        findings.append(
            Finding(
                Level.WARNING,
                "contrast",
                f"newsletter profile: text in {shown} on {on} ({where}) has a contrast of"
                f" {ratio:.2f}:1, below the {MIN_CONTRAST}:1 that WCAG 2.1 AA asks for;"
                f" change {change} in the profile",
            )
        )
    return findings


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values)
        elif tag == "a" and values.get("href") is not None:
            self.links.append(values["href"] or "")


def check_rendered(rendered: RenderedIssue) -> list[Finding]:
    """Checks on the HTML as mail clients will receive it."""
    findings: list[Finding] = []
    markup = rendered.html
    size = len(markup.encode("utf-8"))
    if size >= MAX_HTML_BYTES:
        findings.append(
            Finding(
                Level.ERROR,
                "html-size",
                f"HTML is {size / 1024:.1f} KB; Gmail clips messages over about 102 KB,"
                f" keep it under {MAX_HTML_BYTES // 1024} KB (split the issue or shorten it)",
            )
        )
    elif size >= WARN_HTML_BYTES:
        findings.append(
            Finding(
                Level.WARNING,
                "html-size",
                f"HTML is {size / 1024:.1f} KB, close to the {MAX_HTML_BYTES // 1024} KB limit",
            )
        )
    for leak in ("\\u{", '\\"'):
        if leak in markup:
            findings.append(
                Finding(
                    Level.ERROR,
                    "mjml-escape",
                    f"the MJML compiler leaked {leak!r} into the HTML (a template attribute"
                    " is missing the |attr filter)",
                )
            )
    scan = _Scan()
    scan.feed(markup)
    for image in scan.images:
        src = image.get("src") or ""
        if not (image.get("alt") or "").strip():
            findings.append(Finding(Level.ERROR, "alt-text", f"image without alt text: {src}"))
        if not src.lower().startswith(("https://", "http://")):
            findings.append(
                Finding(Level.ERROR, "image-src", f"image address is not absolute: {src!r}")
            )
    for href in scan.links:
        if href in _SLOTS:
            continue
        if not _LINK.match(href):
            findings.append(
                Finding(
                    Level.ERROR,
                    "link",
                    f"link is not an absolute http(s) or mailto address: {href!r}",
                )
            )
    return findings
