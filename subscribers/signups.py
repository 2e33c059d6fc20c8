"""Public sign-ups with double opt-in: pending requests, their throttle, and confirming.

A sign-up is a request, not a subscriber: the row (table `signups`, migration 0011)
keeps what the form sent until the person confirms with the emailed link, and only
then does the address become a subscriber (or an unsubscribed one active again) with
a consent record on each list. Unconfirmed rows expire and are purged; a confirmed
row keeps no personal data (the subscription holds the consent), only its lists and
times, for the per-week counts operators see.

`signup_throttle` counts requests per client address and per email address (by hash)
in fixed windows, in the database like the login throttle, and remembers when a
confirmation was last mailed to an address, for the cooldown.

Store logic only: the staff's counts are `subscribers.signup_counts`; tokens, mail and
pages are `mailer.people.signup_tokens`, `mailer.people.signups`, `mailer.web.signup`
and `mailer.web.signup_staff`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from subscribers import repository
from subscribers.base import Base, UtcDateTime, utcnow
from subscribers.models import MailingList, SubscriberStatus
from subscribers.suppression import is_suppressed
from subscribers.validation import email_key

MAX_FORM = 80


class SignupStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"


class Signup(Base):
    """One request to join lists, waiting for its emailed link to be confirmed."""

    __tablename__ = "signups"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'confirmed')", name="status"),
        Index("ix_signups_status_expires", "status", "expires_at"),
        {"sqlite_autoincrement": True},  # ids are in confirmation links: never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Blanked (NULL) once confirmed: the subscriber and subscription hold them then.
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(16), default=SignupStatus.PENDING.value)
    form: Mapped[str] = mapped_column(String(MAX_FORM))  # "page:newsletter", "embed:events"
    consent_text: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(45))
    nonce: Mapped[str] = mapped_column(String(32))  # signed into the link: one row, one link
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    lists: Mapped[list[SignupList]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )

    @property
    def source(self) -> str:
        """`signup-page` or `signup-embed`: the subscription's consent source."""
        return "signup-embed" if self.form.startswith("embed:") else "signup-page"

    def expired(self, now: datetime) -> bool:
        return self.status == SignupStatus.PENDING.value and self.expires_at <= now


