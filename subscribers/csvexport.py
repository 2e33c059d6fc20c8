"""CSV export of subscribers: what `subscribers.csvimport` reads, streamed in batches.

Spreadsheet formulas are neutralised: a cell starting with = + - @ TAB or CR gets a
leading apostrophe, which import removes (`subscribers.csvformat`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import TextIO

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from subscribers.csvformat import neutralise
from subscribers.models import (
    MailingList,
    Partner,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from subscribers.search import subscriber_conditions

BATCH = 500  # subscribers per chunk
EXPORT_COLUMNS = (
    "email",
    "name",
    "country",
    "partner",
    "language",
    "timezone",
    "status",
    "lists",
    "attributes",
    "created_at",
)


def export_csv(
    session: Session,
    out: TextIO,
    *,
    text: str = "",
    list_slug: str | None = None,
    country: str | None = None,
    partner: str | None = None,
    statuses: Iterable[SubscriberStatus] | None = None,
    active_on_list: bool = False,
) -> int:
    """Write subscribers as CSV (the columns import reads), streaming; returns rows written.

    The filters are the subscribers page's (`search.subscriber_conditions`); `list_slug`
    selects anyone with a subscription to the list, or with `active_on_list` only its
    active members (what the page shows).
    """
    written = 0
    for chunk, rows in iter_csv(
        session,
        text=text,
        list_slug=list_slug,
        country=country,
        partner=partner,
        statuses=statuses,
        active_on_list=active_on_list,
    ):
        out.write(chunk)
        written += rows
    return written


def iter_csv(
    session: Session,
    *,
    text: str = "",
    list_slug: str | None = None,
    country: str | None = None,
    partner: str | None = None,
    statuses: Iterable[SubscriberStatus] | None = None,
    active_on_list: bool = False,
) -> Iterator[tuple[str, int]]:
    """`export_csv` as text chunks (the header, then one chunk per batch of rows) and
    the rows in each, so a web response can stream an export of any size.

    The filters are checked before the first chunk (a `StoreError` for an unknown
    partner, list or country), so a caller sees a bad filter before it answers."""
    conditions = subscriber_conditions(
        session,
        text,
        country=country,
        partner=partner,
        list_slug=list_slug,
        statuses=statuses,
        any_subscription=not active_on_list,
    )
    return _csv_chunks(session, select(Subscriber).where(*conditions).order_by(Subscriber.id))


def _csv_chunks(session: Session, query: Select[Subscriber]) -> Iterator[tuple[str, int]]:
    partner_names = {pid: pname for pid, pname in session.execute(select(Partner.id, Partner.name))}
    list_slugs = {
        lid: slug for lid, slug in session.execute(select(MailingList.id, MailingList.slug))
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue(), 0
    for batch in session.execute(query.execution_options(yield_per=BATCH)).scalars().partitions():
        buffer.seek(0)
        buffer.truncate()
        active: dict[int, list[str]] = {}
        for subscriber_id, list_id in session.execute(
            select(Subscription.subscriber_id, Subscription.list_id).where(
                Subscription.subscriber_id.in_([s.id for s in batch]),
                Subscription.status == SubscriptionStatus.ACTIVE,
            )
        ):
            active.setdefault(subscriber_id, []).append(list_slugs[list_id])
        for s in batch:
            cells = [
                s.email,
                s.name,
                s.country or "",
                partner_names.get(s.partner_id, "") if s.partner_id else "",
                s.language,
                s.timezone,
                s.status.value,
                ";".join(sorted(active.get(s.id, []))),
                json.dumps(s.attributes, ensure_ascii=False, sort_keys=True)
                if s.attributes
                else "",
                s.created_at.isoformat(),
            ]
            writer.writerow([neutralise(cell) for cell in cells])
        yield buffer.getvalue(), len(batch)
