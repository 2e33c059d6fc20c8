"""Drafts and their revisions: create, save, list, history, restore.

Every save is a revision holding the whole document, its author and time; nothing
an editor saved is ever overwritten, with one exception that keeps the history
readable: autosaves by the same author within `MERGE_WINDOW` of the head revision's
last update, when the head is that author's autosave, update the head instead of
adding one (a revision a campaign was made from is never updated: it is what the
campaign froze). A save names the version it started from; a save from an older
version is refused with the current draft (`DraftConflict`), nothing written, so a
second editor never silently overwrites the first. Functions take a `Session` and
leave committing to the caller.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import column, exists, func, select, table
from sqlalchemy.orm import Session

from mailer.drafts.diff import Change, diff
from mailer.drafts.document import (
    FieldProblem,
    issue_from_document,
    structural_problems,
    validate_document,
)
from mailer.drafts.models import Draft, DraftRevision, RevisionKind
from mailer.errors import UserInputError

MERGE_WINDOW = timedelta(seconds=120)

# The campaigns table, as far as this module reads it (no import of the delivery package).
_campaigns = table("campaigns", column("draft_revision_id"))


class DraftError(UserInputError):
    """A draft cannot do what was asked."""


class DraftNotFound(DraftError):
    """No draft (or no such revision of it)."""


class DraftConflict(DraftError):
    """The draft changed since the version the save started from; nothing was written."""

    def __init__(self, current: DraftView) -> None:
        self.current = current
        super().__init__(
            f"draft {current.id} was saved by someone else meanwhile (now version"
            f" {current.version}); nothing was written"
        )


class DraftRefused(DraftError):
    """The document has a shape the content model refuses; nothing was written."""

    def __init__(self, errors: list[FieldProblem]) -> None:
        self.errors = list(errors)
        super().__init__("the draft was not saved: " + "; ".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class DraftView:
    """A draft as pages and commands show it."""

    id: int
    version: int
    document: dict[str, Any]
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    head: int  # the number of the head revision
    title: str


@dataclass(frozen=True)
class DraftSummary:
    """A line of the list of drafts."""

    id: int
    title: str
    number: int | None
    year: int | None
    version: int
    head: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    updated_by: int | None
    date: str | None = None  # the issue's date as written (YYYY-MM-DD), if any


@dataclass(frozen=True)
class RevisionView:
    """One revision of a draft, whole."""

    id: int
    draft_id: int
    number: int
    author_id: int | None
    created_at: datetime
    updated_at: datetime
    kind: str
    restored_from: int | None
    document: dict[str, Any]

    @property
    def title(self) -> str:
        return title_of(self.document)


def title_of(document: dict[str, Any]) -> str:
    """What lists call a draft: its title, else "Issue N", else "Untitled draft"."""
    title = document.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    number = document.get("number")
    if isinstance(number, int) and not isinstance(number, bool):
        return f"Issue {number} (no title yet)"
    return "Untitled draft"


def create_draft(
    session: Session,
    document: dict[str, Any],
    *,
    author_id: int | None,
    now: datetime,
    kind: str = RevisionKind.SAVE,
) -> DraftView:
    """A new draft with `document` as its revision 1 (`kind`: save, import...)."""
    _refuse(document)
    document = copy.deepcopy(document)
    kind = RevisionKind(kind)
    draft = Draft(
        created_by=author_id, created_at=now, updated_at=now, version=1, document=document
    )
    session.add(draft)
    session.flush()
    revision = _add_revision(session, draft, 1, document, author_id, now, kind, None)
    draft.head_revision_id = revision.id
    session.flush()
    return _view(draft, revision)


def get_draft(session: Session, draft_id: int) -> DraftView:
    """The draft, or DraftNotFound."""
    draft = _draft(session, draft_id)
    return _view(draft, _head(session, draft))


def save_draft(
    session: Session,
    draft_id: int,
    document: dict[str, Any],
    *,
    base_version: int,
    author_id: int | None,
    now: datetime,
    autosave: bool,
    merge_window: timedelta = MERGE_WINDOW,
) -> DraftView:
    """Save `document` as the draft's new version, made from `base_version`.

    Raises DraftConflict (with the current draft) when someone saved since, and
    DraftRefused when the content model refuses the document's shape; an unfinished
    document is saved. A new revision, or the head updated (see the module)."""
    _refuse(document)
    document = copy.deepcopy(document)
    draft = _draft(session, draft_id, lock=True)
    head = _head(session, draft)
    if base_version != draft.version:
        raise DraftConflict(_view(draft, head))
    if autosave and _mergeable(session, head, author_id, now, merge_window):
        head.document = document
        head.updated_at = now
        revision = head
    else:
        kind = RevisionKind.AUTOSAVE if autosave else RevisionKind.SAVE
        revision = _add_revision(
            session, draft, head.number + 1, document, author_id, now, kind, None
        )
    draft.document = document
    draft.version += 1
    draft.updated_at = now
    draft.head_revision_id = revision.id
    session.flush()
    return _view(draft, revision)


def list_drafts(session: Session) -> list[DraftSummary]:
    """Every draft, the most recently changed first."""
    rows = session.execute(
        select(Draft, DraftRevision)
        .join(DraftRevision, DraftRevision.id == Draft.head_revision_id)
        .order_by(Draft.updated_at.desc(), Draft.id.desc())
    ).all()
    summaries = []
    for draft, head in rows:
        document = draft.document
        number, year = document.get("number"), document.get("year")
        summaries.append(
            DraftSummary(
                id=draft.id,
                title=title_of(document),
                number=number if isinstance(number, int) and not isinstance(number, bool) else None,
                year=year if isinstance(year, int) and not isinstance(year, bool) else None,
                version=draft.version,
                head=head.number,
                created_by=draft.created_by,
                created_at=draft.created_at,
                updated_at=draft.updated_at,
                updated_by=head.author_id,
                date=document["date"] if isinstance(document.get("date"), str) else None,
            )
        )
    return summaries


def history(session: Session, draft_id: int) -> list[RevisionView]:
    """Every revision of the draft, the newest first."""
    _draft(session, draft_id)
    revisions = session.scalars(
        select(DraftRevision)
        .where(DraftRevision.draft_id == draft_id)
        .order_by(DraftRevision.number.desc())
    )
    return [_revision_view(r) for r in revisions]


def get_revision(session: Session, draft_id: int, number: int) -> RevisionView:
    """Revision `number` of the draft, or DraftNotFound."""
    return _revision_view(_revision(session, draft_id, number))


def revision_by_id(session: Session, revision_id: int) -> RevisionView:
    """A revision by its id (as a campaign refers to it), or DraftNotFound."""
    revision = session.get(DraftRevision, revision_id)
    if revision is None:
        raise DraftNotFound(f"no draft revision with id {revision_id}")
    return _revision_view(revision)


def restore(
    session: Session, draft_id: int, number: int, *, author_id: int | None, now: datetime
) -> DraftView:
    """Revision `number`'s document as the draft's new revision (nothing is lost:
    the revisions after it stay in the history)."""
    draft = _draft(session, draft_id, lock=True)
    old = _revision(session, draft_id, number)
    head = _head(session, draft)
    revision = _add_revision(
        session,
        draft,
        head.number + 1,
        copy.deepcopy(old.document),
        author_id,
        now,
        RevisionKind.RESTORE,
        number,
    )
    draft.document = copy.deepcopy(old.document)
    draft.version += 1
    draft.updated_at = now
    draft.head_revision_id = revision.id
    session.flush()
    return _view(draft, revision)


def lock_head(session: Session, draft_id: int) -> RevisionView:
    """The draft's head revision, with the draft locked until the transaction ends (a
    campaign made from it refers to a revision no autosave is merging into)."""
    return _revision_view(_head(session, _draft(session, draft_id, lock=True)))


def is_frozen(session: Session, revision_id: int) -> bool:
    """Whether a campaign was made from this revision (it never changes then)."""
    query = select(exists().where(_campaigns.c.draft_revision_id == revision_id))
    return bool(session.scalar(query))


# --- helpers ---------------------------------------------------------------------------


def _refuse(document: Any) -> None:
    problems = structural_problems(document)
    if problems:
        raise DraftRefused(problems)


def _draft(session: Session, draft_id: int, *, lock: bool = False) -> Draft:
    query = select(Draft).where(Draft.id == draft_id)
    if lock:
        query = query.with_for_update()
    draft = session.scalars(query).one_or_none()
    if draft is None:
        raise DraftNotFound(f"no draft with id {draft_id}")
    return draft


def _head(session: Session, draft: Draft) -> DraftRevision:
    head = session.get(DraftRevision, draft.head_revision_id) if draft.head_revision_id else None
    if head is None:  # a draft always has its head; this is a broken row, not input
        latest = session.scalars(
            select(DraftRevision)
            .where(DraftRevision.draft_id == draft.id)
            .order_by(DraftRevision.number.desc())
            .limit(1)
        ).one_or_none()
        if latest is None:
            raise DraftNotFound(f"draft {draft.id} has no revision")
        return latest
    return head


def _revision(session: Session, draft_id: int, number: int) -> DraftRevision:
    _draft(session, draft_id)
    revision = session.scalars(
        select(DraftRevision).where(
            DraftRevision.draft_id == draft_id, DraftRevision.number == number
        )
    ).one_or_none()
    if revision is None:
        raise DraftNotFound(f"draft {draft_id} has no revision {number}")
    return revision


def _mergeable(
    session: Session,
    head: DraftRevision,
    author_id: int | None,
    now: datetime,
    window: timedelta,
) -> bool:
    return (
        head.kind == RevisionKind.AUTOSAVE
        and head.author_id == author_id
        and timedelta(0) <= now - head.updated_at <= window
        and not is_frozen(session, head.id)
    )


def _add_revision(
    session: Session,
    draft: Draft,
    number: int,
    document: dict[str, Any],
    author_id: int | None,
    now: datetime,
    kind: RevisionKind,
    restored_from: int | None,
) -> DraftRevision:
    revision = DraftRevision(
        draft_id=draft.id,
        number=number,
        author_id=author_id,
        created_at=now,
        updated_at=now,
        document=document,
        kind=kind.value,
        restored_from=restored_from,
    )
    session.add(revision)
    session.flush()
    return revision


def _view(draft: Draft, head: DraftRevision) -> DraftView:
    return DraftView(
        id=draft.id,
        version=draft.version,
        document=copy.deepcopy(draft.document),
        created_by=draft.created_by,
        created_at=draft.created_at,
        updated_at=draft.updated_at,
        head=head.number,
        title=title_of(draft.document),
    )


def _revision_view(revision: DraftRevision) -> RevisionView:
    return RevisionView(
        id=revision.id,
        draft_id=revision.draft_id,
        number=revision.number,
        author_id=revision.author_id,
        created_at=revision.created_at,
        updated_at=revision.updated_at,
        kind=revision.kind,
        restored_from=revision.restored_from,
        document=copy.deepcopy(revision.document),
    )


def revision_count(session: Session, draft_id: int) -> int:
    """How many revisions the draft has."""
    query = select(func.count()).where(DraftRevision.draft_id == draft_id)
    return int(session.scalar(query) or 0)


# The whole API in one place (validation and changes live in their own modules).
__all__ = [
    "MERGE_WINDOW",
    "Change",
    "DraftConflict",
    "DraftError",
    "DraftNotFound",
    "DraftRefused",
    "DraftSummary",
    "DraftView",
    "FieldProblem",
    "RevisionView",
    "create_draft",
    "diff",
    "get_draft",
    "get_revision",
    "history",
    "issue_from_document",
    "list_drafts",
    "lock_head",
    "restore",
    "revision_by_id",
    "save_draft",
    "validate_document",
]
