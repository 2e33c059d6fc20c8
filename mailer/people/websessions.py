"""Signed-in sessions of the web app, kept on the server.

The browser's cookie is signed, so nobody can forge one, but a signed cookie alone
stays valid until it expires: "Sign out" could only ask the browser to forget it,
and a copy (a shared computer, a proxy log) went on working. So every sign-in gets a
row here; the cookie carries a random token, the table only its SHA-256, and signing
out deletes the row. "Sign out everywhere" deletes all of a user's rows, and removing
a user deletes theirs (ON DELETE CASCADE).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from subscribers.base import Base


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def start(session: Session, user_id: int, max_age: float) -> str:
    """A new session for `user_id`; its token goes into the signed cookie. Sessions of
    anyone that have outlived `max_age` are deleted on the way."""
    now = datetime.now(UTC)
    session.execute(
        delete(WebSession).where(WebSession.created_at < now - timedelta(seconds=max_age))
    )
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_hash(token), user_id=user_id, created_at=now))
    return token


def user_of(session: Session, token: object, max_age: float) -> int | None:
    """The user id of a live session, or None (unknown, ended or expired token)."""
    if not isinstance(token, str) or not token:
        return None
    row = session.scalars(select(WebSession).where(WebSession.token_hash == _hash(token))).first()
    if row is None or _utc(row.created_at) < datetime.now(UTC) - timedelta(seconds=max_age):
        return None
    return row.user_id


def end(session: Session, token: object) -> None:
    if isinstance(token, str) and token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def end_others(session: Session, user_id: int, keep: object) -> int:
    """End every session of `user_id` but the one with token `keep`; how many ended."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if isinstance(keep, str) and keep:
        query = query.where(WebSession.token_hash != _hash(keep))
    result = session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


def count(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)
        )
        or 0
    )
