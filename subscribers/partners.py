"""Partner organisations: the operations callers need.

Every function takes the caller's `Session` and flushes, never commits (as
`subscribers.repository`). Apart from the subscribers because a partner is its own
record, with its own page and commands; subscribers refer to one by name or id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from subscribers.base import UNSET
from subscribers.countries import normalise_country
from subscribers.errors import Conflict, NotFound, StoreInputError, about
from subscribers.models import (
    Partner,
    Subscriber,
)
from subscribers.validation import clean_name


def add_partner(session: Session, name: str, country: str | None = None) -> Partner:
    with about("name"):
        name = clean_name(name)
        if not name:
            raise StoreInputError("partner name is empty")
        if find_partner(session, name) is not None:
            raise Conflict(f"partner {name!r} already exists")
    with about("country"):
        code = normalise_country(country) if country else None
    partner = Partner(name=name, country=code)
    session.add(partner)
    session.flush()
    return partner


def find_partner(session: Session, name: str) -> Partner | None:
    """A partner by exact name, else by case-insensitive name."""
    partner = session.scalar(select(Partner).where(Partner.name == name.strip()))
    if partner is None:
        matches = session.scalars(
            select(Partner).where(func.lower(Partner.name) == name.strip().lower())
        ).all()
        partner = matches[0] if len(matches) == 1 else None
    return partner


def get_partner(session: Session, name_or_id: str | int) -> Partner:
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        partner = session.get(Partner, int(name_or_id))
    else:
        partner = find_partner(session, str(name_or_id))
    if partner is None:
        raise NotFound(f"no partner {name_or_id!r}")
    return partner


def list_partners(session: Session) -> Sequence[Partner]:
    return session.scalars(select(Partner).order_by(Partner.name)).all()


def partner_contact_counts(session: Session) -> dict[int, int]:
    """How many subscribers each partner has, by partner id (partners with none absent)."""
    rows = session.execute(
        select(Subscriber.partner_id, func.count())
        .where(Subscriber.partner_id.is_not(None))
        .group_by(Subscriber.partner_id)
    ).all()
    return {int(partner_id or 0): int(count) for partner_id, count in rows}


def update_partner(
    session: Session, name_or_id: str | int, *, name: str | None = None, country: Any = UNSET
) -> Partner:
    partner = get_partner(session, name_or_id)
    if name is not None:
        with about("name"):
            new = clean_name(name)
            if not new:
                raise StoreInputError("partner name is empty")
            other = find_partner(session, new)
            if other is not None and other.id != partner.id:
                raise Conflict(f"partner {new!r} already exists")
        partner.name = new
    if country is not UNSET:
        with about("country"):
            partner.country = normalise_country(country) if country else None
    session.flush()
    return partner


def remove_partner(session: Session, name_or_id: str | int) -> None:
    """Delete a partner; its contacts stay, with no partner."""
    session.delete(get_partner(session, name_or_id))
    session.flush()
