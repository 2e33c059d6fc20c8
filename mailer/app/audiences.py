"""Audiences as people give them, and the countries offered to choose from.

The CLI's `--list a,b --list c` and the web form's ticked boxes become one
`Audience` here, by one rule: slugs in lower case, countries as ISO codes (names
accepted), partners by their stored name in any case, blanks dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from mailer.app.errors import store_errors
from subscribers import partners as partner_store
from subscribers.audience import (
    Audience,
    CountRow,
    count_audience,
    count_by_country_and_partner,
    countries_present,
)
from subscribers.countries import REGION, country_names
from subscribers.errors import StoreError


def split(values: Iterable[str] | None) -> tuple[str, ...]:
    """`["VN,LA", " TH "]` -> ("VN", "LA", "TH"): repeated and comma-separated values."""
    items: list[str] = []
    for value in values or ():
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(items)


def audience_from(
    session: Session,
    lists: Iterable[str] | None = None,
    countries: Iterable[str] | None = None,
    partners: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    languages: Iterable[str] | None = None,
) -> Audience:
    """The audience these values name (unknown lists and partners are checked when it
    is used, so that a form can come back with them as typed)."""
    with store_errors():  # an unknown country name
        return Audience(
            lists=tuple(slug.lower() for slug in split(lists)),
            countries=split(countries),
            partners=tuple(_partner_name(session, name) for name in partners or () if name.strip()),
            exclude_lists=tuple(slug.lower() for slug in split(exclude)),
            languages=split(languages),
        )


def _partner_name(session: Session, name: str) -> str:
    """The stored name of a partner given in any case (unknown names are checked later)."""
    partner = partner_store.find_partner(session, name)
    return partner.name if partner else name.strip()


def breakdown(session: Session, audience: Audience) -> list[CountRow]:
    """Who the audience reaches now, per country and partner (each person in one row)."""
    with store_errors():
        return count_by_country_and_partner(session, audience)


def count_or_none(session: Session, audience: Audience) -> int | None:
    """How many the audience reaches now; None when it names a list or partner that is
    gone (the page says so elsewhere)."""
    try:
        return count_audience(session, audience)
    except StoreError:
        return None


def country_choices() -> list[tuple[str, str]]:
    """The region's six countries first, then every other code by name."""
    names = country_names()
    rest = sorted((c for c in names if c not in REGION), key=lambda c: names[c])
    return [(c, names[c]) for c in (*REGION, *rest)]


def audience_countries(session: Session) -> list[tuple[str, str]]:
    """The region's six countries, then any other country subscribers are in."""
    present = countries_present(session)
    return [(code, name) for code, name in country_choices() if code in REGION or code in present]
