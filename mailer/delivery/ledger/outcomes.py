"""Recording what happened to claimed rows: sent, retry or failed, and the suppression
of an address the server said does not exist, in one transaction.

A worker records outcomes in groups, each group one statement: on PostgreSQL one
UPDATE … FROM (VALUES …) (one round trip instead of one per row), on SQLite the
driver's own executemany (SQLAlchemy's per-statement work cost more than SQLite's
for these few rows). Both go through the DB-API driver, below SQLAlchemy, because
this runs every few messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.orm import Session

from mailer.delivery.ledger.claims import Job
from mailer.delivery.ledger.rows import LedgerStatus
from mailer.timestamps import UTCDateTime

#: The longest SMTP reply kept in `last_reply`.
MAX_REPLY = 1000


@dataclass(frozen=True)
class Outcome:
    """What happened to a job: its new status, the server's reply, and for a retry
    when it is next due (the worker's backoff)."""

    job: Job
    status: LedgerStatus
    reply: str
    message_id: str | None = None
    suppress: bool = False  # 5.1.x: the address does not exist
    retry_at: datetime | None = None


# (id, status, reply, message_id, sent_at, retry_at), timestamps as the driver takes them
Row = tuple[int, str, str, str | None, Any, Any]

_POSTGRES_ROW = "(%s::bigint, %s, %s, %s, %s::timestamp, %s::timestamp)"
_POSTGRES_UPDATE = (
    "UPDATE ledger SET status = v.status, last_reply = v.reply, message_id = v.message_id,"
    " sent_at = v.sent_at, next_attempt_at = v.retry_at, lease_until = NULL"
)
_SQLITE_UPDATE = (
    "UPDATE ledger SET status = ?, last_reply = ?, message_id = ?, sent_at = ?,"
    " next_attempt_at = ?, lease_until = NULL WHERE id = ?"
)


def record_postgresql(connection: Connection, rows: Sequence[Row]) -> None:
    """All outcomes in one UPDATE … FROM (VALUES …): one round trip instead of one per row."""
    values = ", ".join([_POSTGRES_ROW] * len(rows))  # placeholders only; values are bound
    columns = "(id, status, reply, message_id, sent_at, retry_at)"
    statement = f"{_POSTGRES_UPDATE} FROM (VALUES {values}) AS v {columns} WHERE ledger.id = v.id"
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:  # psycopg's own: no SQLAlchemy layer per commit
        cursor.execute(statement, [value for row in rows for value in row])


def record_sqlite(connection: Connection, rows: Sequence[Row]) -> None:
    """The driver's own executemany, inside the caller's transaction."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.executemany(_SQLITE_UPDATE, [(*row[1:], row[0]) for row in rows])


def timestamp_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    """An aware datetime as `UTCDateTime` binds it on this dialect (SQLite: its text form)."""
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None  # a TypeDecorator with process_bind_param always has one
    return bind


def as_rows(
    outcomes: Sequence[Outcome], now: datetime, stamp: Callable[[datetime], Any]
) -> list[Row]:
    """The outcomes as the statements take them (sent at `now`)."""
    sent_at = stamp(now)
    return [
        (
            outcome.job.row_id,
            outcome.status.value,
            outcome.reply[:MAX_REPLY],
            outcome.message_id,
            sent_at if outcome.status == LedgerStatus.SENT else None,
            stamp(outcome.retry_at) if outcome.retry_at is not None else None,
        )
        for outcome in outcomes
    ]


def record(
    connection: Connection,
    outcomes: Sequence[Outcome],
    now: datetime,
    stamp: Callable[[datetime], Any],
) -> None:
    """Write `outcomes` (sent at `now`) and their suppressions, inside the caller's
    transaction on `connection`; `stamp` is `timestamp_binder` of its dialect."""
    rows = as_rows(outcomes, now, stamp)
    if connection.dialect.name == "postgresql":
        record_postgresql(connection, rows)
    else:
        record_sqlite(connection, rows)
    suppressed = [o for o in outcomes if o.suppress]
    if suppressed:
        from subscribers.suppression import suppress

        with Session(bind=connection) as session:
            for outcome in suppressed:
                reason = f"bounced: {outcome.reply}"[:200]
                suppress(session, outcome.job.email, reason)
            session.flush()
