"""Tables of the subscriber store (created by migration 0001, never by `create_all`).

Partner, Subscriber, MailingList (table "lists"), Subscription (subscriber x list,
with its own status and consent record) and Suppression (addresses never to be
mailed again, kept as a hash so erased addresses stay suppressed without being kept).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from subscribers.base import Base, UtcDateTime, utcnow


class SubscriberStatus(StrEnum):
    """Whether a person can be mailed at all; only `active` is ever selected."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SubscriptionStatus(StrEnum):
    """Whether a person wants one list; only `active` subscriptions count."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"


def _enum(cls: type[StrEnum]) -> Enum:
    """Store enum values (not names) as short strings; the CHECK lives in the migration."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Partner(Base):
    """A partner organisation whose contacts receive the newsletter."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"Partner({self.id}, {self.name!r}, {self.country})"


class Subscriber(Base):
    """One address. `email_key` (lower-cased) is unique; `email` keeps the original case."""

    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'unsubscribed', 'bounced', 'complained')", name="status"
        ),
        Index("ix_subscribers_country_partner", "country", "partner_id"),
        {"sqlite_autoincrement": True},  # ids are in unsubscribe links: never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str | None] = mapped_column(String(2))
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("partners.id", ondelete="SET NULL"), index=True
    )
    language: Mapped[str] = mapped_column(String(35), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.ACTIVE
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    partner: Mapped[Partner | None] = relationship(lazy="raise")
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )

    def __repr__(self) -> str:
        return f"Subscriber({self.id}, {self.email!r}, {self.status.value})"


class MailingList(Base):
    """A list people subscribe to, addressed by its slug (`newsletter`, `partners-only`).

    `public` (migration 0006): the preferences page offers a public list to anyone
    holding a subscriber's link, and campaigns sent only to public lists appear in the
    public archive. A private list is shown only to the people on it, so they can
    leave it; nobody can join it from the public pages. New lists are private.

    `archived_at` (migration 0007): set when a list that campaigns used is removed. The
    row stays so those campaigns keep their audience (ledger, archive, web copies), but
    an archived list is offered nowhere and nobody can be put on it again.
    """

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Migration 0011: the issue (its file's stem, e.g. `2022-15`) mailed to whoever joins
    # this list through the public sign-up, once they confirm; NULL: none.
    welcome_issue: Mapped[str | None] = mapped_column(String(100))

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def __repr__(self) -> str:
        return f"MailingList({self.id}, {self.slug!r}, {'public' if self.public else 'private'})"


class Subscription(Base):
    """A subscriber on a list, with how and when they consented (and the IP for web sign-ups)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'unsubscribed')", name="status"),
        Index("ix_subscriptions_list_status", "list_id", "status"),
    )

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[SubscriptionStatus] = mapped_column(
        _enum(SubscriptionStatus), default=SubscriptionStatus.ACTIVE
    )
    consent_source: Mapped[str] = mapped_column(String(64))
    consent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unsubscribe_source: Mapped[str | None] = mapped_column(String(64))
    # Double opt-in (migration 0011): the form the person used ("embed:newsletter",
    # "page:all"), the consent sentence it showed, and when and from where the emailed
    # link was confirmed. NULL for subscriptions made any other way.
    consent_form: Mapped[str | None] = mapped_column(String(80))
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    consent_confirm_ip: Mapped[str | None] = mapped_column(String(45))

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions", lazy="raise")
    list: Mapped[MailingList] = relationship(lazy="raise")


class Suppression(Base):
    """An address never to be mailed again, matched by `email_hash`.

    `email` is the address for display; it is NULL for erased subscribers, whose
    entry keeps only the hash.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AudienceKey(Base):
    """The group a person is counted in, kept by the database (triggers, migration 0009).

    One row per person who can be mailed at all (active, not suppressed, on at least
    one list): their country ('' for none), partner id (0 for none) and the ids of the
    lists they are actively on as ",3,7,". Never written by the application.
    """

    __tablename__ = "audience_keys"

    subscriber_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    country: Mapped[str] = mapped_column(String(2))
    partner_id: Mapped[int] = mapped_column(Integer)
    lists: Mapped[str] = mapped_column(Text)


class AudienceCount(Base):
    """How many `AudienceKey` rows share a (country, partner_id, lists) group, kept by the
    database (migration 0009). On PostgreSQL a group may have several signed rows
    (concurrent writers never update one counter): readers sum `people` per group."""

    __tablename__ = "audience_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    partner_id: Mapped[int] = mapped_column(Integer)
    lists: Mapped[str] = mapped_column(Text)
    people: Mapped[int] = mapped_column(Integer)
