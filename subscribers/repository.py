"""Subscribers and their subscriptions: the operations callers need (lists are
`subscribers.mailing_lists`, partners `subscribers.partners`, searching
`subscribers.search`).

Every function takes the caller's `Session` and flushes, never commits: the caller
(a command, a web request) owns the transaction. Input is validated here, so the
CLI, the web app and the CSV import all apply the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from subscribers.base import UNSET, utcnow
from subscribers.countries import default_timezone, normalise_country, validate_timezone
from subscribers.errors import Conflict, NotFound, StoreInputError, about
from subscribers.mailing_lists import get_list
from subscribers.models import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from subscribers.partners import get_partner
from subscribers.validation import clean_name, email_hash, email_key, normalise_email

LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def clean_language(value: str) -> str:
    """A BCP 47 tag such as `en`, `zh-Hans` or `vi`, in its usual case ("EN" -> "en",
    "zh_cn" -> "zh-CN"), so one language is stored one way."""
    text = value.strip().replace("_", "-")
    if len(text) > 16 or not LANGUAGE.match(text):
        raise StoreInputError(f"invalid language {value!r}: use a tag such as en, zh, vi, th")
    first, *rest = text.split("-")
    parts = [first.lower()]
    for part in rest:  # script subtags are Title case, regions upper case (RFC 5646)
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())
        elif len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        else:
            parts.append(part.lower())
    return "-".join(parts)


# --- subscribers --------------------------------------------------------------------------


def add_subscriber(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    country: str | None = None,
    partner: str | int | None = None,
    language: str | None = None,
    timezone: str | None = None,
    attributes: dict[str, Any] | None = None,
    lists: Iterable[str] = (),
    consent_source: str = "manual",
    consent_ip: str | None = None,
) -> Subscriber:
    """Create a subscriber (optionally on `lists`); `Conflict` if the address exists."""
    with about("email"):
        normalised = normalise_email(email)
        if find_subscriber(session, normalised) is not None:
            raise Conflict(f"subscriber {normalised} already exists")
    with about("name"):
        cleaned = clean_name(name)
    with about("country"):
        code = normalise_country(country) if country else None
    with about("partner"):
        partner_row = get_partner(session, partner) if partner not in (None, "") else None
    if code is None and partner_row is not None:
        code = partner_row.country
    with about("language"):
        tag = clean_language(language) if language else "en"
    with about("timezone"):
        zone = validate_timezone(timezone) if timezone else default_timezone(code)
    subscriber = Subscriber(
        email=normalised,
        email_key=email_key(normalised),
        email_hash=email_hash(normalised),
        name=cleaned,
        country=code,
        partner_id=partner_row.id if partner_row else None,
        language=tag,
        timezone=zone,
        status=SubscriberStatus.ACTIVE,
        attributes=dict(attributes or {}),
    )
    session.add(subscriber)
    session.flush()
    with about("lists"):
        for slug in lists:
            subscribe(session, subscriber.id, slug, source=consent_source, ip=consent_ip)
    return subscriber


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address, compared case-insensitively; None if absent."""
    try:
        key = email_key(normalise_email(email))
    except StoreInputError:
        return None
    return session.scalar(select(Subscriber).where(Subscriber.email_key == key))


def get_subscriber(session: Session, id_or_email: int | str) -> Subscriber:
    """By id or address; `NotFound` otherwise."""
    if isinstance(id_or_email, int) or str(id_or_email).isdigit():
        subscriber = session.get(Subscriber, int(id_or_email))
    else:
        subscriber = find_subscriber(session, str(id_or_email))
    if subscriber is None:
        raise NotFound(f"no subscriber {id_or_email!r}")
    return subscriber


