"""The line model both readers produce: cleaned lines of text, each knowing where it was.

A plain-text file gives one line per line; a Word document one per paragraph (or per
line break inside one). The layout parser (mailer.authoring.importer.layout) reads
only this model, so the two kinds of file are imported by the same rules.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """One non-empty line: its text (inline Markdown), where it is ("line 12" or
    "paragraph 12", for warnings), how many empty lines stand before it, and whether
    it may continue the line before it (a text file's next line with no empty line
    between; a line break inside a Word paragraph, but never a new paragraph)."""

    text: str
    where: str
    gap: int
    joins: bool


# What the content model refuses (it breaks headers, terminals and the MJML compiler):
# control characters other than tab and line breaks, and Unicode non-characters.
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufdd0-\ufdef\ufffe\uffff]")
# C1 controls: in text they are nearly always Windows-1252 punctuation (curly quotes,
# dashes) read as Latin-1 somewhere on the way; Python's cp1252 codec maps them back.
_C1 = re.compile(r"[\x80-\x9f]")


def clean(text: str, where: str, warnings: list[str]) -> str:
    """One line as the content model accepts it, with a warning for each change that
    is more than whitespace: Windows-1252 punctuation restored, control characters
    removed. Runs of spaces and tabs become one space."""
    if _C1.search(text):
        text = _C1.sub(_cp1252, text)
        warnings.append(
            f"{where}: characters saved as Windows-1252 (curly quotes, dashes) were"
            " restored; check the punctuation of this line"
        )
    found = sorted({f"U+{ord(char):04X}" for char in _REFUSED.findall(text)})
    if found:
        text = _REFUSED.sub("", text)
        warnings.append(f"{where}: removed invisible control characters ({', '.join(found)})")
    return " ".join(text.split())


def _cp1252(match: re.Match[str]) -> str:
    char = match.group()
    try:
        return char.encode("latin-1").decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return ""


def lines_of(texts: list[str], label: str, warnings: list[str]) -> list[Line]:
    """Non-empty cleaned lines from raw ones; `label` ("line", "paragraph") and the
    1-based position name each in warnings."""
    out: list[Line] = []
    gap = 0
    for number, raw in enumerate(texts, start=1):
        text = clean(raw, f"{label} {number}", warnings)
        if not text or not _visible(text):
            gap += 1
            continue
        out.append(Line(text, f"{label} {number}", gap, joins=bool(out) and gap == 0))
        gap = 0
    return out


def _visible(text: str) -> bool:
    """False for lines of only format characters (a stray zero-width space)."""
    return any(unicodedata.category(char) not in ("Cf", "Zs") for char in text)
