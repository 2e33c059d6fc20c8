"""The issue content model and its loader: the contract between editors and the renderer.

An issue is one YAML file (see DESIGN.md, "Issue content format"). Validation is
strict (unknown keys and block types are errors) and reports every problem of a file
at once, each with file, line and field path, so an editor can fix them in one go.
Text fields hold inline Markdown; they are parsed at render time (mailer.authoring.markdown).
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from mailer.authoring.markdown import link_targets
from mailer.authoring.slots import refuse_slots
from mailer.errors import UserInputError
from subscribers.countries import normalise_country
from subscribers.errors import StoreInputError

# --- errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a content file, located precisely enough to fix it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ContentError(UserInputError):
    """A content or profile file is invalid; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


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


def _line_of(root: Any, loc: Sequence[str | int]) -> int | None:
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


def _field_path(loc: Sequence[str | int]) -> str:
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
) -> M:
    """Validate a parsed YAML tree against `model`, reporting every problem with its line."""
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
            loc = _strip_tags(error["loc"])
            message = _MESSAGES.get(error["type"], error["msg"])
            if message.startswith("Value error, "):
                message = message.removeprefix("Value error, ")
            problems.append(Problem(name, _line_of(tree, loc), _field_path(loc), message))
        problems.sort(key=lambda p: p.line or 0)
        raise ContentError(_dedupe(problems)) from None
    if problems:
        raise ContentError(problems)
    return result


def _strip_tags(loc: Sequence[str | int]) -> list[str | int]:
    """Pydantic repeats a tagged-union tag in the location (blocks.3.statement.statement)."""
    out: list[str | int] = []
    for part in loc:
        if out and part == out[-1] and isinstance(part, str) and part in BLOCK_TYPES:
            continue
        out.append(part)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# --- field types -------------------------------------------------------------------

_URL = re.compile(r"^(https?://[^\s/$.?#][^\s]*|mailto:[^\s@]+@[^\s@]+)$", re.IGNORECASE)
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _check_url(value: str) -> str:
    """An absolute http(s) or mailto URL, with non-ASCII and quotes percent-encoded."""
    if not _URL.match(value):
        raise ValueError(f"not an absolute http(s) or mailto URL: {value!r}")
    return quote(value, safe=_URL_SAFE)


_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]")


class Strict(BaseModel):
    """Every model of the content format: unknown keys are errors, strings are stripped,
    control characters (other than tab and line breaks) and non-characters (U+FFFF...)
    are errors: they break headers, terminals and the MJML compiler."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            found = _CONTROL.search(text) if isinstance(text, str) else None
            if found:
                code = f"U+{ord(found.group()):04X}"
                raise ValueError(f"contains a control character or non-character ({code})")
        return value


NonEmpty = Annotated[str, Field(min_length=1)]

# Limits on what goes into headers and inbox lines. Mail clients show 40 to 130
# characters of a subject and about 100 of a preheader (`mailer check` warns above 150);
# past these limits a value is a mistake, and a subject folded over many header lines
# is refused or cut by relays (RFC 5322 lines stop at 998 characters).
MAX_SUBJECT = 200
MAX_PREHEADER = 300
MAX_NAME = 200  # names of people, senders and newsletters (the database's name width)
MAX_NUMBER = 99_999  # an issue number; the database column is a 32-bit integer


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be one line (it goes into mail headers and inbox lines)")
    return value


def _at_most(limit: int, what: str) -> AfterValidator:
    """A length limit with the length in the message, so the editor knows how much to cut."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"{what} has {len(value)} characters; at most {limit} are allowed")
        return value

    return AfterValidator(check)


SubjectLine = Annotated[str, AfterValidator(_one_line), _at_most(MAX_SUBJECT, "the subject")]


def _absolute_links(value: str) -> str:
    for href in link_targets(value):
        if not _URL.match(href):
            raise ValueError(f"link is not an absolute http(s) or mailto URL: {href!r}")
    return value


# Text fields take inline Markdown; their links must work from any mail client.
Text = Annotated[str, AfterValidator(_absolute_links)]
NonEmptyText = Annotated[str, Field(min_length=1), AfterValidator(_absolute_links)]


# --- blocks ------------------------------------------------------------------------


