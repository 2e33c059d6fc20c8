"""A worker's hold on ledger rows: claiming due rows, renewing the lease, giving rows
back untried, skipping those whose person left, and making retries due at once.

A claim takes a batch of due rows (queued; retry whose time has come; sending whose
lease expired because a worker died) in one UPDATE … WHERE id IN (SELECT …) and marks
them sending, leased to the worker until `lease_until` (also their `next_attempt_at`,
so the due-row index finds them again if the worker dies). On PostgreSQL the SELECT
is FOR UPDATE SKIP LOCKED, so any number of workers on any number of machines never
take the same row; on SQLite the same single statement runs inside SQLite's one
write lock. Every later write names the worker, so a row taken back by another
worker after an expired lease is never touched by the first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from mailer.delivery.ledger.rows import LEDGER, OPEN_STATUSES, LedgerStatus


@dataclass(frozen=True)
class Job:
    """A claimed row: who to send to, and how many attempts it has had (this one too)."""

    row_id: int
    campaign_id: int
    subscriber_id: int
    email: str
    name: str | None
    attempts: int
    language: str | None = None  # the recipient's, for their variant of the issue


def _due(campaign_ids: Collection[int], now: datetime, limit: int) -> Any:
    """Ids of up to `limit` due rows of those campaigns (on `ix_ledger_due`)."""
    return (
        select(LEDGER.c.id)
        .where(
            LEDGER.c.campaign_id.in_(sorted(campaign_ids)),
            LEDGER.c.status.in_([s.value for s in OPEN_STATUSES]),
            LEDGER.c.next_attempt_at <= now,
        )
        .limit(limit)
    )


def _take(due: Any, worker: str, lease_until: datetime) -> Update:
    """Mark the `due` rows sending, leased to `worker`, one more attempt; return them."""
    return (
        update(LEDGER)
        .where(LEDGER.c.id.in_(due.scalar_subquery()))
        .values(
            status=LedgerStatus.SENDING.value,
            worker=worker,
            lease_until=lease_until,
            next_attempt_at=lease_until,
            attempts=LEDGER.c.attempts + 1,
        )
        .returning(
            LEDGER.c.id,
            LEDGER.c.campaign_id,
            LEDGER.c.subscriber_id,
            LEDGER.c.email,
            LEDGER.c.name,
            LEDGER.c.attempts,
            LEDGER.c.language,
        )
    )


def claim_postgresql(
    session: Session,
    campaign_ids: Collection[int],
    worker: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
) -> list[Job]:
    """The claim on PostgreSQL: rows another worker is claiming are skipped, not waited
    for (FOR UPDATE SKIP LOCKED)."""
    due = _due(campaign_ids, now, limit).with_for_update(skip_locked=True)
    rows = session.execute(_take(due, worker, lease_until)).all()
    return sorted((Job(*row) for row in rows), key=lambda job: job.row_id)


def claim_sqlite(
    session: Session,
    campaign_ids: Collection[int],
    worker: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
) -> list[Job]:
    """The claim on SQLite: one statement, inside SQLite's single write lock."""
    rows = session.execute(_take(_due(campaign_ids, now, limit), worker, lease_until)).all()
    return sorted((Job(*row) for row in rows), key=lambda job: job.row_id)


def _held(ids: Collection[int], worker: str) -> Any:
    """The rows of `ids` still sending under `worker`'s lease."""
    return update(LEDGER).where(
        LEDGER.c.id.in_(sorted(ids)),
        LEDGER.c.status == LedgerStatus.SENDING.value,
        LEDGER.c.worker == worker,
    )


def renew(session: Session, worker: str, ids: Collection[int], until: datetime) -> set[int]:
    """Extend `worker`'s lease on the rows it still holds; return their ids (a row taken
    by another worker after the lease ran out, or recorded since, is not among them)."""
    if not ids:
        return set()
    held = _held(ids, worker).values(lease_until=until, next_attempt_at=until)
    return set(session.scalars(held.returning(LEDGER.c.id)))


def release(session: Session, worker: str, ids: Collection[int], now: datetime) -> None:
    """Give rows back untried (their campaign was paused, or the worker is stopping):
    queued again, due now, the attempt not counted."""
    if not ids:
        return
    session.execute(
        _held(ids, worker).values(
            status=LedgerStatus.QUEUED.value,
            attempts=LEDGER.c.attempts - 1,
            next_attempt_at=now,
            lease_until=None,
        )
    )


def skip(session: Session, worker: str, reasons: Mapping[int, str]) -> None:
    """Record `skipped`, with the reason, rows whose person left after they were queued
    (row id -> reason); never tried, so the attempt is not counted."""
    by_reason: dict[str, list[int]] = {}
    for row_id, reason in reasons.items():
        by_reason.setdefault(reason, []).append(row_id)
    for reason, ids in sorted(by_reason.items()):
        session.execute(
            _held(ids, worker).values(
                status=LedgerStatus.SKIPPED.value,
                last_reply=reason,
                attempts=LEDGER.c.attempts - 1,  # never tried
                next_attempt_at=None,
                lease_until=None,
            )
        )


def retry_now(session: Session, campaign_id: int, now: datetime) -> None:
    """Make the campaign's rows waiting for a retry due at once (it was resumed)."""
    session.execute(
        update(LEDGER)
        .where(
            LEDGER.c.campaign_id == campaign_id,
            LEDGER.c.status == LedgerStatus.RETRY.value,
        )
        .values(next_attempt_at=now)
    )


def take_back(session: Session, worker: str, campaign_ids: Any, now: datetime) -> int:
    """Make due at once the rows `worker` (known to be dead) still holds in the
    campaigns of `campaign_ids` (a subquery); return how many. The normal claim then
    picks them up; the attempt stays counted."""
    result = session.connection().execute(
        update(LEDGER)
        .where(
            LEDGER.c.campaign_id.in_(campaign_ids),
            LEDGER.c.status == LedgerStatus.SENDING.value,
            LEDGER.c.worker == worker,
        )
        .values(next_attempt_at=now, lease_until=now)
    )
    return int(result.rowcount or 0)
