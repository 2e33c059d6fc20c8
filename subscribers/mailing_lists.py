"""Mailing lists: add, find, edit, remove or archive, and the counts the lists page shows.

Every function takes the caller's `Session` and flushes, never commits (as
`subscribers.repository`). Apart from the subscribers because a list is its own
record with its own rules (slugs, visibility, archiving a list campaigns used);
subscriptions join the two and live with the subscribers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from subscribers.base import utcnow
from subscribers.errors import Conflict, NotFound, StoreInputError, about
from subscribers.models import (
    MailingList,
    Subscription,
    SubscriptionStatus,
)
from subscribers.validation import clean_name

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


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
