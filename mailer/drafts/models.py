"""The tables of drafts and their revisions (migration 0013)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.timestamps import UTCDateTime
from subscribers.base import Base


class RevisionKind(StrEnum):
    """How a revision came to be: what the history page says about it."""

    SAVE = "save"
    AUTOSAVE = "autosave"
    RESTORE = "restore"
    IMPORT = "import"


class Draft(Base):
    """A draft: its current document and the version a save must start from."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    head_revision_id: Mapped[int | None] = mapped_column(
        Integer,
        ForeignKey("draft_revisions.id", ondelete="SET NULL", use_alter=True),
    )


class DraftRevision(Base):
    """One save of a draft, whole; `number` counts 1..n within its draft."""

    __tablename__ = "draft_revisions"
    __table_args__ = (UniqueConstraint("draft_id", "number", name="uq_draft_revisions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    draft_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    author_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    restored_from: Mapped[int | None] = mapped_column(Integer)
