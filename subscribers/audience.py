"""Who gets a campaign: lists, countries, partners and languages, minus exclusion lists.

`audience_query` returns one SELECT that names every active, subscribed,
unsuppressed recipient exactly once. It is set-based (list membership and
exclusions are EXISTS subqueries, so a person on two selected lists is not
doubled) and is meant to be streamed or used in `insert().from_select()`; it
never loads the audience into memory.

The counts (`count_audience`, `count_by_country_and_partner`) count the same
people without reading them: the database keeps, in `audience_counts`, how many
people share each (country, partner, set of lists) group, with triggers on every
table the audience depends on (migration 0009), so a count is a sum over the few
hundred groups in use whatever writes the tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, String, and_, cast, exists, func, literal, or_, select, text
from sqlalchemy.orm import Session

from subscribers.countries import normalise_country
from subscribers.errors import NotFound, StoreInputError, about
from subscribers.models import (
    AudienceCount,
    MailingList,
    Partner,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from subscribers.repository import clean_language

_KEYS = ("lists", "countries", "partners", "exclude_lists", "languages")

# subscriber_id, email, name, country, partner_id, timezone, language
AudienceSelect = Select[int, str, str, str | None, int | None, str, str]


@dataclass(frozen=True)
class Audience:
    """A saved selection. Empty `lists` means "anyone with an active subscription".

    lists and exclude_lists are list slugs, countries ISO codes (names are accepted
    and normalised: an unknown one raises `StoreInputError`), partners partner names,
    languages BCP 47 tags: `zh` takes subscribers whose language is `zh` or `zh-…`.
    """

    lists: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    exclude_lists: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Countries may be given as names or in any case ("Viet Nam", "la"); the
        # query compares ISO codes, so normalise here for every caller.
        codes = tuple(dict.fromkeys(normalise_country(c) for c in self.countries))
        object.__setattr__(self, "countries", codes)
        for name in ("lists", "partners", "exclude_lists"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        with about("language"):  # "ZH", "zh_cn": one language written one way
            tags = tuple(dict.fromkeys(clean_language(tag) for tag in self.languages))
        object.__setattr__(self, "languages", tags)

    def to_json(self) -> str:
        data = {
            "lists": list(self.lists),
            "countries": list(self.countries),
            "partners": list(self.partners),
            "exclude_lists": list(self.exclude_lists),
        }
        if self.languages:  # absent when unused: audiences saved before it read the same
            data["languages"] = list(self.languages)
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> Audience:
        data = json.loads(text) if isinstance(text, str) else text
        if not isinstance(data, dict):
            raise StoreInputError("audience: expected a JSON object")
        unknown = set(data) - set(_KEYS)
        if unknown:
            raise StoreInputError(f"audience: unknown keys {sorted(unknown)}")
        values: dict[str, tuple[str, ...]] = {}
        for key in _KEYS:
            items = data.get(key, [])
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise StoreInputError(f"audience: {key} must be a list of strings")
            values[key] = tuple(items)
        return cls(**values)

    def describe(self) -> str:
        parts = [f"lists {', '.join(self.lists)}" if self.lists else "all lists"]
        if self.countries:
            parts.append(f"countries {', '.join(self.countries)}")
        if self.partners:
            parts.append(f"partners {', '.join(self.partners)}")
        if self.languages:
            parts.append(f"languages {', '.join(self.languages)}")
        if self.exclude_lists:
            parts.append(f"excluding {', '.join(self.exclude_lists)}")
        return "; ".join(parts)


def _on_lists(slugs: Sequence[str]) -> Any:
    """EXISTS an active subscription of the outer subscriber to one of `slugs` (any if empty)."""
    condition = and_(
        Subscription.subscriber_id == Subscriber.id,
        Subscription.status == SubscriptionStatus.ACTIVE,
    )
    if slugs:
        list_ids = select(MailingList.id).where(MailingList.slug.in_(slugs))
        condition = and_(condition, Subscription.list_id.in_(list_ids))
    return exists().where(condition)


def _recipient_conditions(audience: Audience) -> list[Any]:
    """The WHERE clause of `audience`'s recipients, on `Subscriber`: list membership,
    suppression and exclusion as correlated EXISTS (hash semi- and anti-joins on
    PostgreSQL)."""
    conditions: list[Any] = [
        Subscriber.status == SubscriberStatus.ACTIVE,
        _on_lists(audience.lists),
        ~exists().where(Suppression.email_hash == Subscriber.email_hash),
    ]
    if audience.exclude_lists:
        conditions.append(~_on_lists(audience.exclude_lists))
    if audience.countries:
        conditions.append(Subscriber.country.in_(audience.countries))
    if audience.partners:
        partner_ids = select(Partner.id).where(Partner.name.in_(audience.partners))
        conditions.append(Subscriber.partner_id.in_(partner_ids))
    if audience.languages:
        conditions.append(
            or_(
                *(
                    or_(Subscriber.language == tag, Subscriber.language.like(f"{tag}-%"))
                    for tag in audience.languages
                )
            )
        )
    return conditions


def audience_query(audience: Audience) -> AudienceSelect:
    """Every recipient of `audience` once, with labelled columns, ordered by subscriber id.

    Columns: subscriber_id, email, name, country, partner_id, timezone, language.
    """
    return (
        select(
            Subscriber.id.label("subscriber_id"),
            Subscriber.email.label("email"),
            Subscriber.name.label("name"),
            Subscriber.country.label("country"),
            Subscriber.partner_id.label("partner_id"),
            Subscriber.timezone.label("timezone"),
            Subscriber.language.label("language"),
        )
        .where(*_recipient_conditions(audience))
        .order_by(Subscriber.id)
    )


def _in_group(slugs: Sequence[str]) -> Any:
    """Whether the outer `AudienceCount` group is on one of the lists `slugs`: its
    `lists` text (",3,7,") holds the id of one of them."""
    marker = literal(",") + cast(MailingList.id, String) + literal(",")
    return exists().where(MailingList.slug.in_(slugs), AudienceCount.lists.contains(marker))


def _kept_conditions(audience: Audience) -> list[Any]:
    """The groups of the kept counts that `audience` reaches: the conditions of
    `_recipient_conditions`, on groups (status and suppression are in the keeping)."""
    conditions: list[Any] = []
    if audience.lists:
        conditions.append(_in_group(audience.lists))
    if audience.exclude_lists:
        conditions.append(~_in_group(audience.exclude_lists))
    if audience.countries:
        conditions.append(AudienceCount.country.in_(audience.countries))
    if audience.partners:
        partner_ids = select(Partner.id).where(Partner.name.in_(audience.partners))
        conditions.append(AudienceCount.partner_id.in_(partner_ids))
    return conditions


def iter_audience(
    session: Session, audience: Audience, *, batch_size: int = 1000
) -> Iterator[Row[int, str, str, str | None, int | None, str, str]]:
    """Stream the recipients in batches (server-side cursor on PostgreSQL)."""
    result = session.execute(
        audience_query(audience).execution_options(yield_per=batch_size, stream_results=True)
    )
    yield from result


def check_audience(session: Session, audience: Audience) -> None:
    """Raise `NotFound` naming any list slug or partner that does not exist, or a list
    to send to that was removed (archived: kept only for the campaigns that used it)."""
    slugs = set(audience.lists) | set(audience.exclude_lists)
    known = set(session.scalars(select(MailingList.slug).where(MailingList.slug.in_(slugs))))
    missing = sorted(slugs - known)
    if missing:
        raise NotFound(f"unknown list(s): {', '.join(missing)}")
    removed = sorted(
        session.scalars(
            select(MailingList.slug).where(
                MailingList.slug.in_(audience.lists), MailingList.archived_at.is_not(None)
            )
        )
    )
    if removed:
        raise NotFound(f"removed list(s): {', '.join(removed)}")
    names = set(audience.partners)
    known = set(session.scalars(select(Partner.name).where(Partner.name.in_(names))))
    missing = sorted(names - known)
    if missing:
        raise NotFound(f"unknown partner(s): {', '.join(missing)}")


@dataclass(frozen=True)
class CountRow:
    country: str | None
    partner: str | None
    count: int


def _brought_up_to_date(session: Session) -> None:
    """On PostgreSQL, count what this transaction changed so far (the triggers note the
    changes and count them at commit; see migration 0009). A no-op in a transaction
    that wrote nothing; SQLite counts every change at once."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT audience_flush()"))


