"""Data-protection requests: everything held about one address, and erasure.

Erasure deletes the subscriber and their subscriptions and leaves a hash-only
suppression entry, so the address is never mailed (or re-imported) again while
the address itself is no longer kept. Other parts of the service that keep
copies (the delivery ledger's snapshot) pass an `also_forget` callback, since
this package never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers import signups
from subscribers.models import Partner, Subscriber, Suppression
from subscribers.repository import find_subscriber, subscriptions_of
from subscribers.suppression import suppress
from subscribers.validation import email_hash, normalise_email

#: Called with (session, subscriber id or None, normalised address); returns rows changed.
Forgetter = Callable[[Session, int | None, str], int]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def subscriber_record(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """A subscriber's own fields, JSON-ready (the CLI's --json output uses it too)."""
    partner = session.get(Partner, subscriber.partner_id) if subscriber.partner_id else None
    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "name": subscriber.name,
        "country": subscriber.country,
        "partner": partner.name if partner else None,
        "language": subscriber.language,
        "timezone": subscriber.timezone,
        "status": subscriber.status.value,
        "attributes": subscriber.attributes,
        "created_at": _iso(subscriber.created_at),
        "updated_at": _iso(subscriber.updated_at),
    }


def subscription_records(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """A subscriber's subscriptions with their consent records, JSON-ready."""
    return [
        {
            "list": s.list.slug,
            "list_name": s.list.name,
            "status": s.status.value,
            "consent_source": s.consent_source,
            "consent_at": _iso(s.consent_at),
            "consent_ip": s.consent_ip,
            "unsubscribed_at": _iso(s.unsubscribed_at),
            "unsubscribe_source": s.unsubscribe_source,
            "consent_form": s.consent_form,
            "consent_text": s.consent_text,
            "consent_confirmed_at": _iso(s.consent_confirmed_at),
            "consent_confirm_ip": s.consent_confirm_ip,
        }
        for s in subscriptions_of(session, subscriber_id)
    ]


def export_person(session: Session, email: str) -> dict[str, Any]:
    """Everything the store holds about `email`, as JSON-ready data (empty sections if none)."""
    address = normalise_email(email)
    subscriber = find_subscriber(session, address)
    entry = session.scalar(select(Suppression).where(Suppression.email_hash == email_hash(address)))
    data: dict[str, Any] = {"email": address, "subscriber": None, "subscriptions": []}
    if subscriber is not None:
        data["subscriber"] = subscriber_record(session, subscriber)
        data["subscriptions"] = subscription_records(session, subscriber.id)
    data["pending_signups"] = signups.export(session, address)
    data["suppression"] = (
        {
            "reason": entry.reason,
            "created_at": _iso(entry.created_at),
            "address_kept": bool(entry.email),
        }
        if entry is not None
        else None
    )
    return data


@dataclass(frozen=True)
class Erasure:
    email: str
    subscriber_deleted: bool
    subscriptions_deleted: int
    other_rows_changed: int


def erase(
    session: Session,
    email: str,
    *,
    reason: str = "erased at the person's request",
    also_forget: Iterable[Forgetter] = (),
) -> Erasure:
    """Delete the person's data and keep only a hash on the suppression list (idempotent)."""
    address = normalise_email(email)
    subscriber = find_subscriber(session, address)
    subscriber_id = subscriber.id if subscriber is not None else None
    subscriptions = len(subscriptions_of(session, subscriber.id)) if subscriber else 0
    other = sum(forget(session, subscriber_id, address) for forget in also_forget)
    other += signups.forget(session, address)  # unconfirmed sign-ups hold the address
    if subscriber is not None:
        session.delete(subscriber)
        session.flush()
    suppress(session, address, reason, keep_address=False)
    return Erasure(address, subscriber is not None, subscriptions, other)
