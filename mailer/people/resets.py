"""Password reset by email: single-use links that expire, and the message carrying one.

The link holds a random token (256 bits); the table keeps only its SHA-256, so a copy of
the database opens no account. A token is valid until `expires_at` and for one use:
using it deletes every reset link of that user, and a new password ends every session
(the web layer does that, with `websessions`). Expired rows are deleted whenever a new
link is made.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from mailer.delivery.message import address_header
from subscribers.base import Base


class PasswordReset(Base):
    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def issue(
    session: Session, user_id: int, max_age_seconds: float, now: datetime | None = None
) -> str:
    """A new reset token for `user_id`, valid for `max_age_seconds`; earlier ones of the
    same user stay valid until used or expired (two mails may cross)."""
    now = now or _now()
    session.execute(delete(PasswordReset).where(PasswordReset.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            user_id=user_id,
            token_hash=_hash(token),
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_seconds),
        )
    )
    session.flush()
    return token


def user_of(session: Session, token: str, now: datetime | None = None) -> int | None:
    """The user a valid (known, unused, unexpired) token resets, or None."""
    if not token or len(token) > 100:
        return None
    row = session.scalars(
        select(PasswordReset).where(PasswordReset.token_hash == _hash(token))
    ).first()
    if row is None or _utc(row.expires_at) <= (now or _now()):
        return None
    return row.user_id


def consume(session: Session, token: str, now: datetime | None = None) -> int | None:
    """Use a token: its user, with every reset link of theirs deleted; None if not valid.

    The delete of this token's row is the check, so two posts racing with one link
    cannot both set a password.
    """
    user_id = user_of(session, token, now)
    if user_id is None:
        return None
    result = session.execute(delete(PasswordReset).where(PasswordReset.token_hash == _hash(token)))
    if not int(getattr(result, "rowcount", 0) or 0):
        return None
    session.execute(delete(PasswordReset).where(PasswordReset.user_id == user_id))
    return user_id


def link(base_url: str, token: str) -> str:
    return f"{base_url}/login/reset/{quote(token, safe='')}"


def message(
    *,
    to: str,
    name: str,
    sender_name: str,
    sender_address: str,
    site: str,
    url: str,
    minutes: int,
    domain: str,
    now: datetime | None = None,
) -> tuple[bytes, bool]:
    """The reset email (plain text) as bytes, and whether it needs SMTPUTF8."""
    mail = EmailMessage()
    # Names are set raw and written as given: encoded words never split a grapheme.
    mail.set_raw("From", address_header(sender_name, sender_address))
    mail.set_raw("To", address_header(name, to))
    mail["Subject"] = f"Reset your password for {site}"
    mail["Date"] = format_datetime(now or _now())
    mail["Message-ID"] = make_msgid("reset", domain=domain)
    mail["Auto-Submitted"] = "auto-generated"
    greeting = f"Hello {name}," if name else "Hello,"
    mail.set_content(
        f"{greeting}\n\n"
        f"Someone (we hope you) asked to reset the password of {to} for {site}.\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n"
        f"{url}\n\n"
        "The link works once. Setting a new password signs you out everywhere.\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
    needs_utf8 = not (to.isascii() and sender_address.isascii())
    chosen = SMTPUTF8 if needs_utf8 else SMTP
    return mail.as_bytes(policy=chosen.clone(refold_source="none")), needs_utf8
