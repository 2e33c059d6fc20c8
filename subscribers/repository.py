"""Subscribers, partners, lists and subscriptions: the operations callers need.

Every function takes the caller's `Session` and flushes, never commits: the caller
(a command, a web request) owns the transaction. Input is validated here, so the
CLI, the web app and the CSV import all apply the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

from subscribers.base import utcnow
from subscribers.countries import default_timezone, normalise_country, validate_timezone
from subscribers.errors import Conflict, NotFound, StoreInputError, about
from subscribers.models import (
    MailingList,
    Partner,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from subscribers.validation import clean_name, email_hash, email_key, normalise_email

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
UNSET: Any = object()


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


# --- partners -------------------------------------------------------------------------


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


# --- lists ------------------------------------------------------------------------------


def add_list(
    session: Session,
    slug: str,
    name: str | None = None,
    description: str = "",
    *,
    public: bool = False,
) -> MailingList:
    """Create a list. Private unless `public`: a private list is never offered on the
    public preferences page, and campaigns sent to it stay out of the public archive."""
    slug = slug.strip()
    with about("slug"):
        if not SLUG.match(slug):
            raise StoreInputError(
                f"invalid list slug {slug!r}: use lower-case letters, digits and '-',"
                " e.g. newsletter"
            )
        existing = session.scalar(select(MailingList).where(MailingList.slug == slug))
        if existing is not None:
            removed = " (a removed list, kept for its campaigns)" if existing.archived else ""
            raise Conflict(f"list {slug!r} already exists{removed}")
    with about("name"):
        shown = clean_name(name) or slug
    mailing_list = MailingList(slug=slug, name=shown, description=description, public=public)
    session.add(mailing_list)
    session.flush()
    return mailing_list


def get_list(session: Session, slug: str, *, archived: bool = False) -> MailingList:
    """A list by slug; `NotFound` if there is none, or if it is archived (removed) and
    `archived` is false: nobody can be put on a removed list, nor can an audience use it."""
    wanted = slug.strip().lower()  # slugs are lower case; "Newsletter" means "newsletter"
    mailing_list = session.scalar(select(MailingList).where(MailingList.slug == wanted))
    if mailing_list is not None and mailing_list.archived_at is not None and not archived:
        raise NotFound(
            f"list {wanted!r} was removed on {mailing_list.archived_at:%Y-%m-%d}; it is kept"
            " only for the campaigns that used it"
        )
    if mailing_list is None:
        known = ", ".join(
            session.scalars(
                select(MailingList.slug)
                .where(MailingList.archived_at.is_(None))
                .order_by(MailingList.slug)
            )
        )
        raise NotFound(f"no list {slug!r} (lists: {known or 'none yet'})")
    return mailing_list


def list_lists(session: Session, *, archived: bool = False) -> Sequence[MailingList]:
    """The lists in use by slug; with `archived`, only the removed ones kept for campaigns."""
    condition = (
        MailingList.archived_at.is_not(None) if archived else MailingList.archived_at.is_(None)
    )
    return session.scalars(select(MailingList).where(condition).order_by(MailingList.slug)).all()


def update_list(
    session: Session,
    slug: str,
    *,
    name: str | None = None,
    description: str | None = None,
    public: bool | None = None,
) -> MailingList:
    """Change a list's name, description or visibility; None leaves a field as it is."""
    mailing_list = get_list(session, slug)
    if name is not None:
        mailing_list.name = clean_name(name) or mailing_list.slug
    if description is not None:
        mailing_list.description = description
    if public is not None:
        mailing_list.public = public
    session.flush()
    return mailing_list


LIST_REMOVED = "list-removed"


@dataclass(frozen=True)
class ListRemoval:
    """What removing a list takes away: shown before (to confirm) and after (to report).

    `campaigns` is how many campaigns used the list and `sent` how many of them went
    out (counted by the caller, which knows campaigns); with any campaign, the list is
    archived rather than deleted.
    """

    slug: str
    name: str
    active: int
    unsubscribed: int
    campaigns: int
    sent: int = 0

    @property
    def archives(self) -> bool:
        return self.campaigns > 0


