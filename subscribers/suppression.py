"""The suppression list: addresses that are never selected, whatever their lists say.

Entries match on the hash of the normalised address (see `validation.email_hash`),
so a plain entry (bounce, complaint, added by hand) and an erased subscriber's
hash-only entry are checked the same way, by `is_suppressed` and by the audience
query alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.errors import NotFound
from subscribers.models import Suppression
from subscribers.validation import email_hash, normalise_email

MAX_REASON = 200


def _hash_of(email: str) -> str:
    return email_hash(normalise_email(email))


def suppress(
    session: Session, email: str, reason: str, *, keep_address: bool = True
) -> Suppression:
    """Suppress `email` (idempotent: an existing entry keeps its first reason and time).

    With `keep_address=False` only the hash and `reason` are kept (erasing a person).
    """
    normalised = normalise_email(email)
    digest = email_hash(normalised)
    entry = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if entry is None:
        entry = Suppression(
            email_hash=digest,
            email=normalised if keep_address else None,
            reason=(reason.strip() or "unspecified")[:MAX_REASON],
        )
        session.add(entry)
        session.flush()
    elif not keep_address:
        # The old reason may quote the address (an SMTP reply); it goes too.
        entry.email = None
        entry.reason = (reason.strip() or "unspecified")[:MAX_REASON]
    return entry


def find_suppression(session: Session, email: str) -> Suppression | None:
    """The entry matching `email` (plain or hash-only), or None; for saying why an address
    will not be mailed when someone adds it again."""
    return session.scalar(select(Suppression).where(Suppression.email_hash == _hash_of(email)))


def is_suppressed(session: Session, email: str) -> bool:
    """True when a plain or a hash-only entry matches `email` (compared case-insensitively)."""
    digest = _hash_of(email)
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is not None
    )


def unsuppress(session: Session, email: str) -> None:
    """Remove the entry for `email`; `NotFound` when there is none."""
    digest = _hash_of(email)
    entry = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if entry is None:
        raise NotFound(f"{email} is not on the suppression list")
    session.delete(entry)
    session.flush()


def list_suppressions(
    session: Session, *, limit: int | None = None, offset: int = 0
) -> Sequence[Suppression]:
    """Entries newest first; erased ones show no address."""
    query = (
        select(Suppression)
        .order_by(Suppression.created_at.desc(), Suppression.id.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()
