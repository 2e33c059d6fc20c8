"""The delivery ledger: one row per (campaign, subscriber), the record of who got what.

Rows are inserted set-based when sending starts (`enqueue`, an INSERT … SELECT over
the audience query, never a Python loop) and carry a snapshot of the recipient, so
the ledger answers "who got issue 15" even after the subscriber changed. Workers
move a row queued -> sending -> sent | retry | failed | skipped (see `mailer.delivery.dispatch`;
skipped: the person unsubscribed, was suppressed or erased after it was queued);
progress and the per-country / partner / time-zone report are read from here.

`next_attempt_at` is the moment anyone may next try the row: the enqueue time for
queued rows, the backoff for retries, and the lease expiry while a worker holds it,
so one indexed condition finds every due row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    and_,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

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


AUDIENCE_COLUMNS = ("subscriber_id", "email", "name", "country", "partner_id", "timezone")


def enqueue(
    session: Session,
    campaign_id: int,
    audience: AnySelect,
    now: datetime,
    *,
    timezones: Collection[str] | None = None,
) -> int:
    """Insert one queued row per audience member not yet in the ledger; return rows added.

    One INSERT … SELECT: the audience is never loaded into Python. `audience` must
    return the labelled columns of `subscribers.audience.audience_query` (subscriber_id,
    email, name, country, partner_id, timezone, and optionally language).
    """
    source = audience.subquery("audience")
    columns = [source.c[name] for name in AUDIENCE_COLUMNS]
    target = ["campaign_id", *AUDIENCE_COLUMNS, "status", "attempts", "next_attempt_at"]
    if "language" in source.c:
        columns.append(source.c.language)
        target.append("language")
    already = exists().where(
        and_(
            LedgerRow.campaign_id == campaign_id, LedgerRow.subscriber_id == source.c.subscriber_id
        )
    )
    rows = select(
        literal(campaign_id, Integer).label("campaign_id"),
        *columns[: len(AUDIENCE_COLUMNS)],
        literal(LedgerStatus.QUEUED.value, String(10)).label("status"),
        literal(0, Integer).label("attempts"),
        literal(now, UTCDateTime()).label("next_attempt_at"),
        *columns[len(AUDIENCE_COLUMNS) :],
    ).where(~already)
    if timezones is not None:
        rows = rows.where(source.c.timezone.in_(sorted(timezones)))
    statement = insert(LedgerRow).from_select(target, rows)
    # psycopg reports -1 for INSERT … SELECT unless SQLAlchemy is told to keep the count.
    result = session.connection().execute(statement.execution_options(preserve_rowcount=True))
    return max(result.rowcount, 0)


@dataclass(frozen=True)
class Tally:
    """Counts of one group of rows (a whole campaign, a country, a partner, a time zone)."""

    key: str
    total: int = 0
    sent: int = 0
    pending: int = 0  # queued or being sent
    retrying: int = 0
    failed: int = 0

    @property
    def skipped(self) -> int:
        """Rows never sent because the person left after they were queued: every row
        in none of the other counts."""
        return self.total - self.sent - self.pending - self.retrying - self.failed

    @property
    def done(self) -> int:
        """Rows settled: sent, failed or skipped."""
        return self.total - self.pending - self.retrying

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.retrying == 0


def _tallies(rows: Iterable[tuple[str, str, int]]) -> dict[str, Tally]:
    """Tallies per key from (key, status, count) rows, the grouped counts below."""
    counts: dict[str, dict[str, int]] = {}
    for key, status, count in rows:
        per_status = counts.setdefault(key, {})
        per_status[status] = per_status.get(status, 0) + int(count)
    return {key: _tally(key, per_status) for key, per_status in counts.items()}


def _tally(key: str, counts: Mapping[str, int]) -> Tally:
    return Tally(
        key,
        total=sum(counts.values()),
        sent=counts.get(LedgerStatus.SENT, 0),
        pending=counts.get(LedgerStatus.QUEUED, 0) + counts.get(LedgerStatus.SENDING, 0),
        retrying=counts.get(LedgerStatus.RETRY, 0),
        failed=counts.get(LedgerStatus.FAILED, 0),
    )


def status_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Rows per status, counted on the index `ix_ledger_due` (campaign, status, …)."""
    rows = session.execute(
        select(LedgerRow.status, func.count())
        .where(LedgerRow.campaign_id == campaign_id)
        .group_by(LedgerRow.status)
    )
    return {str(status): int(count) for status, count in rows}