class Statement(Strict):
    """A person's statement: shown as a card with name, role lines and their words."""

    name: Annotated[NonEmptyText, _at_most(MAX_NAME, "the name")]
    roles: list[NonEmptyText] = Field(default_factory=list)
    photo: str | None = None
    photo_alt: str | None = None
    country: str | None = None
    text: NonEmptyText

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        """A code or a name, as the subscriber store takes them ("VN", "Viet Nam")."""
        if value is None:
            return None
        try:
            return normalise_country(value)
        except StoreInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("photo")
    @classmethod
    def _photo(cls, value: str | None) -> str | None:
        return check_source(value) if value is not None else None


def check_source(value: str) -> str:
    """An image is an https URL or a file in the content's folder, never elsewhere."""
    if value.lower().startswith("https://"):
        return value
    parts = value.replace("\\", "/").split("/")
    if (
        not value
        or re.match(r"^[a-z][a-z0-9+.-]*:", value, re.IGNORECASE)
        or value.startswith(("/", "\\", "~"))
        or ".." in parts
    ):
        raise ValueError(
            f"expected a path inside the issue's folder (e.g. photos/name.jpg) or an https URL:"
            f" {value!r}"
        )
    return value


class Image(Strict):
    src: NonEmpty
    alt: NonEmpty
    caption: Text | None = None
    link: str | None = None

    @field_validator("src")
    @classmethod
    def _src(cls, value: str) -> str:
        return check_source(value)

    @field_validator("link")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        return value if value is None else _check_url(value)


class Button(Strict):
    label: NonEmpty
    url: NonEmpty

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class Divider(Strict):
    """A horizontal rule; takes no options (`divider: {}`)."""


class ParagraphBlock(Strict):
    paragraph: NonEmptyText

    @property
    def kind(self) -> str:
        return "paragraph"


class HeadingBlock(Strict):
    heading: NonEmptyText

    @property
    def kind(self) -> str:
        return "heading"


class StatementBlock(Strict):
    statement: Statement

    @property
    def kind(self) -> str:
        return "statement"


class ImageBlock(Strict):
    image: Image

    @property
    def kind(self) -> str:
        return "image"


class ButtonBlock(Strict):
    button: Button

    @property
    def kind(self) -> str:
        return "button"


