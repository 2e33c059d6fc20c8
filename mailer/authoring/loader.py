"""Reading content files for people: bytes to a validated model, or every problem located.

A content file (an issue, the newsletter profile) is written by hand, so whatever is
wrong with it is reported as `file:line: field: message`, all problems at once, in
words an editor uses. This module knows files and YAML: the size limit, UTF-8 (and
where it breaks), YAML parsed with positions (aliases and deep nesting refused), and
pydantic validation errors mapped back to lines. It knows nothing of what an issue
holds: the models are in mailer.authoring.content and mailer.authoring.profile.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

# The errors are defined apart, so that code that only catches them loads no YAML parser;
# they are named here too for the modules that read files and catch what reading raises.
from mailer.authoring.problems import ContentError as ContentError
from mailer.authoring.problems import Problem as Problem

# --- files -------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """A content or profile file as text; a missing, unreadable, oversized or non-UTF-8
    file is a ContentError (naming the line of the first bad byte)."""
    try:
        with path.open("rb") as file:  # read no more than the limit, whatever the file
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ContentError([Problem(str(path), None, "", "no such file")]) from None
    except OSError as exc:
        raise ContentError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ContentError([Problem(str(path), None, "", TOO_LARGE)])
    return decode_text(data, str(path))


# The largest content file, read by the CLI or uploaded: an issue is tens of KB; the
# email must stay under about 100 KB anyway. Larger files are refused before parsing.
MAX_FILE_BYTES = 1_000_000
TOO_LARGE = "the file is larger than 1 MB; an issue is much smaller: is it the right file?"


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 bytes (with or without a byte order mark) as text; other bytes are a
    ContentError on the line of the first byte that is not UTF-8."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        before = data[data.rfind(b"\n", 0, exc.start) + 1 : exc.start]
        column = len(before.decode("utf-8", errors="replace")) + 1
        message = (
            f"the file is not saved as UTF-8 text (character {column} of this line is not"
            " UTF-8; accented or non-Latin letters were saved in another encoding):"
            " save it as UTF-8 in your editor"
        )
        raise ContentError([Problem(name, line, "", message)]) from None


# --- YAML with line numbers -----------------------------------------------------------


class _Constructor(RoundTripConstructor):
    """Keeps dates as strings so that pydantic validates them (with a line number)."""


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda constructor, node: constructor.construct_scalar(node),
)


class _Composer(Composer):
    """Refuses aliases: editors do not need them, and nested ones can multiply a small
    upload into gigabytes (a "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            raise ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not supported in content files;"
                " write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


MAX_DEPTH = 50  # deeper nesting is a mistake or an attack (the parser recurses)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.Composer = _Composer
    yaml.max_depth = MAX_DEPTH
    return yaml


def _to_plain(node: Any) -> Any:
    """Round-trip containers to plain dicts/lists/strs for pydantic."""
    if isinstance(node, dict):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def line_at(root: Any, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the deepest node of `loc` that exists in the YAML tree."""
    node, line = root, 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = (
                node.lc.value(part)[0] + 1 if _is_scalar(node[part]) else node.lc.key(part)[0] + 1
            )
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def field_path(loc: Sequence[str | int]) -> str:
    """('blocks', 3, 'statement', 'name') -> 'blocks[3].statement.name'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
}

M = TypeVar("M", bound=BaseModel)


def parse_yaml(text: str, name: str) -> Any:
    """Parse YAML, turning syntax errors into a located ContentError in plain words."""
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        line, message = _plain_yaml_error(exc)
        raise ContentError([Problem(name, line, "", message)]) from None
    except YAMLError as exc:  # e.g. control characters the reader refuses
        position = getattr(exc, "position", None)  # a ReaderError: a character offset
        character = getattr(exc, "character", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        if isinstance(character, int):
            message = (
                f"contains a control character (U+{character:04X}) that a content file"
                " may not hold; delete it (it is often invisible: retype the line)"
            )
        else:
            message = _BROKEN
        raise ContentError([Problem(name, line, "", message)]) from None


_BROKEN = (
    "the YAML structure is broken here: check the indentation (spaces at the start of the"
    " line), the colons after field names and the quotes on this line and the one above"
)
_FOUND = re.compile(r"'(.*)'")
_DUPLICATE = re.compile(r'duplicate key "(.*)" with value')


def _plain_yaml_error(exc: MarkedYAMLError) -> tuple[int | None, str]:
    """(line, message) for a YAML syntax error, in the words an editor uses: the parser's
    own ("while parsing a block mapping", "increase YAML().max_depth") mean nothing to
    them. Unknown errors get a general hint rather than the parser's text."""
    context = str(exc.context or "")
    problem = str(exc.problem or "")
    problem_line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
    context_line = exc.context_mark.line + 1 if exc.context_mark is not None else None
    line = problem_line or context_line
    found = _FOUND.search(problem)
    quoted = found.group(1) if found else ""
    if isinstance(exc, MaxDepthExceededError) or "maximum depth" in problem:
        return line, (
            f"nested more than {MAX_DEPTH} levels deep; an issue needs only a few levels"
            " (check the indentation)"
        )
    if isinstance(exc, DuplicateKeyError):
        key = _DUPLICATE.search(problem)
        what = f"the field {key.group(1)!r}" if key else "a field"
        return line, f"{what} appears twice in the same place; keep one of them"
    if "not supported in content files" in problem:  # our own message about aliases
        return line, problem
    if "undefined alias" in problem:
        return line, "a value cannot start with '*'; put the value in quotes"
    if "mapping values are not allowed" in problem:
        return line, (
            "unexpected ': ' (a colon and a space) in a value, or a line indented more"
            " than the field above it: put the value in quotes, or fix the indentation"
        )
    if "quoted scalar" in context and "end of stream" in problem:
        return context_line or line, (
            "a quoted value is never closed: the closing quote mark is missing"
        )
    if "unknown escape character" in problem:
        return line, (
            f"\\{quoted} is not a valid escape in a value in double quotes: write \\\\ for"
            " a backslash, or use single quotes"
        )
    if "cannot start any token" in problem:
        if quoted in ("\\t", "\t"):
            return line, "a tab character: indent with spaces, not tabs"
        return line, f"a value cannot start with {quoted!r}; put the value in quotes"
    if "simple key" in context:
        return context_line or line, (
            "expected 'field: value' on this line; a line of text must be indented under"
            " its field, or the value put in quotes"
        )
    if quoted == "<stream end>":
        return line, (
            "the file ends in the middle of a value: a '[', '{' or quote mark opened above"
            " is not closed"
        )
    if "flow sequence" in context or "flow mapping" in context:
        opening = "[" if "sequence" in context else "{"
        return line, (
            f"a {opening!r} opened on line {context_line} is not closed, or a comma is"
            f" missing between its items (put text that contains {opening!r} in quotes)"
        )
    if "block scalar" in context:
        return line, "'|' or '>' must end the line; the text goes indented on the next lines"
    if "single document" in context:
        return line, "a line '---' starts a second document; remove it (one issue per file)"
    if "YAML document" in problem or "directive" in context + problem:
        return line, "a line starting with '%' is not allowed; remove it"
    if "block end" in problem and quoted == "<scalar>":
        return line, (
            "unexpected text after a value: if a value contains quote marks, put the whole"
            " value in quotes of the other kind, or fix the indentation of this line"
        )
    if "block end" in problem:
        return line, (
            "this line is indented differently from the lines above it: fields of the same"
            " block, and the items of a list, must start in the same column"
        )
    return line, _BROKEN


def validate_yaml(
    model: type[M],
    tree: Any,
    name: str,
    extra: Sequence[Problem] = (),
    *,
    skip: Collection[str] = (),
    tags: Collection[str] = (),
) -> M:
    """Validate a parsed YAML tree against `model`, reporting every problem with its line.

    `skip`: error types not to report (the caller explains them better, in `extra`);
    `tags`: the tags of the model's tagged unions, which pydantic repeats in locations."""
    problems = list(extra)
    if not isinstance(tree, dict):
        problems.append(Problem(name, 1, "", "expected a mapping of fields at the top level"))
        raise ContentError(problems)
    try:
        result = model.model_validate(_to_plain(tree))
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] in skip:
                continue
            loc = _strip_tags(error["loc"], tags)
            message = _MESSAGES.get(error["type"], error["msg"])
            if message.startswith("Value error, "):
                message = message.removeprefix("Value error, ")
            problems.append(Problem(name, line_at(tree, loc), field_path(loc), message))
        problems.sort(key=lambda p: p.line or 0)
        raise ContentError(_dedupe(problems)) from None
    if problems:
        raise ContentError(problems)
    return result


def _strip_tags(loc: Sequence[str | int], tags: Collection[str]) -> list[str | int]:
    """Pydantic repeats a tagged-union tag in the location (blocks.3.statement.statement)."""
    out: list[str | int] = []
    for part in loc:
        if out and part == out[-1] and isinstance(part, str) and part in tags:
            continue
        out.append(part)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# An anchor (`&name`) where YAML allows one; files that may have one take the slow road,
# which refuses aliases (the fast parser would share, and accept, their values).
_ANCHOR = re.compile(r"(^|[\s\[{,:-])&[^\s]")


def parse_fast(text: str) -> dict[str, Any]:
    """The fields of a well-formed file, parsed by libyaml without positions (fast).

    Raises ValueError where the file may use anchors or is not a mapping of fields, and
    YAMLError where it is not YAML: the caller then takes the slow road, `parse_yaml`,
    which decides what is valid and locates every problem.
    """
    if _ANCHOR.search(text):
        raise ValueError("may use anchors and aliases")
    tree = YAML(typ="safe").load(text)
    if not isinstance(tree, dict) or not all(isinstance(k, str) for k in tree):
        raise ValueError("not a mapping of fields")
    return tree


def line_map(text: str) -> dict[str, int]:
    """Field path ("blocks[3].statement.photo") -> 1-based line, for messages about a
    file that is valid (lints, media checks); it is parsed again, with positions."""
    return _line_map(_yaml().load(text)) if text else {}


def _line_map(node: Any, prefix: tuple[str | int, ...] = ()) -> dict[str, int]:
    """Field path -> 1-based line, for messages about a valid issue (lints, media)."""
    lines: dict[str, int] = {}
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            path = (*prefix, str(key))
            lines[field_path(path)] = node.lc.key(key)[0] + 1
            lines.update(_line_map(value, path))
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            path = (*prefix, index)
            lines[field_path(path)] = node.lc.item(index)[0] + 1
            lines.update(_line_map(value, path))
    return lines
