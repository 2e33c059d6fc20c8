"""Finding subscribers: the conditions of a search (address or name, country, partner,
list, status), the search itself and its count.

The subscribers page, its count, its CSV export (`subscribers.csvexport`) and the
command line use the same conditions, so a filter means one thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

from subscribers.countries import normalise_country
from subscribers.errors import about
from subscribers.mailing_lists import get_list
from subscribers.models import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from subscribers.partners import get_partner


def subscriber_conditions(
    session: Session,
    text: str = "",
    *,
    country: str | None = None,
    partner: str | None = None,
    list_slug: str | None = None,
    statuses: Iterable[SubscriberStatus] | None = None,
    any_subscription: bool = False,
) -> list[ColumnElement[bool]]:
    """The WHERE of a subscriber search: address or name containing `text`
    (case-insensitive), country, partner (`NotFound` if unknown), list (an active
    subscription to it; any subscription with `any_subscription`) and statuses. The
    subscribers page, its count and its CSV export use the same conditions."""
    conditions: list[ColumnElement[bool]] = []
    if text.strip():
        pattern = f"%{_escape_like(text.strip().lower())}%"
        conditions.append(
            or_(
                Subscriber.email_key.like(pattern, escape="\\"),
                func.lower(Subscriber.name).like(pattern, escape="\\"),
            )
        )
    if country:
        with about("country"):
            conditions.append(Subscriber.country == normalise_country(country))
    if partner:
        with about("partner"):
            conditions.append(Subscriber.partner_id == get_partner(session, partner).id)
    if list_slug:
        with about("list"):
            list_id = get_list(session, list_slug, archived=True).id
        on_list = [Subscription.subscriber_id == Subscriber.id, Subscription.list_id == list_id]
        if not any_subscription:
            on_list.append(Subscription.status == SubscriptionStatus.ACTIVE)
        conditions.append(select(Subscription.subscriber_id).where(*on_list).exists())
    if statuses is not None:
        conditions.append(Subscriber.status.in_(list(statuses)))
    return conditions


def search_subscribers(
    session: Session,
    text: str = "",
    *,
    country: str | None = None,
    partner: str | None = None,
    list_slug: str | None = None,
    status: SubscriberStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Subscriber]:
    """Subscribers whose address or name contains `text` (case-insensitive), filtered."""
    conditions = subscriber_conditions(
        session,
        text,
        country=country,
        partner=partner,
        list_slug=list_slug,
        statuses=[status] if status is not None else None,
    )
    query = select(Subscriber).options(selectinload(Subscriber.partner)).where(*conditions)
    return session.scalars(query.order_by(Subscriber.id).limit(limit).offset(offset)).all()


def count_subscribers(
    session: Session,
    text: str = "",
    *,
    country: str | None = None,
    partner: str | None = None,
    list_slug: str | None = None,
    status: SubscriberStatus | None = None,
) -> int:
    """How many subscribers `search_subscribers` finds without its limit."""
    conditions = subscriber_conditions(
        session,
        text,
        country=country,
        partner=partner,
        list_slug=list_slug,
        statuses=[status] if status is not None else None,
    )
    return int(session.scalar(select(func.count()).select_from(Subscriber).where(*conditions)) or 0)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
