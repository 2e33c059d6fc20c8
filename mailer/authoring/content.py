"""The issue content model: the contract between editors and the renderer.

An issue is one YAML file (see DESIGN.md, "Issue content format"). This module says
what an issue holds and what is valid: validation is strict (unknown keys and block
types are errors). Reading the file and reporting every problem at once, each with
file, line and field path, is mailer.authoring.loader's. Text fields hold inline
Markdown; they are parsed at render time (mailer.authoring.markdown).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Union
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
)

from mailer.authoring.loader import (
    Problem,
    line_at,
    line_map,
    parse_fast,
    parse_yaml,
    read_text,
    validate_yaml,
)
from mailer.authoring.markdown import link_targets
from mailer.authoring.slots import refuse_slots
from subscribers.countries import normalise_country
from subscribers.errors import StoreInputError

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


# The web app's own address while it runs on this machine (the demo, development): the
# photos uploaded there have such URLs, and no one else can load them, so they are the
# only http images accepted.
_LOOPBACK_HTTP = re.compile(
    r"^http://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?/", re.IGNORECASE
)


def is_url(src: str) -> bool:
    """An image source that is a web address (https, or the local web app's), not a file."""
    return src.lower().startswith("https://") or _LOOPBACK_HTTP.match(src) is not None


def check_source(value: str) -> str:
    """An image is an https URL or a file in the content's folder, never elsewhere."""
    if is_url(value):
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
            self._lines = line_map(self._text)
        return self._lines.get(field)

    @property
    def statements(self) -> list[Statement]:
        return [b.statement for b in self.blocks if isinstance(b, StatementBlock)]

    def resolve(self, src: str) -> Path | None:
        """The local file behind a photo or image source (None for https URLs)."""
        if is_url(src):
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
        line = line_at(tree, ("blocks", index))
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
        problems = _block_problems(tree, name)
        issue = validate_yaml(Issue, tree, name, problems, skip={"block_type"}, tags=BLOCK_TYPES)
    issue._source = source
    issue._name = name
    issue._text = text
    return issue


def _load_fast(text: str) -> Issue:
    return Issue.model_validate(parse_fast(text))


def load_issue(path: Path) -> Issue:
    """Load and validate an issue file; raises ContentError listing every problem."""
    return load_issue_text(read_text(path), str(path), source=path.resolve())
