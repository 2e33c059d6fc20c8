"""The media library: photos editors uploaded, one row each, for reuse in issues.

An upload is checked and cleaned by `media.prepare_upload` (no metadata survives), kept
in the media folder under the hash of its bytes by `MediaStore`, and recorded here (its
original file name, size, type, who uploaded it and when), so the library page can
list it and the web app can tell an upload, which the public may not see until it is
used, from the copies the renderer makes for emails. The same photo uploaded twice is
one row: the first upload's record stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from mailer.authoring.media import MediaStore, UploadLimits, prepare_upload
from subscribers.base import Base, UtcDateTime, utcnow

MAX_FILENAME = 255


class MediaItem(Base):
    """One uploaded photo (migration 0014)."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    original_filename: Mapped[str] = mapped_column(String(MAX_FILENAME), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(64), nullable=False)
    uploaded_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, default=utcnow)

    @property
    def name(self) -> str:
        """The stored file's name, as in its /media/ URL."""
        return self.hash + (".png" if self.content_type == "image/png" else ".jpg")


@dataclass(frozen=True)
class Added:
    item: MediaItem
    created: bool  # False: the same photo was in the library already


def add_upload(
    session: Session,
    store: MediaStore,
    data: bytes,
    filename: str,
    content_type: str | None,
    limits: UploadLimits,
    *,
    user_id: int | None,
) -> Added:
    """Check, clean and keep an uploaded photo; the caller commits.

    Raises `media.UploadError` (naming the file) when the photo is refused; nothing is
    stored then.
    """
    prepared = prepare_upload(data, filename, content_type, limits)
    existing = find_media(session, prepared.hash)
    if existing is not None:
        store.store(prepared)  # the file may have been removed by hand: put it back
        return Added(existing, created=False)
    store.store(prepared)
    item = MediaItem(
        hash=prepared.hash,
        original_filename=filename[:MAX_FILENAME],
        width=prepared.width,
        height=prepared.height,
        bytes=len(prepared.data),
        content_type=prepared.content_type,
        uploaded_by=user_id,
        uploaded_at=utcnow(),
    )
    try:
        with session.begin_nested():  # the same photo uploaded twice at once: one row
            session.add(item)
    except IntegrityError:
        raced = find_media(session, prepared.hash)
        if raced is None:
            raise
        return Added(raced, created=False)
    return Added(item, created=True)


def list_media(session: Session) -> list[MediaItem]:
    """Every upload, newest first."""
    return list(
        session.scalars(select(MediaItem).order_by(MediaItem.uploaded_at.desc(), MediaItem.id))
    )


def find_media(session: Session, hash_: str) -> MediaItem | None:
    return session.scalars(select(MediaItem).where(MediaItem.hash == hash_)).one_or_none()


def find_by_filename(session: Session, filename: str) -> MediaItem | None:
    """The upload a /media/ file name belongs to, or None (a copy the renderer made)."""
    stem, dot, _suffix = filename.partition(".")
    if not dot or not stem:
        return None
    item = find_media(session, stem)
    return item if item is not None and item.name == filename else None


def delete_media(session: Session, store: MediaStore, item: MediaItem) -> None:
    """Forget an upload and delete its file (the row first: a failed commit keeps both).

    Whether it is still used is the caller's question (`mailer.app.media.where_used`).
    """
    name = item.name
    session.delete(item)
    session.commit()
    store.remove(name)