def count_by_country_and_partner(session: Session, audience: Audience) -> list[CountRow]:
    """Recipients per (country, partner name), from the counts the database keeps
    (`AudienceCount`): a sum over the groups in use, not a count of the people."""
    if audience.languages:  # the kept counts have no language: count the people
        return _counted_by_country_and_partner(session, audience)
    _brought_up_to_date(session)
    people = func.sum(AudienceCount.people)
    groups = (
        select(AudienceCount.country, AudienceCount.partner_id, people.label("n"))
        .where(*_kept_conditions(audience))
        .group_by(AudienceCount.country, AudienceCount.partner_id)
        .having(people > 0)
        .subquery()
    )
    query = select(groups.c.country, Partner.name, groups.c.n).outerjoin(
        Partner, Partner.id == groups.c.partner_id
    )
    rows = [
        CountRow(country or None, partner, int(count))
        for country, partner, count in session.execute(query)
    ]
    return sorted(rows, key=lambda r: (r.country or "", r.partner or ""))


def _counted_by_country_and_partner(session: Session, audience: Audience) -> list[CountRow]:
    """`count_by_country_and_partner` counted from the people (one grouped query)."""
    people = audience_query(audience).subquery()
    query = (
        select(people.c.country, Partner.name, func.count())
        .select_from(people)
        .outerjoin(Partner, Partner.id == people.c.partner_id)
        .group_by(people.c.country, Partner.name)
    )
    rows = [
        CountRow(country or None, partner, int(count))
        for country, partner, count in session.execute(query)
    ]
    return sorted(rows, key=lambda r: (r.country or "", r.partner or ""))


