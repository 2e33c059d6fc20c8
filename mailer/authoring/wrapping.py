"""Wrapping the plain-text part at 78 display columns, for every script the newsletter uses.

Latin and Vietnamese break at spaces only (never inside a word, a URL, a slot or after
a hyphen). Thai, Khmer, Lao and Burmese write no spaces between words, and Chinese
none between characters: inside such text a line breaks only where ICU's line-break
rules (with its dictionaries for the scripts without spaces) allow it, and for the
Southeast Asian scripts only where ICU's word iterator also sees a word end, so a
word, and with it a grapheme cluster (a consonant with its vowel signs and tone
marks), is never split. Text in the other scripts never reaches ICU, which keeps
wrapping fast.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from itertools import accumulate

import icu

TEXT_WIDTH = 78

_SLOT = re.compile(r"%%[A-Z_]+%%")
_WHOLE = re.compile(r"://|^www\.|@")  # links and addresses stay whole, in any script
_NO_BREAK_AFTER = frozenset("-\u2010\u2011/\\")  # break_on_hyphens off, paths stay whole
_ZERO_WIDTH = frozenset(("Mn", "Me", "Cf"))
# Line-break class SA ("complex context"): the scripts ICU breaks with a dictionary.
_COMPLEX_CONTEXT = int(icu.Char.getPropertyValueEnum(icu.UProperty.LINE_BREAK, "SA"))


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", locale: str = "") -> str:
    """Wrap each line of `text` at `width` display columns; never split a word.

    Greedy, like textwrap with break_long_words and break_on_hyphens off; runs of
    spaces inside a line become one. A piece longer than the line stays whole on a
    line of its own. `locale` (the issue's language, e.g. "th") picks ICU's rules.
    """
    out: list[str] = []
    indent_width = display_width(indent)
    for line in str(text).split("\n"):
        tokens = _tokens(line, locale)
        if not tokens:
            out.append("")
            continue
        current, used = indent + tokens[0][1], indent_width + tokens[0][2]
        for joiner, piece, piece_width in tokens[1:]:
            if used + len(joiner) + piece_width <= width:
                current += joiner + piece
                used += len(joiner) + piece_width
            else:
                out.append(current)
                current, used = indent + piece, indent_width + piece_width
        out.append(current)
    return "\n".join(out)


def display_width(text: str) -> int:
    """Columns `text` takes in a monospaced mail reader: East Asian wide and full-width
    characters two, non-spacing and enclosing marks and format characters (zero-width
    joiners, soft hyphens) none, every other character one."""
    if text.isascii():
        return len(text)
    return sum(map(_char_width, text))


def _tokens(line: str, locale: str) -> list[tuple[str, str, int]]:
    """(joiner before, text, display width) for each unbreakable piece of a line."""
    tokens: list[tuple[str, str, int]] = []
    for word in line.split():
        if word.isascii():
            tokens.append((" ", word, len(word)))
            continue
        kinds = list(map(_char_kind, word))
        if not any(kinds) or _WHOLE.search(word):
            tokens.append((" ", word, display_width(word)))
            continue
        joiner = " "
        for piece, width in _pieces(word, kinds, locale):
            tokens.append((joiner, piece, width))
            joiner = ""
    if tokens:
        tokens[0] = ("", tokens[0][1], tokens[0][2])
    return tokens


_WIDE, _COMPLEX = 1, 2  # kinds of characters a line may break next to without a space


@lru_cache(maxsize=8192)
def _char_kind(char: str) -> int:
    """Whether a line may break next to `char` with no space: ideographs, kana and
    the like (East Asian wide), and the scripts ICU breaks with a dictionary
    (line-break class SA: Thai, Lao, Khmer, Burmese...); 0 for any other."""
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return _WIDE
    line_break = int(icu.Char.getIntPropertyValue(char, icu.UProperty.LINE_BREAK))
    return _COMPLEX if line_break == _COMPLEX_CONTEXT else 0


@lru_cache(maxsize=8192)
def _char_width(char: str) -> int:
    if unicodedata.category(char) in _ZERO_WIDTH:
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _pieces(word: str, kinds: list[int], locale: str) -> list[tuple[str, int]]:
    """`word` (no spaces) cut where a line may break inside it, with each piece's width.

    A cut must be an ICU line-break opportunity next to a character that breaks
    without spaces; next to Thai, Khmer, Lao or Burmese it must also be an ICU
    word boundary; never after a hyphen or slash, nor inside a slot.
    """
    lines, words = _iterators(locale)
    lines.setText(word)
    offsets = _utf16_to_index(word)  # ICU counts UTF-16 code units, Python code points
    line_breaks = [int(b) for b in lines]
    if offsets is not None:
        line_breaks = [offsets[unit] for unit in line_breaks]
    word_breaks: set[int] | None = None
    slots = [match.span() for match in _SLOT.finditer(word)] if "%%" in word else []
    columns = list(accumulate(map(_char_width, word), initial=0))
    pieces: list[tuple[str, int]] = []
    start = 0
    end = len(word)
    for cut in line_breaks:
        if cut <= start or cut >= end or word[cut - 1] in _NO_BREAK_AFTER:
            continue
        kind = kinds[cut - 1] | kinds[cut]
        if not kind or (slots and any(low < cut < high for low, high in slots)):
            continue
        if kind & _COMPLEX:
            if word_breaks is None:
                words.setText(word)
                word_breaks = {int(b) for b in words}
                if offsets is not None:
                    word_breaks = {offsets[unit] for unit in word_breaks}
            if cut not in word_breaks:
                continue
        pieces.append((word[start:cut], columns[cut] - columns[start]))
        start = cut
    pieces.append((word[start:], columns[end] - columns[start]))
    return pieces


def _utf16_to_index(text: str) -> list[int] | None:
    """Code-point index for each UTF-16 offset, or None when they are the same (no
    character outside the Basic Multilingual Plane)."""
    if max(text) < "\U00010000":
        return None
    offsets: list[int] = []
    for index, char in enumerate(text):
        offsets.extend([index] * (2 if ord(char) >= 0x10000 else 1))
    offsets.append(len(text))
    return offsets


class _Iterators(threading.local):
    """ICU break iterators are stateful and slow to create: one pair per locale and thread."""

    def __init__(self) -> None:
        self.by_locale: dict[str, tuple[icu.BreakIterator, icu.BreakIterator]] = {}


_ITERATORS = _Iterators()


def _iterators(locale: str) -> tuple[icu.BreakIterator, icu.BreakIterator]:
    """The (line, word) break iterators for `locale` in this thread."""
    found = _ITERATORS.by_locale.get(locale)
    if found is None:
        where = icu.Locale(locale.replace("-", "_")) if locale else icu.Locale.getRoot()
        found = (
            icu.BreakIterator.createLineInstance(where),
            icu.BreakIterator.createWordInstance(where),
        )
        _ITERATORS.by_locale[locale] = found
    return found


def grapheme_boundaries(text: str) -> list[int]:
    """Indexes in `text` where a grapheme cluster (a user-perceived character) starts
    or ends, from 0 to len(text), by ICU's character break iterator."""
    if not text:
        return [0]
    iterator = _grapheme_iterator()
    iterator.setText(text)
    offsets = _utf16_to_index(text)
    out = [0]
    out.extend(offsets[int(b)] if offsets else int(b) for b in iterator)
    return out


class _Graphemes(threading.local):
    def __init__(self) -> None:
        self.iterator: icu.BreakIterator | None = None


_GRAPHEMES = _Graphemes()


def _grapheme_iterator() -> icu.BreakIterator:
    if _GRAPHEMES.iterator is None:
        _GRAPHEMES.iterator = icu.BreakIterator.createCharacterInstance(icu.Locale.getRoot())
    return _GRAPHEMES.iterator