class DividerBlock(Strict):
    divider: Divider = Field(default_factory=Divider)

    @field_validator("divider", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def kind(self) -> str:
        return "divider"


BLOCK_TYPES: dict[str, type[Strict]] = {
    "paragraph": ParagraphBlock,
    "heading": HeadingBlock,
    "statement": StatementBlock,
    "image": ImageBlock,
    "button": ButtonBlock,
    "divider": DividerBlock,
}


def _block_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in BLOCK_TYPES else None
    if isinstance(value, BaseModel):
        return str(getattr(value, "kind", None))
    return None


Block = Annotated[
    Union[  # noqa: UP007 - tagged union members need Annotated[..., Tag]
        Annotated[ParagraphBlock, Tag("paragraph")],
        Annotated[HeadingBlock, Tag("heading")],
        Annotated[StatementBlock, Tag("statement")],
        Annotated[ImageBlock, Tag("image")],
        Annotated[ButtonBlock, Tag("button")],
        Annotated[DividerBlock, Tag("divider")],
    ],
    Discriminator(_block_kind, custom_error_type="block_type", custom_error_message="bad block"),
]


# --- the issue -----------------------------------------------------------------------


class Issue(Strict):
    """One newsletter issue, as written by its editors."""

    newsletter: Annotated[NonEmpty, _at_most(MAX_NAME, "the name")]
    number: int = Field(ge=1, le=MAX_NUMBER, strict=True)  # `true` or "13" is a typo
    year: int = Field(ge=1900, le=2999, strict=True)
    date: dt.date
    language: str = "en"
    title: Annotated[NonEmpty, AfterValidator(_one_line), _at_most(MAX_SUBJECT, "the title")]
    subtitle: Text | None = None
    subject: SubjectLine | None = None  # default: the title (it is the subject too)
    preheader: Annotated[
        str, AfterValidator(_one_line), _at_most(MAX_PREHEADER, "the preheader")
    ] = ""
    blocks: list[Block] = Field(min_length=1)
    contact: list[Text] | None = None
    about: Text | None = None

    _source: Path | None = PrivateAttr(default=None)
    _name: str = PrivateAttr(default="issue")
    _lines: dict[str, int] | None = PrivateAttr(default=None)
    _text: str = PrivateAttr(default="")

    @field_validator("date", mode="before")
    @classmethod
    def _written_date(cls, value: Any) -> Any:
        if isinstance(value, int | float):  # pydantic would read it as a Unix time
            raise ValueError(f"expected a date written as YYYY-MM-DD, got {value!r}")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _LANG.match(value):
            raise ValueError(f"expected a language tag such as 'en' or 'zh-Hans', got {value!r}")
        return value

    @field_validator("title", "subject")
    @classmethod
    def _no_slots(cls, value: str | None) -> str | None:
        """The title is the subject unless one is given: one text for every recipient."""
        return None if value is None else refuse_slots(value)

    @property
    def slug(self) -> str:
        """A stable name for files and URLs: "2022-13"."""
        return f"{self.year}-{self.number}"

    @property
    def source(self) -> Path | None:
        """The file this issue was loaded from (None for uploaded text)."""
        return self._source

    @property
    def name(self) -> str:
        """The file as messages name it: the path as given, or the upload's name."""
        return self._name

    @property
    def base_dir(self) -> Path | None:
        """Where relative photo paths are resolved."""
        return self._source.parent if self._source else None

    def line_of(self, field: str) -> int | None:
        """The line of a field path such as "blocks[3].statement.photo" in the source file."""
        if self._lines is None:  # positions are only needed for messages: parse on demand
            self._lines = _line_map(_yaml().load(self._text)) if self._text else {}
        return self._lines.get(field)

    @property
    def statements(self) -> list[Statement]:
        return [b.statement for b in self.blocks if isinstance(b, StatementBlock)]

    def resolve(self, src: str) -> Path | None:
        """The local file behind a photo or image source (None for https URLs)."""
        if src.lower().startswith("https://"):
            return None
        path = Path(src)
        if path.is_absolute() or self.base_dir is None:
            return path
        return self.base_dir / path


def _block_problems(tree: Any, name: str) -> list[Problem]:
    """Clear messages for blocks that are not one-key mappings of a known type."""
    problems: list[Problem] = []
    blocks = tree.get("blocks") if isinstance(tree, dict) else None
    if not isinstance(blocks, list):
        return problems
    known = ", ".join(BLOCK_TYPES)
    for index, block in enumerate(blocks):
        line = blocks.lc.item(index)[0] + 1 if isinstance(blocks, CommentedSeq) else None
        where = f"blocks[{index}]"
        if not isinstance(block, dict) or len(block) != 1:
            problems.append(
                Problem(name, line, where, f"a block is a mapping with one key, one of: {known}")
            )
        elif next(iter(block)) not in BLOCK_TYPES:
            kind = next(iter(block))
            problems.append(
                Problem(name, line, where, f"unknown block type {kind!r}; expected one of: {known}")
            )
    return problems


def load_issue_text(text: str, name: str, *, source: Path | None = None) -> Issue:
    """Validate issue YAML given as text (an upload); `name` is used in error messages.

    A valid file takes the fast road (libyaml, no positions); anything the fast road
    does not accept is parsed again with positions, and that slower parse alone
    decides what is valid and reports every problem with its line.
    """
    try:
        issue = _load_fast(text)
    except Exception:
        tree = parse_yaml(text, name)
        issue = validate_yaml(Issue, tree, name, _block_problems(tree, name), skip={"block_type"})
    issue._source = source
    issue._name = name
    issue._text = text
    return issue


# An anchor (`&name`) where YAML allows one; files that may have one take the slow road,
# which refuses aliases (the fast parser would share, and accept, their values).
_ANCHOR = re.compile(r"(^|[\s\[{,:-])&[^\s]")


def _load_fast(text: str) -> Issue:
    if _ANCHOR.search(text):
        raise ValueError("may use anchors and aliases")
    tree = YAML(typ="safe").load(text)
    if not isinstance(tree, dict) or not all(isinstance(k, str) for k in tree):
        raise ValueError("not a mapping of fields")
    return Issue.model_validate(tree)


def _line_map(node: Any, prefix: tuple[str | int, ...] = ()) -> dict[str, int]:
    """Field path -> 1-based line, for messages about a valid issue (lints, media)."""
    lines: dict[str, int] = {}
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            path = (*prefix, str(key))
            lines[_field_path(path)] = node.lc.key(key)[0] + 1
            lines.update(_line_map(value, path))
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            path = (*prefix, index)
            lines[_field_path(path)] = node.lc.item(index)[0] + 1
            lines.update(_line_map(value, path))
    return lines


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


def load_issue(path: Path) -> Issue:
    """Load and validate an issue file; raises ContentError listing every problem."""
    return load_issue_text(read_text(path), str(path), source=path.resolve())