def count_audience(session: Session, audience: Audience) -> int:
    """How many people `audience_query` names, from the counts the database keeps (an
    audience narrowed by language is counted from the people: the kept counts do not
    know languages)."""
    if audience.languages:
        people = audience_query(audience).subquery()
        return int(session.scalar(select(func.count()).select_from(people)) or 0)
    _brought_up_to_date(session)
    total = select(func.sum(AudienceCount.people)).where(*_kept_conditions(audience))
    return int(session.scalar(total) or 0)


def countries_present(session: Session) -> set[str]:
    """Every country some subscriber is in (for the audience form's choices).

    Read as a loose index scan of the (country, partner) index: the smallest
    country, then the smallest one after it, and so on, one index search each.
    PostgreSQL answers `SELECT DISTINCT country` by reading all 100,000 index
    entries (30 ms); this takes one search per country.
    """
    found = select(func.min(Subscriber.country).label("country")).cte("present", recursive=True)
    following = (
        select(func.min(Subscriber.country))
        .where(Subscriber.country > found.c.country)
        .scalar_subquery()
    )
    found = found.union_all(select(following).where(found.c.country.is_not(None)))
    return set(session.scalars(select(found.c.country).where(found.c.country.is_not(None))))


def list_visibility(session: Session) -> dict[str, bool]:
    """Every list's slug and whether it is public."""
    rows = session.execute(select(MailingList.slug, MailingList.public)).all()
    return {slug: bool(public) for slug, public in rows}


def reaches_only_public_lists(audience: Audience, visibility: Mapping[str, bool]) -> bool:
    """Whether `audience` is made only of public lists (`visibility`: `list_visibility`).

    Every list it names must be public; a slug that names no list (a list removed
    since) counts as private. An audience that names no lists reaches anyone with an
    active subscription, so it counts as public only while every list is. Countries,
    partners and exclusion lists only narrow an audience and do not matter here.
    """
    if audience.lists:
        return all(visibility.get(slug, False) for slug in audience.lists)
    return all(visibility.values())
