"""What changed between two versions of a draft, in an editor's words.

Not a text diff of JSON: a list of changes an editor reads on the history page,
"Block 4 (statement, Mr. ZHOU Jun): text changed", with the old and the new text.
Blocks are matched across the two versions (same content first, then the same
statement name, image or button, then the same type in order), so a block that
was edited reads as changed, not as removed and added, and a block that changed
place reads as moved.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The issue's own fields in the order the editor shows them.
TOP_FIELDS = (
    "newsletter",
    "number",
    "year",
    "date",
    "language",
    "title",
    "subtitle",
    "subject",
    "preheader",
    "contact",
    "about",
)

# Each block type's fields, in the order the editor shows them.
BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "paragraph": ("paragraph",),
    "heading": ("heading",),
    "statement": ("name", "roles", "country", "photo", "photo_alt", "text"),
    "image": ("src", "alt", "caption", "link"),
    "button": ("label", "url"),
    "divider": (),
}

ADDED = "added"
REMOVED = "removed"
MOVED = "moved"
CHANGED = "changed"


@dataclass(frozen=True)
class Change:
    """One change. `block` is the 1-based position of the block in the new version
    (in the old one for a removed block), None for the issue's own fields; `old` and
    `new` are the texts before and after ("" where there was none)."""

    kind: str  # added, removed, moved, changed
    field: str  # the field that changed ("" for a whole block)
    old: str = ""
    new: str = ""
    block: int | None = None
    block_type: str = ""
    name: str = ""  # a statement's name, an image's alt text, a button's label
    old_position: int | None = None  # where a moved block was

    @property
    def where(self) -> str:
        """ "Title", "Block 4 (statement, Mr. ZHOU Jun)"."""
        if self.block is None:
            return self.field.capitalize() if self.field else "The issue"
        label = f"{self.block_type}, {self.name}" if self.name else self.block_type
        return f"Block {self.block} ({label})"

    @property
    def old_parts(self) -> list[tuple[str, bool]]:
        """The old text as (piece, removed) pieces: what the history page strikes out."""
        return words(self.old, self.new)[0]

    @property
    def new_parts(self) -> list[tuple[str, bool]]:
        """The new text as (piece, added) pieces: what the history page marks as new."""
        return words(self.old, self.new)[1]

    def __str__(self) -> str:
        if self.kind == MOVED:
            return f"{self.where}: moved from position {self.old_position}"
        if self.kind in (ADDED, REMOVED):
            return f"{self.where}: {self.kind}"
        if self.block is None:
            return f"{self.where}: changed from {self.old!r} to {self.new!r}"
        return f"{self.where}: {self.field} changed from {self.old!r} to {self.new!r}"


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The changes from `old` to `new`: the issue's fields, then the blocks in the
    new order (removed blocks last)."""
    changes = [
        Change(CHANGED, field, _text(old.get(field)), _text(new.get(field)))
        for field in _fields(old, new)
        if _text(old.get(field)) != _text(new.get(field))
    ]
    old_blocks = _blocks(old)
    new_blocks = _blocks(new)
    pairs = _match(old_blocks, new_blocks)
    staying = _in_order(sorted(pairs.items()))
    matched_old = set(pairs.values())
    for position, block in enumerate(new_blocks):
        kind, body = _kind(block)
        if position not in pairs:
            changes.append(
                Change(ADDED, "", "", _block_text(block), position + 1, kind, _name(block))
            )
            continue
        before = old_blocks[pairs[position]]
        if position not in staying:
            changes.append(
                Change(
                    MOVED,
                    "",
                    block=position + 1,
                    block_type=kind,
                    name=_name(block),
                    old_position=pairs[position] + 1,
                )
            )
        _, old_body = _kind(before)
        for field in BLOCK_FIELDS.get(kind, ()) or _keys(old_body, body):
            was = _text(_field(old_body, field, kind))
            now = _text(_field(body, field, kind))
            if was != now:
                changes.append(
                    Change(
                        CHANGED, field, was, now, position + 1, kind, _name(block) or _name(before)
                    )
                )
    for index, block in enumerate(old_blocks):
        if index not in matched_old:
            kind, _ = _kind(block)
            changes.append(
                Change(REMOVED, "", _block_text(block), "", index + 1, kind, _name(block))
            )
    return changes


_TOKENS = re.compile(r"\s+|[^\s]+")


