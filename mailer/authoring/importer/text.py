"""Plain text (.txt) as lines: UTF-8 only, any line ends (LF, CRLF, CR)."""

from __future__ import annotations

import re

from mailer.authoring.importer.lines import Line, lines_of
from mailer.authoring.importer.refusal import ImportRefused
from mailer.authoring.loader import ContentError, decode_text

# Only these end a line: the numbers in warnings must be the ones an editor's text
# editor shows (str.splitlines would also split at form feeds and U+2028).
_LINE_END = re.compile(r"\r\n|\r|\n")


def read_text_lines(data: bytes, name: str, warnings: list[str]) -> list[Line]:
    """The lines of a UTF-8 text file (a byte order mark is allowed); other encodings
    are refused, naming the line of the first byte that is not UTF-8."""
    try:
        text = decode_text(data, name)
    except ContentError as exc:
        problem = exc.problems[0]
        raise ImportRefused(name, problem.message, problem.line) from None
    return lines_of(_LINE_END.split(text), "line", warnings)
