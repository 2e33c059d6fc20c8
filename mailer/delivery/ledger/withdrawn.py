"""Recipients who left after their ledger row was queued: they must not be sent to.

A campaign's rows are enqueued when its sending starts; a person may unsubscribe
(from the list or from everything), bounce, complain, be suppressed or be erased
while the rows wait. The worker asks `withdrawn` when it claims a batch and again
about once a second for the rows of the batch not yet begun, and records those rows
`skipped` with the reason. One query per call, whatever the batch size: the ledger
joined to the subscriber, with EXISTS for the subscription and the suppression list,
the same conditions as the audience query that enqueued them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import Session

from mailer.delivery.ledger.rows import LEDGER
from subscribers.models import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)

ERASED = "skipped, not sent: the subscriber was erased after it was queued"
SUPPRESSED = "skipped, not sent: the address was suppressed after it was queued"
UNSUBSCRIBED_FROM_LISTS = (
    "skipped, not sent: unsubscribed from the campaign's list(s) after it was queued"
)


def _status_reason(status: SubscriberStatus) -> str:
    return f"skipped, not sent: the subscriber became {status.value} after it was queued"


def audience_lists(audience: Mapping[str, Any]) -> tuple[str, ...]:
    """The list slugs of a campaign's stored audience (empty: any list)."""
    return tuple(str(slug) for slug in audience.get("lists", ()))


def _subscribed(lists: Mapping[int, Sequence[str]]) -> Any:
    """Per campaign of the rows: an active subscription to one of its audience's lists."""
    per_campaign = []
    for campaign_id, slugs in sorted(lists.items()):
        condition = and_(
            Subscription.subscriber_id == LEDGER.c.subscriber_id,
            Subscription.status == SubscriptionStatus.ACTIVE,
        )
        if slugs:
            list_ids = select(MailingList.id).where(MailingList.slug.in_(sorted(slugs)))
            condition = and_(condition, Subscription.list_id.in_(list_ids))
        per_campaign.append(and_(LEDGER.c.campaign_id == campaign_id, exists().where(condition)))
    return or_(false(), *per_campaign)


def withdrawn(
    session: Session, row_ids: Iterable[int], lists: Mapping[int, Sequence[str]]
) -> dict[int, str]:
    """Ledger row id -> why it must not be sent, for those of `row_ids` whose person is
    gone, no longer active, suppressed or no longer on a list of the campaign's
    audience (`lists`: campaign id -> its audience's list slugs, for every campaign
    of the rows)."""
    ids = sorted(set(row_ids))
    if not ids:
        return {}
    suppressed = exists().where(Suppression.email_hash == Subscriber.email_hash)
    subscribed = _subscribed(lists)
    rows = session.execute(
        select(
            LEDGER.c.id,
            Subscriber.id,
            Subscriber.status,
            suppressed.label("suppressed"),
        )
        .select_from(LEDGER.outerjoin(Subscriber, Subscriber.id == LEDGER.c.subscriber_id))
        .where(
            LEDGER.c.id.in_(ids),
            or_(
                Subscriber.id.is_(None),
                Subscriber.status != SubscriberStatus.ACTIVE,
                suppressed,
                ~subscribed,
            ),
        )
    ).all()
    reasons = {}
    for row_id, subscriber_id, status, is_suppressed in rows:
        if subscriber_id is None:
            reasons[int(row_id)] = ERASED
        elif is_suppressed:
            reasons[int(row_id)] = SUPPRESSED
        elif status != SubscriberStatus.ACTIVE:
            reasons[int(row_id)] = _status_reason(SubscriberStatus(status))
        else:
            reasons[int(row_id)] = UNSUBSCRIBED_FROM_LISTS
    return reasons