def words(old: str, new: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both texts cut into runs of words, each marked changed or not, so a reader sees
    the two words that changed in a long paragraph rather than two paragraphs."""
    before, after = _TOKENS.findall(old), _TOKENS.findall(new)
    old_parts: list[tuple[str, bool]] = []
    new_parts: list[tuple[str, bool]] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if i2 > i1:
            old_parts.append(("".join(before[i1:i2]), tag != "equal"))
        if j2 > j1:
            new_parts.append(("".join(after[j1:j2]), tag != "equal"))
    return old_parts, new_parts


def _fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    extra = sorted((set(old) | set(new)) - set(TOP_FIELDS) - {"blocks"})
    return [*TOP_FIELDS, *extra]


def _blocks(document: dict[str, Any]) -> list[Any]:
    blocks = document.get("blocks")
    return list(blocks) if isinstance(blocks, list) else []


def _kind(block: Any) -> tuple[str, Any]:
    """("statement", its fields) for {"statement": {...}}; ("?", block) otherwise."""
    if isinstance(block, dict) and len(block) == 1:
        kind, body = next(iter(block.items()))
        return str(kind), body
    return "?", block


def _field(body: Any, field: str, kind: str) -> Any:
    if kind in ("paragraph", "heading"):
        return body
    return body.get(field) if isinstance(body, dict) else None


def _keys(old: Any, new: Any) -> list[str]:
    keys = set(old) if isinstance(old, dict) else set()
    keys |= set(new) if isinstance(new, dict) else set()
    return sorted(keys)


def _name(block: Any) -> str:
    """What tells a block from its neighbours: a statement's name, an image's alt..."""
    kind, body = _kind(block)
    key = {"statement": "name", "image": "alt", "button": "label"}.get(kind)
    if key and isinstance(body, dict) and isinstance(body.get(key), str):
        return str(body[key]).strip()
    return ""


def _identity(block: Any) -> tuple[str, str] | None:
    kind, body = _kind(block)
    key = {"statement": "name", "image": "src", "button": "label"}.get(kind)
    if key and isinstance(body, dict) and isinstance(body.get(key), str) and body[key].strip():
        return kind, body[key].strip()
    return None


def _same(block: Any) -> str:
    return json.dumps(block, sort_keys=True, ensure_ascii=False)


def _match(old: Sequence[Any], new: Sequence[Any]) -> dict[int, int]:
    """new position -> old position, for the blocks that are "the same block"."""
    pairs: dict[int, int] = {}
    used: set[int] = set()

    def pair(test: Any) -> None:
        for n, block in enumerate(new):
            if n in pairs:
                continue
            candidates = [o for o in range(len(old)) if o not in used and test(old[o], block)]
            if candidates:
                o = min(candidates, key=lambda o: (abs(o - n), o))
                pairs[n] = o
                used.add(o)

    pair(lambda a, b: _same(a) == _same(b))
    pair(lambda a, b: _identity(a) is not None and _identity(a) == _identity(b))
    # The rest by type, in order: an edited paragraph is the paragraph at its place;
    # two statements of different people are not the same block unless only the
    # name changed (a typo fixed).
    for n, block in enumerate(new):
        if n in pairs:
            continue
        kind, _ = _kind(block)
        for o in range(len(old)):
            if o in used or _kind(old[o])[0] != kind or not _related(old[o], block):
                continue
            pairs[n] = o
            used.add(o)
            break
    return pairs


def _related(old: Any, new: Any) -> bool:
    if _identity(old) is None or _identity(new) is None:
        return True
    _, before = _kind(old)
    _, after = _kind(new)
    rest = {k: v for k, v in before.items() if k != "name"}
    return rest == {k: v for k, v in after.items() if k != "name"}


def _in_order(pairs: Sequence[tuple[int, int]]) -> set[int]:
    """The new positions of the longest run of blocks whose old order is kept: the
    others are the ones that moved."""
    olds = [o for _, o in pairs]
    best: list[list[int]] = []  # best[i]: the longest increasing run ending at i
    for i, value in enumerate(olds):
        longest: list[int] = []
        for j in range(i):
            if olds[j] < value and len(best[j]) > len(longest):
                longest = best[j]
        best.append([*longest, i])
    run = max(best, key=len, default=[])
    return {pairs[i][0] for i in run}


def _block_text(block: Any) -> str:
    kind, body = _kind(block)
    if kind in ("paragraph", "heading"):
        return _text(body)
    if isinstance(body, dict):
        fields = BLOCK_FIELDS.get(kind) or tuple(sorted(body))
        return "\n".join(f"{f}: {_text(body.get(f))}" for f in fields if body.get(f))
    return _text(body)


def _text(value: Any) -> str:
    """A field's value as an editor reads it: lists one item a line."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