class SignupList(Base):
    __tablename__ = "signup_lists"

    signup_id: Mapped[int] = mapped_column(
        ForeignKey("signups.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    list: Mapped[MailingList] = relationship(lazy="selectin")


class SignupThrottle(Base):
    """Requests counted under `ip:<address>` or `address:<hash>` in a fixed window, and
    (for an address) when a confirmation was last mailed to it."""

    __tablename__ = "signup_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_mailed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# --- throttle ----------------------------------------------------------------------------


def ip_key(ip: str) -> str:
    return f"ip:{ip[:90]}"


def address_key(email: str) -> str:
    """By hash, so the throttle keeps no address; `email` is already normalised."""
    return f"address:{hashlib.sha256(email_key(email).encode()).hexdigest()[:64]}"


def count_attempt(
    session: Session, key: str, *, limit: int, window: timedelta, now: datetime | None = None
) -> float:
    """Count one request under `key`; 0 when within `limit` per `window`, else the
    seconds until the window ends (the request is refused and not counted)."""
    now = now or utcnow()
    row = session.get(SignupThrottle, key, with_for_update=True)
    if row is None:
        row = SignupThrottle(key=key, window_start=now, attempts=0)
        session.add(row)
    elif now - row.window_start >= window:
        row.window_start, row.attempts = now, 0
    if row.attempts >= limit:
        return max(1.0, (row.window_start + window - now).total_seconds())
    row.attempts += 1
    session.flush()
    return 0.0


def mailed_within(session: Session, email: str, cooldown: timedelta, now: datetime) -> bool:
    """Whether a confirmation went to `email` less than `cooldown` ago."""
    row = session.get(SignupThrottle, address_key(email))
    return (
        row is not None and row.last_mailed_at is not None and now - row.last_mailed_at < cooldown
    )


def mark_mailed(session: Session, email: str, at: datetime | None) -> None:
    """Record (or, with None, forget: the mail could not be sent) the last confirmation."""
    key = address_key(email)
    row = session.get(SignupThrottle, key)
    if row is None:
        if at is None:
            return
        row = SignupThrottle(key=key, window_start=at, attempts=0)
        session.add(row)
    row.last_mailed_at = at
    session.flush()


# --- requests ------------------------------------------------------------------------------


def offered_lists(session: Session) -> Sequence[MailingList]:
    """The lists anyone may join from the public pages: public and not archived."""
    return session.scalars(
        select(MailingList)
        .where(MailingList.public.is_(True), MailingList.archived_at.is_(None))
        .order_by(MailingList.name, MailingList.slug)
    ).all()


def mailable(session: Session, email: str) -> bool:
    """Whether a confirmation may be sent at all: never to a suppressed (or erased)
    address, nor to one that bounced or complained."""
    if is_suppressed(session, email):
        return False
    subscriber = repository.find_subscriber(session, email)
    return subscriber is None or subscriber.status not in (
        SubscriberStatus.BOUNCED,
        SubscriberStatus.COMPLAINED,
    )


def create_pending(
    session: Session,
    *,
    email: str,
    name: str,
    country: str | None,
    language: str | None,
    lists: Sequence[MailingList],
    form: str,
    consent_text: str,
    ip: str | None,
    expires_after: timedelta,
    now: datetime | None = None,
) -> Signup:
    """A new pending request; an older pending one for the address is replaced, so only
    the newest link works."""
    now = now or utcnow()
    key = email_key(email)
    session.execute(
        delete(Signup).where(Signup.email_key == key, Signup.status == SignupStatus.PENDING.value)
    )
    signup = Signup(
        email=email,
        email_key=key,
        name=name,
        country=country,
        language=language,
        status=SignupStatus.PENDING.value,
        form=form[:MAX_FORM],
        consent_text=consent_text,
        ip=ip,
        nonce=secrets.token_hex(16),
        created_at=now,
        expires_at=now + expires_after,
        lists=[SignupList(list_id=lst.id) for lst in lists],
    )
    session.add(signup)
    session.flush()
    return signup


def get_signup(session: Session, signup_id: int) -> Signup | None:
    return session.get(Signup, signup_id)


def discard(session: Session, signup_id: int) -> None:
    """Delete a request (its confirmation could not be sent)."""
    session.execute(delete(Signup).where(Signup.id == signup_id))


@dataclass(frozen=True)
class Confirmed:
    subscriber_id: int | None  # None: refused (suppressed, bounced or complained meanwhile)
    lists: tuple[str, ...]


def confirm(
    session: Session, signup: Signup, *, ip: str | None, now: datetime | None = None
) -> Confirmed:
    """Make the request's subscriptions active with the consent record: the form, the
    request's time and IP, the consent text it showed, and this confirmation's time and IP.

    Lists no longer public (or archived) are left out; when none is left, or the address
    was suppressed, bounced or complained about since the request, nothing is
    subscribed and the request is deleted (`subscriber_id` None). An existing
    subscriber keeps their name and details; an unsubscribed one becomes active again.
    The request keeps no personal data afterwards.
    """
    now = now or utcnow()
    assert signup.email is not None and signup.status == SignupStatus.PENDING.value
    email = signup.email
    offered = {lst.id for lst in offered_lists(session)}
    slugs = tuple(item.list.slug for item in signup.lists if item.list_id in offered)
    if not mailable(session, email) or not slugs:
        session.delete(signup)  # nothing to confirm any more: the link dies with it
        session.flush()
        return Confirmed(None, ())
    subscriber = repository.find_subscriber(session, email)
    if subscriber is None:
        subscriber = repository.add_subscriber(
            session,
            email,
            name=signup.name,
            country=signup.country,
            language=signup.language,
        )
    elif subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.updated_at = now
    for slug in slugs:
        subscription = repository.subscribe(
            session,
            subscriber.id,
            slug,
            source=signup.source,
            ip=signup.ip,
            at=signup.created_at,
        )
        subscription.consent_form = signup.form
        subscription.consent_text = signup.consent_text
        subscription.consent_confirmed_at = now
        subscription.consent_confirm_ip = ip
    signup.status = SignupStatus.CONFIRMED.value
    signup.confirmed_at = now
    signup.email = signup.email_key = signup.ip = signup.consent_text = None
    signup.name, signup.country, signup.language = "", None, None
    session.flush()
    return Confirmed(subscriber.id, slugs)


# --- housekeeping and reports --------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    signups: int
    throttle_rows: int


def purge_unconfirmed(session: Session, *, keep_days: int, now: datetime | None = None) -> Purged:
    """Delete requests never confirmed within `keep_days` days, and throttle rows whose
    window and cooldown ended more than a day ago. Idempotent."""
    now = now or utcnow()
    cutoff = now - timedelta(days=keep_days)
    stale = session.execute(
        delete(Signup).where(
            Signup.status == SignupStatus.PENDING.value,
            or_(Signup.expires_at <= now, Signup.created_at <= cutoff),
        )
    )
    old = now - timedelta(days=max(keep_days, 1))
    throttle = session.execute(
        delete(SignupThrottle).where(
            SignupThrottle.window_start <= old,
            or_(SignupThrottle.last_mailed_at.is_(None), SignupThrottle.last_mailed_at <= old),
        )
    )
    session.flush()
    return Purged(int(stale.rowcount or 0), int(throttle.rowcount or 0))  # type: ignore[attr-defined]


def forget(session: Session, email: str) -> int:
    """Delete pending requests for `email` (an erasure); confirmed ones hold no address."""
    result = session.execute(delete(Signup).where(Signup.email_key == email_key(email)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def export(session: Session, email: str) -> list[dict[str, object]]:
    """Pending requests for `email`, JSON-ready (a data-protection export)."""
    rows = session.scalars(select(Signup).where(Signup.email_key == email_key(email))).all()
    return [
        {
            "requested_at": s.created_at.isoformat(),
            "expires_at": s.expires_at.isoformat(),
            "form": s.form,
            "lists": [item.list.slug for item in s.lists],
            "name": s.name,
            "country": s.country,
            "ip": s.ip,
            "consent_text": s.consent_text,
        }
        for s in rows
    ]