def list_removal(session: Session, slug: str, *, campaigns: int, sent: int = 0) -> ListRemoval:
    """What `remove_list` would do to the list `slug` (a list in use, not an archived one)."""
    mailing_list = get_list(session, slug)
    counts = dict(
        session.execute(
            select(Subscription.status, func.count())
            .where(Subscription.list_id == mailing_list.id)
            .group_by(Subscription.status)
        ).all()
    )
    return ListRemoval(
        slug=mailing_list.slug,
        name=mailing_list.name,
        active=int(counts.get(SubscriptionStatus.ACTIVE, 0)),
        unsubscribed=int(counts.get(SubscriptionStatus.UNSUBSCRIBED, 0)),
        campaigns=campaigns,
        sent=sent,
    )


def remove_list(session: Session, slug: str, *, campaigns: int = 0, sent: int = 0) -> ListRemoval:
    """Remove a list from use; returns what was removed (see `list_removal`).

    A list no campaign used (`campaigns` == 0) is deleted with its subscriptions. A list
    campaigns used is archived: the row stays, so their audiences, the ledger, the public
    archive and the web copies keep their meaning; its active subscriptions end (source
    `list-removed`, the consent records stay) and it is offered nowhere again.
    """
    removal = list_removal(session, slug, campaigns=campaigns, sent=sent)
    mailing_list = get_list(session, slug)
    if not removal.archives:
        session.delete(mailing_list)
        session.flush()
        return removal
    now = utcnow()
    mailing_list.archived_at = now
    for subscription in session.scalars(
        select(Subscription).where(
            Subscription.list_id == mailing_list.id,
            Subscription.status == SubscriptionStatus.ACTIVE,
        )
    ):
        subscription.status = SubscriptionStatus.UNSUBSCRIBED
        subscription.unsubscribed_at = now
        subscription.unsubscribe_source = LIST_REMOVED
    session.flush()
    return removal


@dataclass(frozen=True)
class ListCounts:
    slug: str
    name: str
    public: bool
    active: int
    unsubscribed: int


def list_counts(session: Session) -> list[ListCounts]:
    """Each list in use with its visibility and its active and unsubscribed subscription counts."""
    rows = session.execute(
        select(
            MailingList.slug,
            MailingList.name,
            MailingList.public,
            Subscription.status,
            func.count(),
        )
        .outerjoin(Subscription, Subscription.list_id == MailingList.id)
        .where(MailingList.archived_at.is_(None))
        .group_by(MailingList.slug, MailingList.name, MailingList.public, Subscription.status)
    ).all()
    counts: dict[str, dict[str, Any]] = {}
    for slug, name, public, status, count in rows:
        entry = counts.setdefault(
            slug, {"name": name, "public": bool(public), "active": 0, "unsubscribed": 0}
        )
        if status is not None:
            entry[SubscriptionStatus(status).value] = count
    return [
        ListCounts(slug, v["name"], v["public"], v["active"], v["unsubscribed"])
        for slug, v in sorted(counts.items())
    ]


def preference_lists(session: Session, subscriber_id: int) -> Sequence[MailingList]:
    """The lists a person may choose on the public preferences page, by slug.

    Every public list, and the private lists they are actively subscribed to (so they
    can always leave one); never another private list. The page is reached with a
    link that is in every email, so a forwarded email must not open a private list.
    """
    on_it = select(Subscription.list_id).where(
        Subscription.subscriber_id == subscriber_id,
        Subscription.status == SubscriptionStatus.ACTIVE,
    )
    return session.scalars(
        select(MailingList)
        .where(
            or_(MailingList.public.is_(True), MailingList.id.in_(on_it)),
            MailingList.archived_at.is_(None),
        )
        .order_by(MailingList.slug)
    ).all()


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
