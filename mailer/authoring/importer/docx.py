"""A Word document (.docx) as lines, read with python-docx.

Each paragraph is a line (a line break inside a paragraph starts another line of the
same paragraph, which may continue the one before, as lines do in a text file); empty
paragraphs are the empty lines of a text file, and tables are
read cell by cell. Italic runs become `*...*`, bold runs `**...**` and hyperlinks
Markdown links, so that the layout parser reads a Word document as it reads the
same issue in plain text. Characters that Markdown would take as formatting (`*`,
`_`, `\\`) are escaped: in a Word document only the formatting formats.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from docx import Document
from docx.table import Table
from docx.text.hyperlink import Hyperlink
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from mailer.authoring.importer.lines import Line, clean
from mailer.authoring.importer.refusal import ImportRefused

# The largest unpacked document: a zip of a few MB may unpack to gigabytes of XML.
MAX_UNPACKED_BYTES = 50_000_000


@dataclass(frozen=True)
class _Piece:
    """Text with one formatting: bold, italic, or a link target."""

    text: str
    bold: bool = False
    italic: bool = False
    link: str | None = None


def read_docx_lines(data: bytes, name: str, warnings: list[str]) -> list[Line]:
    """The lines of a .docx; a file that is not one (or unpacks too large) is refused."""
    _check_package(data, name)
    try:
        document = Document(io.BytesIO(data))
        paragraphs = list(_paragraphs(document.iter_inner_content()))
    except Exception as exc:  # python-docx raises many kinds for a damaged file
        raise ImportRefused(
            name, f"not a Word document (.docx) that can be read ({type(exc).__name__})"
        ) from None
    lines: list[Line] = []
    gap = 0
    for number, paragraph in enumerate(paragraphs, start=1):
        where = f"paragraph {number}"
        texts = [clean(text, where, warnings) for text in _markdown_lines(paragraph)]
        texts = [text for text in texts if text]
        if not texts:
            gap += 1
            continue
        for index, text in enumerate(texts):
            lines.append(Line(text, where, gap if index == 0 else 0, joins=index > 0))
        gap = 0
    return lines


def _check_package(data: bytes, name: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unpacked = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportRefused(
            name, "not a Word document (.docx): the file is damaged or of another kind"
        ) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ImportRefused(
            name,
            f"the document unpacks to more than {MAX_UNPACKED_BYTES // 1_000_000} MB;"
            " an issue's text is much smaller",
        )


def _paragraphs(content: Iterator[Paragraph | Table]) -> Iterator[Paragraph]:
    """Paragraphs in reading order, those of tables cell by cell (merged cells once)."""
    for item in content:
        if isinstance(item, Paragraph):
            yield item
            continue
        seen: set[int] = set()
        for row in item.rows:
            for cell in row.cells:
                if id(cell._tc) in seen:
                    continue
                seen.add(id(cell._tc))
                yield from _paragraphs(cell.iter_inner_content())


def _pieces(paragraph: Paragraph) -> list[_Piece]:
    pieces: list[_Piece] = []
    for item in paragraph.iter_inner_content():
        if isinstance(item, Run):
            pieces.append(_Piece(item.text, item.bold is True, item.italic is True))
        elif isinstance(item, Hyperlink):
            url = item.url
            link = url if re.match(r"(?i)^(https?://|mailto:)", url) else None
            pieces.append(_Piece(item.text, link=link))
    merged: list[_Piece] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        same = last and (last.bold, last.italic, last.link) == (
            piece.bold,
            piece.italic,
            piece.link,
        )
        if last and (same or (piece.text.isspace() and not last.link)):  # spaces show no format
            merged[-1] = _Piece(last.text + piece.text, last.bold, last.italic, last.link)
        elif piece.text:
            merged.append(piece)
    return merged


def _markdown_lines(paragraph: Paragraph) -> list[str]:
    """The paragraph's lines (split at line breaks) as inline Markdown. Formatting that
    goes on over a line break is one span (`**two\nlines**`), as in a text file."""
    return "".join(_markdown(piece) for piece in _pieces(paragraph)).split("\n")


_SPECIAL = re.compile(r"([\\*_])")


def _markdown(piece: _Piece) -> str:
    text = _SPECIAL.sub(r"\\\1", piece.text)
    if piece.link:
        bare = piece.link.removeprefix("mailto:")
        if piece.text.strip() in (piece.link, bare):
            return f"<{bare}>" if "://" in piece.link or "@" in bare else text
        label = re.sub(r"([\[\]])", r"\\\1", text)
        return f"[{label}]({piece.link})"
    marker = "***" if piece.bold and piece.italic else "**" if piece.bold else "*"
    core = text.strip()
    if not (piece.bold or piece.italic) or not core:
        return text
    start = text[: len(text) - len(text.lstrip())]
    end = text[len(text.rstrip()) :]
    return f"{start}{marker}{core}{marker}{end}"
