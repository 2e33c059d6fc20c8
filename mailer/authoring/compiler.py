"""MJML -> HTML with mjml-python, the bodies of `<mj-text>` held out of the compiler.

In MJML, `mj-text` is an *ending tag*: its body is raw HTML that the official
compiler copies into the output as it is. mjml-python parses that HTML into a tree
and prints it again, which is two thirds of its time on an issue like the seeds
(the bodies are most of the bytes: paragraphs and statement cards). So each body is
swapped for a short token before compiling and put back verbatim afterwards: the
compiler only lays out the structure, and the body comes out byte for byte as the
template wrote it, as the official compiler would have it.

When the skeleton does not compile, or its output does not hold every token exactly
once and in order (a token written into an attribute by hand, say), the whole
source is compiled the ordinary way instead.
"""

from __future__ import annotations

import re

import mjml

_OPEN_TAG = re.compile(r"""<mj-text(?:\s[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*)?>""")
_CLOSE = "</mj-text>"
_TOKEN = re.compile(r"%%MJTEXT(\d+)%%")
_BETWEEN_TAGS = re.compile(r">[ \t\r]*\n[ \t\r\n]*<")
_LINE_INDENT = re.compile(r"\n[ \t]+")


class CompileError(ValueError):
    """mjml-python refused the source (its errors share no base class)."""


def compile_mjml(source: str) -> str:
    """HTML for `source`, indentation collapsed; raises CompileError."""
    skeleton, bodies = _hold_out(source)
    if bodies:
        try:
            out = _splice(_compile(skeleton), bodies)
        except CompileError:
            out = None  # the full compile below names the problem in the author's terms
        if out is not None:
            return out
    return squeeze(_compile(source))


def squeeze(markup: str) -> str:
    """Drop the indentation the compiler adds. Whitespace between tags is kept as one
    newline (between inline elements it is a word space)."""
    return _LINE_INDENT.sub("\n", _BETWEEN_TAGS.sub(">\n<", markup))


def _compile(source: str) -> str:
    try:
        return str(mjml.mjml2html(source, disable_comments=True))
    except Exception as exc:  # the Rust compiler's errors have no common base class
        raise CompileError(str(exc)) from None


def _hold_out(source: str) -> tuple[str, list[str]]:
    """The source with each `<mj-text ...>body</mj-text>` body replaced by a token.

    The closing tag is found with `str.find`: a lazy `.*?` over 30 KB of MJML costs
    more than the compile.
    Self-closing `<mj-text ... />` (in `mj-attributes`) has no body and is left alone.
    """
    pieces: list[str] = []
    bodies: list[str] = []
    copied = 0  # source[:copied] is in pieces
    for tag in _OPEN_TAG.finditer(source):
        if tag.start() < copied or tag.group().endswith("/>"):
            continue  # inside a body already taken, or self-closing
        close = source.find(_CLOSE, tag.end())
        if close < 0:
            break  # unbalanced: let the compiler report it
        pieces.append(source[copied : tag.end()])
        pieces.append(f"%%MJTEXT{len(bodies)}%%")
        bodies.append(source[tag.end() : close].strip())
        copied = close
    pieces.append(source[copied:])
    return "".join(pieces), bodies


def _splice(compiled: str, bodies: list[str]) -> str | None:
    parts = _TOKEN.split(squeeze(compiled))
    if len(parts) != 2 * len(bodies) + 1:
        return None
    out = [parts[0]]
    for index in range(len(bodies)):
        if parts[2 * index + 1] != str(index):
            return None
        out.append(bodies[index])
        out.append(parts[2 * index + 2])
    return "".join(out)
