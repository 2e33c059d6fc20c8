"""Data-protection requests across the subscriber store and the delivery ledger.

The store (`subscribers.privacy`) knows only its own tables; the ledger keeps a
snapshot of every recipient (address, name) per campaign. Both the CLI and the web
app go through here so that an access request shows, and an erasure blanks, both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session

from mailer.delivery.ledger import OPEN_STATUSES, LedgerRow, LedgerStatus, deliveries_to
from subscribers.privacy import Erasure, erase, export_person

ERASED_ADDRESS = "erased@invalid"


def forget_deliveries(session: Session, subscriber_id: int | None, email: str) -> int:
    """Blank the ledger's snapshot of an erased person; rows not yet sent fail.

    A `subscribers.privacy.Forgetter`, passed to `erase(..., also_forget=[...])`.
    """
    match = func.lower(LedgerRow.email) == email.lower()
    if subscriber_id is not None:
        match = or_(match, LedgerRow.subscriber_id == subscriber_id)
    session.execute(
        update(LedgerRow)
        .where(match, LedgerRow.status.in_([s.value for s in OPEN_STATUSES]))
        .values(status=LedgerStatus.FAILED.value, last_reply="subscriber erased")
    )
    result = session.execute(update(LedgerRow).where(match).values(email=ERASED_ADDRESS, name=None))
    return int(getattr(result, "rowcount", 0) or 0)


def erase_person(
    session: Session, email: str, *, reason: str = "erased at the person's request"
) -> Erasure:
    """Delete the person from the store, keep only a hash on suppression, blank the ledger."""
    return erase(session, email, reason=reason, also_forget=[forget_deliveries])


def export_everything(session: Session, email: str) -> dict[str, Any]:
    """What the store holds about an address, plus every delivery made to it."""
    data = export_person(session, email)
    data["deliveries"] = [
        {
            "campaign_id": row.campaign_id,
            "status": row.status,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "message_id": row.message_id,
            "name": row.name,
        }
        for row in deliveries_to(session, data["email"])
    ]
    return data
