"""What the ledger does when a person's story changes after the send: a message that
bounces later counts as failed; an erased person's snapshot is blanked.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from mailer.delivery.ledger.outcomes import MAX_REPLY
from mailer.delivery.ledger.rows import OPEN_STATUSES, LedgerRow, LedgerStatus


def mark_bounced(session: Session, campaign_id: int, subscriber_id: int, reply: str) -> bool:
    """A sent row whose message bounced later counts as failed; True if one changed."""
    changed = session.execute(
        update(LedgerRow)
        .where(
            LedgerRow.campaign_id == campaign_id,
            LedgerRow.subscriber_id == subscriber_id,
            LedgerRow.status == LedgerStatus.SENT.value,
        )
        .values(status=LedgerStatus.FAILED.value, last_reply=reply[:MAX_REPLY])
    )
    return bool(getattr(changed, "rowcount", 0))


def _of_person(subscriber_id: int | None, email: str) -> ColumnElement[bool]:
    """The person's rows: by subscriber id, or by address (any case)."""
    match = func.lower(LedgerRow.email) == email.lower()
    if subscriber_id is not None:
        match = or_(match, LedgerRow.subscriber_id == subscriber_id)
    return match


def count_of_person(session: Session, subscriber_id: int | None, email: str) -> int:
    """How many rows `forget` would blank (what erasing the person takes away)."""
    count = session.scalar(
        select(func.count()).select_from(LedgerRow).where(_of_person(subscriber_id, email))
    )
    return int(count or 0)


def forget(session: Session, subscriber_id: int | None, email: str, erased_address: str) -> int:
    """Blank the snapshot (address `erased_address`, no name) of every row of the person
    (by subscriber id or address); rows not yet sent fail. Returns the rows blanked."""
    match = _of_person(subscriber_id, email)
    session.execute(
        update(LedgerRow)
        .where(match, LedgerRow.status.in_([s.value for s in OPEN_STATUSES]))
        .values(status=LedgerStatus.FAILED.value, last_reply="subscriber erased")
    )
    result = session.execute(update(LedgerRow).where(match).values(email=erased_address, name=None))
    return int(getattr(result, "rowcount", 0) or 0)
