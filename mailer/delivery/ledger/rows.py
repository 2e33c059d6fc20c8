"""The ledger's table: one row per (campaign, subscriber), the record of who got what.

Each row carries a snapshot of the recipient, so the ledger answers "who got issue
15" even after the subscriber changed. A row moves queued -> sending -> sent | retry
| failed | skipped (skipped: the person unsubscribed, was suppressed or erased after
it was queued). `next_attempt_at` is the moment anyone may next try the row: the
enqueue time for queued rows, the backoff for retries, and the lease expiry while a
worker holds it, so one indexed condition finds every due row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias, cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailer.timestamps import UTCDateTime
from subscribers.base import Base

#: Any SELECT, whatever its columns (SQLAlchemy 2.1 types Select by its row tuple).
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


class LedgerStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"  # not sent: the person left after the row was queued (reason kept)


#: Rows a worker may still have to send.
OPEN_STATUSES = (LedgerStatus.QUEUED, LedgerStatus.SENDING, LedgerStatus.RETRY)


class LedgerRow(Base):
    """One recipient of one campaign, with a snapshot of the address it was sent to."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_ledger_campaign_subscriber"),
        Index("ix_ledger_due", "campaign_id", "status", "next_attempt_at"),
        Index("ix_ledger_subscriber", "subscriber_id"),
        # Covers the progress report's grouped count (migration 0008).
        Index("ix_ledger_report", "campaign_id", "country", "partner_id", "timezone", "status"),
        # Covers the report's count per language (migration 0015).
        Index("ix_ledger_language", "campaign_id", "language", "status"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
    )
    # No foreign key: the ledger is history and outlives an erased subscriber row.
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    name: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(2))
    partner_id: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=LedgerStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(100))
    last_reply: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


#: The table itself, for Core statements (the worker's claims and outcomes).
LEDGER = cast(Table, LedgerRow.__table__)
