"""Finding subscribers: the filters the CLI's `subscribers search` and `export` and the
web app's subscribers page and its CSV download share, read and checked one way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from mailer.app.errors import InvalidRecord, store_errors
from subscribers import mailing_lists
from subscribers import partners as partner_store
from subscribers.countries import normalise_country
from subscribers.models import Subscriber, SubscriberStatus
from subscribers.search import count_subscribers, search_subscribers

STATUSES = tuple(status.value for status in SubscriberStatus)


def parse_status(value: str | None) -> SubscriberStatus | None:
    """A subscriber status by its name; blank is None (any status)."""
    if not value:
        return None
    try:
        return SubscriberStatus(value)
    except ValueError:
        raise InvalidRecord(
            f"status: {value!r} is not one of {', '.join(STATUSES)}", "status"
        ) from None


@dataclass(frozen=True)
class SubscriberFilter:
    """Text in the address or name, and a country, partner, list and status; blank
    values filter nothing. Countries may be names, partners any case (the store
    resolves them; an unknown one is an error, not an empty result)."""

    text: str = ""
    country: str | None = None
    partner: str | None = None
    list_slug: str | None = None
    status: SubscriberStatus | None = None

    @classmethod
    def parse(
        cls,
        text: str = "",
        *,
        country: str | None = None,
        partner: str | None = None,
        list_slug: str | None = None,
        status: str | None = None,
    ) -> SubscriberFilter:
        return cls(
            text=text or "",
            country=country or None,
            partner=partner or None,
            list_slug=list_slug or None,
            status=parse_status(status),
        )

    def _criteria(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "partner": self.partner,
            "list_slug": self.list_slug,
            "status": self.status,
        }

    def export_options(self, *, active_on_list: bool) -> dict[str, Any]:
        """Keyword arguments of `subscribers.csvexport.export_csv` and `iter_csv`: with
        `active_on_list` a list selects its active members (what a search shows),
        otherwise anyone with a subscription to it."""
        return {
            "text": self.text,
            "list_slug": self.list_slug,
            "country": self.country,
            "partner": self.partner,
            "statuses": [self.status] if self.status else None,
            "active_on_list": active_on_list,
        }


def search(
    session: Session, found: SubscriberFilter, *, limit: int, offset: int = 0
) -> Sequence[Subscriber]:
    """The subscribers that match, in id order."""
    with store_errors():
        return search_subscribers(
            session, found.text, **found._criteria(), limit=limit, offset=offset
        )


def count(session: Session, found: SubscriberFilter) -> int:
    """How many subscribers match, without a limit."""
    with store_errors():
        return count_subscribers(session, found.text, **found._criteria())


def resolve(
    session: Session, found: SubscriberFilter, *, removed_lists: bool = True
) -> SubscriberFilter:
    """The filter with a list's slug, a country's code and a partner's name as stored;
    an unknown one (or a removed list, unless `removed_lists`) raises now, before
    anything (a file, a download) is begun."""
    with store_errors():
        slug = found.list_slug
        return replace(
            found,
            list_slug=mailing_lists.get_list(session, slug, archived=removed_lists).slug
            if slug
            else None,
            country=normalise_country(found.country) if found.country else None,
            partner=partner_store.get_partner(session, found.partner).name
            if found.partner
            else None,
        )
