"""Data-protection requests across the subscriber store and the delivery ledger.

The store (`subscribers.privacy`) knows only its own tables; the ledger keeps a
snapshot of every recipient (address, name) per campaign. Both the CLI and the web
app go through here so that an access request shows, and an erasure blanks, both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mailer.delivery import ledger
from subscribers.privacy import Erasure, erase, export_person

ERASED_ADDRESS = "erased@invalid"


def forget_deliveries(session: Session, subscriber_id: int | None, email: str) -> int:
    """Blank the ledger's snapshot of an erased person; rows not yet sent fail.

    A `subscribers.privacy.Forgetter`, passed to `erase(..., also_forget=[...])`.
    """
    return ledger.forget(session, subscriber_id, email, ERASED_ADDRESS)


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
        for row in ledger.deliveries_to(session, data["email"])
    ]
    return data