def update_subscriber(
    session: Session,
    id_or_email: int | str,
    *,
    email: str | None = None,
    name: str | None = None,
    country: Any = UNSET,
    partner: Any = UNSET,
    language: str | None = None,
    timezone: str | None = None,
    status: SubscriberStatus | str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Subscriber:
    """Change the given fields. A new country moves a default time zone along with it.

    The time zone moves when it was the old country's default and no other zone is
    asked for: `timezone` None, or the zone the subscriber already has (a form sends the
    field back unchanged). The CLI and the web app both rely on this rule.
    """
    subscriber = get_subscriber(session, id_or_email)
    if email is not None:
        with about("email"):
            normalised = normalise_email(email)
            other = find_subscriber(session, normalised)
            if other is not None and other.id != subscriber.id:
                raise Conflict(f"subscriber {normalised} already exists")
        subscriber.email = normalised
        subscriber.email_key = email_key(normalised)
        subscriber.email_hash = email_hash(normalised)
    if name is not None:
        with about("name"):
            subscriber.name = clean_name(name)
    if timezone is not None and timezone.strip() == subscriber.timezone:
        timezone = None  # unchanged: not a choice that should pin the zone
    if country is not UNSET:
        with about("country"):
            code = normalise_country(country) if country else None
        if timezone is None and subscriber.timezone == default_timezone(subscriber.country):
            subscriber.timezone = default_timezone(code)
        subscriber.country = code
    if partner is not UNSET:
        with about("partner"):
            subscriber.partner_id = get_partner(session, partner).id if partner else None
    if language is not None:
        with about("language"):
            subscriber.language = clean_language(language)
    if timezone is not None:
        with about("timezone"):
            subscriber.timezone = validate_timezone(timezone)
    if status is not None:
        try:
            subscriber.status = SubscriberStatus(status)
        except ValueError:
            allowed = ", ".join(s.value for s in SubscriberStatus)
            error = StoreInputError(f"invalid status {status!r}: use one of {allowed}")
            error.field = "status"
            raise error from None
    if attributes is not None:
        subscriber.attributes = {**subscriber.attributes, **attributes}
    subscriber.updated_at = utcnow()
    session.flush()
    return subscriber


def remove_subscriber(session: Session, id_or_email: int | str) -> None:
    """Delete a subscriber and their subscriptions (not a suppression: see privacy.erase)."""
    session.delete(get_subscriber(session, id_or_email))
    session.flush()


# --- subscriptions ----------------------------------------------------------------------


def subscriptions_of(session: Session, subscriber_id: int) -> Sequence[Subscription]:
    return session.scalars(
        select(Subscription)
        .options(selectinload(Subscription.list))
        .where(Subscription.subscriber_id == subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .order_by(MailingList.slug)
    ).all()


def subscribe(
    session: Session,
    subscriber_id: int,
    list_slug: str,
    *,
    source: str = "manual",
    ip: str | None = None,
    at: datetime | None = None,
) -> Subscription:
    """Put a subscriber on a list with a fresh consent record (re-activates an old one)."""
    mailing_list = get_list(session, list_slug)
    subscription = session.get(Subscription, (subscriber_id, mailing_list.id))
    if subscription is None:
        subscription = Subscription(subscriber_id=subscriber_id, list_id=mailing_list.id)
        session.add(subscription)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.consent_source = source[:64]
    subscription.consent_at = at or utcnow()
    subscription.consent_ip = ip
    subscription.unsubscribed_at = None
    subscription.unsubscribe_source = None
    # A fresh consent record: a double opt-in's details are set by subscribers.signups.
    subscription.consent_form = None
    subscription.consent_text = None
    subscription.consent_confirmed_at = None
    subscription.consent_confirm_ip = None
    session.flush()
    return subscription


def unsubscribe(
    session: Session,
    subscriber_id: int,
    list_slug: str | None = None,
    *,
    source: str = "manual",
) -> int:
    """Unsubscribe from one list, or (no slug) from every list and mark the person unsubscribed.

    Returns how many subscriptions changed. Idempotent; the consent record is kept.
    """
    subscriber = get_subscriber(session, subscriber_id)
    query = select(Subscription).where(
        Subscription.subscriber_id == subscriber.id,
        Subscription.status == SubscriptionStatus.ACTIVE,
    )
    if list_slug is not None:
        query = query.where(Subscription.list_id == get_list(session, list_slug, archived=True).id)
    changed = 0
    now = utcnow()
    for subscription in session.scalars(query):
        subscription.status = SubscriptionStatus.UNSUBSCRIBED
        subscription.unsubscribed_at = now
        subscription.unsubscribe_source = source[:64]
        changed += 1
    if list_slug is None and subscriber.status == SubscriberStatus.ACTIVE:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.updated_at = now
    session.flush()
    return changed


def resubscribe(
    session: Session,
    subscriber_id: int,
    list_slugs: Iterable[str] | None = None,
    *,
    source: str = "manual",
    ip: str | None = None,
) -> Subscriber:
    """Make an unsubscribed person active again, with fresh consent on `list_slugs`
    (default: the lists they were on). Bounced and complained stay as they are."""
    subscriber = get_subscriber(session, subscriber_id)
    if subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        raise Conflict(
            f"{subscriber.email} is {subscriber.status.value}; change the status explicitly first"
        )
    if list_slugs is None:
        list_slugs = [
            s.list.slug for s in subscriptions_of(session, subscriber.id) if not s.list.archived
        ]
    for slug in list_slugs:
        subscribe(session, subscriber.id, slug, source=source, ip=ip)
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.updated_at = utcnow()
    session.flush()
    return subscriber


def set_preferences(
    session: Session,
    subscriber_id: int,
    list_slugs: Iterable[str],
    *,
    source: str = "preferences",
    ip: str | None = None,
) -> Subscriber:
    """Exactly these lists are active afterwards (from the preferences page).

    Choosing at least one list re-activates an unsubscribed person; choosing none
    unsubscribes them from everything.
    """
    wanted = set(list_slugs)
    subscriber = get_subscriber(session, subscriber_id)
    if not wanted:
        unsubscribe(session, subscriber.id, source=source)
        return subscriber
    for slug in sorted(wanted):
        get_list(session, slug)
    for subscription in subscriptions_of(session, subscriber.id):
        slug = subscription.list.slug
        if slug not in wanted and subscription.status == SubscriptionStatus.ACTIVE:
            unsubscribe(session, subscriber.id, slug, source=source)
    current = {
        s.list.slug
        for s in subscriptions_of(session, subscriber.id)
        if s.status == SubscriptionStatus.ACTIVE
    }
    for slug in sorted(wanted - current):
        subscribe(session, subscriber.id, slug, source=source, ip=ip)
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.updated_at = utcnow()
    session.flush()
    return subscriber


def set_status(session: Session, subscriber_id: int, status: SubscriberStatus) -> None:
    """Used by delivery on bounces and complaints."""
    update_subscriber(session, subscriber_id, status=status)
