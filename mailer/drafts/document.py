"""A draft's document checked with the content model of the YAML path.

Two checks, for two moments. `structural_problems` runs on every save: a document
whose shape the content model refuses (an unknown block type or field, a number
written as text, a list where text belongs) is never stored, whoever sent it; an
incomplete one (no title yet, an empty statement) is, because editors save while
they type. `validate_document` says everything `mailer check` would say about the
document, with the same messages, so the editor can show each beside its field;
`issue_from_document` gives the validated `Issue` the renderer takes, or a
ContentError naming the fields.

Field paths are dotted paths into the document, as the editor's form names its
fields: `title`, `blocks.3.statement.text`, `blocks.0.paragraph`, `contact.1`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from mailer.authoring.content import BLOCK_TYPES, Issue
from mailer.authoring.loader import ContentError, Problem
from mailer.authoring.profile import Profile

if TYPE_CHECKING:
    from mailer.authoring.render import Renderer

# A draft is stored whole in every revision: as large as a content file may be.
MAX_DOCUMENT_BYTES = 1_000_000

_T = TypeVar("_T")

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class FieldProblem:
    """One thing to fix, or to consider, in a draft: shown beside its field."""

    field: str
    message: str
    level: str = ERROR

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# The fields of an issue and the JSON types they hold (None: not filled in yet).
_TOP_TYPES: dict[str, tuple[type, ...]] = {
    "newsletter": (str,),
    "number": (int,),
    "year": (int,),
    "date": (str,),
    "language": (str,),
    "title": (str,),
    "subtitle": (str,),
    "subject": (str,),
    "preheader": (str,),
    "blocks": (list,),
    "contact": (list,),
    "about": (str,),
}

# Pydantic errors that mean "the content model refuses this shape", as against "not
# finished yet" (missing, too short) or "a value to correct" (a relative link).
_STRUCTURAL = frozenset(
    {
        "extra_forbidden",
        "block_type",
        "union_tag_invalid",
        "union_tag_not_found",
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "string_type",
        "int_type",
        "int_from_float",
        "int_parsing",
        "bool_type",
        "float_type",
        "date_type",
    }
)

_MESSAGES = {"missing": "field required", "extra_forbidden": "unknown field"}
_TYPE_NAMES = {str: "text", int: "a whole number", list: "a list"}


def dotted(loc: Sequence[str | int]) -> str:
    """('blocks', 3, 'statement', 'name') -> 'blocks.3.statement.name'."""
    return ".".join(str(part) for part in loc)


def from_file_path(field: str) -> str:
    """A content file's field path ("blocks[3].statement.photo") as a dotted one."""
    return re.sub(r"\[(\d+)\]", r".\1", field)


