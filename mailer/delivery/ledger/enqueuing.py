"""Putting a campaign's audience into the ledger: one queued row per recipient.

Rows are inserted set-based when sending starts, an INSERT … SELECT over the
audience query, never a Python loop; recipients already in the ledger are left
alone, so enqueueing twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Integer, String, and_, exists, insert, literal, select
from sqlalchemy.orm import Session

from mailer.delivery.ledger.rows import AnySelect, LedgerRow, LedgerStatus
from mailer.timestamps import UTCDateTime

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