def open_counts(session: Session, campaign_id: int) -> Tally:
    """Rows still to send (queued, sending, retrying), read from `ix_ledger_due` ranges of
    those statuses only: what a poll needs to notice progress, at a cost that shrinks
    as the campaign completes (sent and failed rows are not read)."""
    rows = session.execute(
        select(LedgerRow.status, func.count())
        .where(
            LedgerRow.campaign_id == campaign_id,
            LedgerRow.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .group_by(LedgerRow.status)
    )
    return _tally("open", {str(status): int(count) for status, count in rows})


def progress(session: Session, campaign_id: int) -> Tally:
    """Where a campaign stands, in one grouped count read from an index."""
    return _tally("all", status_counts(session, campaign_id))


def progress_of(session: Session, campaign_ids: Collection[int]) -> dict[int, Tally]:
    """`progress` of several campaigns in one query (the campaign list)."""
    if not campaign_ids:
        return {}
    rows = session.execute(
        select(LedgerRow.campaign_id, LedgerRow.status, func.count())
        .where(LedgerRow.campaign_id.in_(sorted(campaign_ids)))
        .group_by(LedgerRow.campaign_id, LedgerRow.status)
    )
    tallies = _tallies((str(cid), str(status), int(n)) for cid, status, n in rows)
    return {int(key): tally for key, tally in tallies.items()}


@dataclass(frozen=True)
class Report:
    """Totals and the same counts per country, partner and time zone (the scheduler's waves)."""

    campaign_id: int
    total: Tally
    by_country: list[Tally] = field(default_factory=list)
    by_partner: list[Tally] = field(default_factory=list)
    by_timezone: list[Tally] = field(default_factory=list)


def report(session: Session, campaign_id: int) -> Report:
    """Every breakdown from one grouped count over the covering index `ix_ledger_report`
    (campaign, country, partner, zone, status): a few hundred groups, no table rows read,
    so a page that refreshes while 100,000 rows are sent stays cheap."""
    rows = session.execute(
        select(
            LedgerRow.country,
            LedgerRow.partner_id,
            LedgerRow.timezone,
            LedgerRow.status,
            func.count(),
        )
        .where(LedgerRow.campaign_id == campaign_id)
        .group_by(LedgerRow.country, LedgerRow.partner_id, LedgerRow.timezone, LedgerRow.status)
    ).all()

    def grouped(index: int) -> list[Tally]:
        keyed = (("" if row[index] is None else str(row[index]), row[3], row[4]) for row in rows)
        return [tally for _, tally in sorted(_tallies(keyed).items())]

    return Report(
        campaign_id=campaign_id,
        total=_tally("all", _sum_by_status(rows)),
        by_country=grouped(0),
        by_partner=sorted(grouped(1), key=lambda t: (t.key == "", int(t.key or 0))),
        by_timezone=grouped(2),
    )


def _sum_by_status(rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for *_keys, status, count in rows:
        totals[str(status)] = totals.get(str(status), 0) + int(count)
    return totals


def failures(session: Session, campaign_id: int, chunk: int = 1000) -> Iterator[LedgerRow]:
    """Failed rows of a campaign, streamed in id order (for the CSV export)."""
    last = 0
    while True:
        rows: Sequence[LedgerRow] = session.scalars(
            select(LedgerRow)
            .where(
                LedgerRow.campaign_id == campaign_id,
                LedgerRow.status == LedgerStatus.FAILED,
                LedgerRow.id > last,
            )
            .order_by(LedgerRow.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def deliveries_to(session: Session, email: str) -> list[LedgerRow]:
    """Every ledger row for an address, newest campaign first: "did this person get it?"."""
    return list(
        session.scalars(
            select(LedgerRow)
            .where(func.lower(LedgerRow.email) == email.strip().lower())
            .order_by(LedgerRow.campaign_id.desc())
        )
    )


def failed_or_retrying(session: Session, campaign_id: int, limit: int) -> list[LedgerRow]:
    """The first `limit` failed, then retrying, rows of a campaign (its page lists them)."""
    return list(
        session.scalars(
            select(LedgerRow)
            .where(
                LedgerRow.campaign_id == campaign_id,
                LedgerRow.status.in_([LedgerStatus.FAILED, LedgerStatus.RETRY]),
            )
            .order_by(LedgerRow.status, LedgerRow.id)
            .limit(limit)
        )
    )