def structural_problems(document: Any) -> list[FieldProblem]:
    """What makes `document` unfit to store at all (empty: it may be saved, however
    unfinished). Checked on every save, whatever the browser checked."""
    if not isinstance(document, dict):
        return [FieldProblem("", "a draft is a mapping of an issue's fields")]
    try:
        size = len(json.dumps(document, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        return [FieldProblem("", "a draft holds only text, numbers, lists and mappings")]
    if size > MAX_DOCUMENT_BYTES:
        return [FieldProblem("", "the draft is larger than 1 MB; an issue is much smaller")]
    problems = _top_level_types(document) + _block_shapes(document)
    for error in _errors(document):
        loc = _strip_tags(error["loc"])
        if error["type"] not in _STRUCTURAL:
            continue
        if error["type"] == "block_type" or (len(loc) == 2 and loc[0] == "blocks"):
            continue  # block shapes are explained by _block_shapes
        if error.get("input") is None and loc and isinstance(loc[-1], str):
            continue  # a field not filled in yet
        if loc and loc[0] in _TOP_TYPES and len(loc) == 1:
            continue  # explained by _top_level_types
        problems.append(FieldProblem(dotted(loc), _message(error)))
    return _unique(problems)


def validate_document(
    document: dict[str, Any], profile: Profile, renderer: Renderer | None = None
) -> list[FieldProblem]:
    """Everything `mailer check` reports on this document, with its messages: the
    content model's errors, then (once it validates) the advice on its fields, and,
    given the renderer, the checks of the rendered email (size, alt text, links)."""
    structural = structural_problems(document)
    if structural:
        return structural
    try:
        issue = issue_from_document(document, profile)
    except ContentError as exc:
        return [FieldProblem(from_file_path(p.field), p.message) for p in exc.problems]
    from mailer.authoring.checks import check_fields, check_issue

    findings = check_issue(issue, renderer) if renderer is not None else check_fields(issue)
    return [FieldProblem(from_file_path(f.field), f.message, str(f.level)) for f in findings]


def issue_from_document(document: dict[str, Any], profile: Profile, name: str = "draft") -> Issue:
    """The validated issue, for the same Renderer as files; a ContentError naming
    every field otherwise (`name` says which draft, in the messages)."""
    issue = _issue(document, name)
    if issue.newsletter != profile.id:
        message = f"unknown newsletter {issue.newsletter!r}; this profile is {profile.id!r}"
        raise ContentError([Problem(name, None, "newsletter", message)])
    return issue


def revision_issue(session: Session, revision_id: int, subject: str | None = None) -> Issue:
    """A stored revision as an issue (what a campaign made from it freezes), with the
    campaign's own `subject` if it has one; the renderer checks the newsletter."""
    from mailer.drafts.models import DraftRevision

    revision = session.get(DraftRevision, revision_id)
    if revision is None:
        raise ContentError([Problem(f"draft revision {revision_id}", None, "", "no such revision")])
    name = f"draft {revision.draft_id} revision {revision.number}"
    issue = _issue(revision.document, name)
    if subject:
        issue = issue.model_copy(update={"subject": subject})
        issue._name = name
    return issue


def _issue(document: dict[str, Any], name: str) -> Issue:
    problems = [
        Problem(name, None, p.field, p.message)
        for p in _top_level_types(document) + _block_shapes(document)
    ]
    try:
        issue = Issue.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors():
            loc = _strip_tags(error["loc"])
            if error["type"] == "block_type" or (
                len(loc) == 1 and loc[0] in _TOP_TYPES and _wrong_type(document, str(loc[0]))
            ):
                continue  # explained above, in the editor's words
            problems.append(Problem(name, None, dotted(loc), _message(error)))
        raise ContentError(_unique(problems)) from None
    if problems:
        raise ContentError(problems)
    issue._name = name
    return issue


def _errors(document: dict[str, Any]) -> list[Any]:
    try:
        Issue.model_validate(document)
    except ValidationError as exc:
        return list(exc.errors())
    return []


def _wrong_type(document: dict[str, Any], key: str) -> bool:
    value = document.get(key)
    expected = _TOP_TYPES[key]
    return value is not None and (
        not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)
    )


def _top_level_types(document: dict[str, Any]) -> list[FieldProblem]:
    problems = []
    for key in document:
        if key in _TOP_TYPES and _wrong_type(document, key):
            wanted = _TYPE_NAMES[_TOP_TYPES[key][0]]
            if key == "date":
                wanted = "a date written as YYYY-MM-DD"
            problems.append(FieldProblem(key, f"expected {wanted}"))
    return problems


def _block_shapes(document: dict[str, Any]) -> list[FieldProblem]:
    """Blocks that are not one-key mappings of a known type, as `mailer check` says it."""
    blocks = document.get("blocks")
    if not isinstance(blocks, list):
        return []
    known = ", ".join(BLOCK_TYPES)
    problems = []
    for index, block in enumerate(blocks):
        field = f"blocks.{index}"
        if not isinstance(block, dict) or len(block) != 1:
            problems.append(
                FieldProblem(field, f"a block is a mapping with one key, one of: {known}")
            )
        elif next(iter(block)) not in BLOCK_TYPES:
            kind = next(iter(block))
            problems.append(
                FieldProblem(field, f"unknown block type {kind!r}; expected one of: {known}")
            )
    return problems


def _strip_tags(loc: Sequence[str | int]) -> list[str | int]:
    """Pydantic repeats a block's tag in locations (blocks.3.statement.statement)."""
    out: list[str | int] = []
    for part in loc:
        if out and part == out[-1] and isinstance(part, str) and part in BLOCK_TYPES:
            continue
        out.append(part)
    return out


def _message(error: Any) -> str:
    message = _MESSAGES.get(error["type"], error["msg"])
    return str(message).removeprefix("Value error, ")


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))
