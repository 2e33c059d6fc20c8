"""Audience selection and suppression on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from subscribers import mailing_lists
from subscribers import partners as partner_store
from subscribers import repository as repo
from subscribers.audience import (
    Audience,
    audience_query,
    count_audience,
    count_by_country_and_partner,
    countries_present,
    iter_audience,
    list_visibility,
    reaches_only_public_lists,
)
from subscribers.errors import StoreInputError
from subscribers.models import Partner, SubscriberStatus
from subscribers.suppression import is_suppressed, list_suppressions, suppress, unsuppress


def _seed(session: Session) -> None:
    mailing_lists.add_list(session, "newsletter", "Newsletter")
    mailing_lists.add_list(session, "partners-only", "Partners only")
    mailing_lists.add_list(session, "staff")
    partner_store.add_partner(session, "Mekong Water Institute", "LA")
    partner_store.add_partner(session, "Green Delta", "VN")
    repo.add_subscriber(
        session,
        "an@example.org",
        name="Nguyễn Văn An",
        country="Viet Nam",
        partner="Green Delta",
        lists=["newsletter", "partners-only"],
    )
    repo.add_subscriber(
        session,
        "Souk@Example.org",
        name="ສຸກ",
        country="Lao PDR",
        partner="Mekong Water Institute",
        lists=["newsletter"],
    )
    repo.add_subscriber(
        session, "min@example.org", name="မင်း", country="Burma", lists=["newsletter"]
    )
    repo.add_subscriber(session, "staff@example.org", country="CN", lists=["newsletter", "staff"])
    repo.add_subscriber(session, "gone@example.org", country="TH", lists=["newsletter"])
    repo.add_subscriber(session, "bounced@example.org", country="KH", lists=["newsletter"])
    repo.add_subscriber(session, "nolist@example.org", country="KH")
    repo.add_subscriber(session, "left@example.org", country="TH", lists=["newsletter"])
    repo.unsubscribe(session, repo.get_subscriber(session, "gone@example.org").id)
    repo.update_subscriber(session, "bounced@example.org", status=SubscriberStatus.BOUNCED)
    repo.unsubscribe(session, repo.get_subscriber(session, "left@example.org").id, "newsletter")


def _emails(session: Session, audience: Audience) -> list[str]:
    return [row.email for row in session.execute(audience_query(audience))]


def test_audience_selects_each_active_recipient_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session)
    with sessions() as session:
        everyone = _emails(session, Audience(lists=("newsletter", "partners-only")))
        assert everyone == [
            "an@example.org",
            "Souk@example.org",
            "min@example.org",
            "staff@example.org",
        ]
        assert _emails(session, Audience()) == everyone
        assert _emails(session, Audience(lists=("newsletter",), exclude_lists=("staff",))) == [
            "an@example.org",
            "Souk@example.org",
            "min@example.org",
        ]
        assert _emails(session, Audience(lists=("newsletter",), countries=("VN", "LA"))) == [
            "an@example.org",
            "Souk@example.org",
        ]
        assert _emails(session, Audience(partners=("Green Delta",))) == ["an@example.org"]
        assert _emails(session, Audience(lists=("partners-only",))) == ["an@example.org"]
        assert count_audience(session, Audience(lists=("newsletter",))) == 4


def test_audience_columns_and_timezones(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session)
    with sessions() as session:
        rows = list(iter_audience(session, Audience(lists=("newsletter",)), batch_size=2))
        by_email = {row.email: row for row in rows}
        assert by_email["min@example.org"].timezone == "Asia/Yangon"
        assert by_email["min@example.org"].country == "MM"
        assert by_email["an@example.org"].name == "Nguyễn Văn An"
        assert by_email["Souk@example.org"].timezone == "Asia/Vientiane"
        assert by_email["staff@example.org"].timezone == "Asia/Shanghai"
        assert set(rows[0]._fields) == {
            "subscriber_id",
            "email",
            "name",
            "country",
            "partner_id",
            "timezone",
            "language",
        }


def test_suppressed_addresses_are_never_selected(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session)
        suppress(session, "MIN@example.org", "bounce: 550 5.1.1 no such user")
        suppress(session, "min@example.org", "again")  # idempotent
    with sessions() as session:
        assert is_suppressed(session, "Min@Example.org")
        assert "min@example.org" not in _emails(session, Audience())
        entries = list_suppressions(session)
        assert [(e.email, e.reason) for e in entries] == [
            ("MIN@example.org", "bounce: 550 5.1.1 no such user")
        ]
    with sessions.begin() as session:
        suppress(session, "an@example.org", "erased", keep_address=False)
    with sessions() as session:
        assert is_suppressed(session, "AN@example.org")
        assert "an@example.org" not in _emails(session, Audience())
        assert {e.email for e in list_suppressions(session)} == {None, "MIN@example.org"}
    with sessions.begin() as session:
        unsuppress(session, "min@example.org")
    with sessions() as session:
        assert not is_suppressed(session, "min@example.org")
        assert "min@example.org" in _emails(session, Audience())


def test_counts_by_country_and_partner(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session)
    with sessions() as session:
        counts = count_by_country_and_partner(session, Audience(lists=("newsletter",)))
        assert [(c.country, c.partner, c.count) for c in counts] == [
            ("CN", None, 1),
            ("LA", "Mekong Water Institute", 1),
            ("MM", None, 1),
            ("VN", "Green Delta", 1),
        ]


LISTS = ("newsletter", "partners-only", "staff")
COUNTRIES = ("VN", "LA", "TH")
PARTNERS = ("Mekong Water Institute", "Green Delta")


def _random_people(session: Session, seed: int, people: int = 60) -> None:
    """Lists, partners and `people` subscribers with every status, subscriptions active
    and ended, suppressed addresses (kept and erased), some without country or partner."""
    rng = random.Random(seed)
    for slug in LISTS:
        mailing_lists.add_list(session, slug)
    for name, country in zip(PARTNERS, ("LA", "VN"), strict=True):
        partner_store.add_partner(session, name, country)
    for n in range(people):
        email = f"p{n}@example.org"
        person = repo.add_subscriber(
            session,
            email,
            country=rng.choice((*COUNTRIES, None)),
            partner=rng.choice((*PARTNERS, None)),
            lists=[slug for slug in LISTS if rng.random() < 0.5],
        )
        for slug in LISTS:
            if rng.random() < 0.15:
                repo.unsubscribe(session, person.id, slug)
        if rng.random() < 0.15:
            status = rng.choice([s for s in SubscriberStatus if s != SubscriberStatus.ACTIVE])
            repo.update_subscriber(session, email, status=status)
        if rng.random() < 0.1:
            suppress(session, email, "bounce", keep_address=rng.random() < 0.5)


audiences = st.builds(
    Audience,
    lists=st.lists(st.sampled_from((*LISTS, "no-such-list")), max_size=2),
    countries=st.lists(st.sampled_from(COUNTRIES), max_size=2),
    partners=st.lists(st.sampled_from(PARTNERS), max_size=1),
    exclude_lists=st.lists(st.sampled_from(LISTS), max_size=2),
)


def test_counts_are_the_people_audience_query_names(sessions: sessionmaker[Session]) -> None:
    """The counts (written as IN / NOT IN sets on SQLite) count exactly the people that
    `audience_query` (what delivery enqueues) names, for any audience."""
    with sessions.begin() as session:
        _random_people(session, seed=11)
    with sessions() as session:
        names = session.execute(select(Partner.id, Partner.name))
        partner_names = {partner_id: name for partner_id, name in names}

        @settings(deadline=None, max_examples=60)  # no timing in tests: the machine is shared
        @given(audiences)
        def check(audience: Audience) -> None:
            rows = session.execute(audience_query(audience)).all()
            expected = Counter((r.country, partner_names.get(r.partner_id)) for r in rows)
            assert count_audience(session, audience) == len(rows)
            counted = count_by_country_and_partner(session, audience)
            assert {(c.country, c.partner): c.count for c in counted} == expected

        check()
        # The random data reach every branch: someone is counted, someone left out.
        everyone = session.execute(audience_query(Audience())).all()
        assert 0 < len(everyone) < 60


def test_countries_present_are_the_distinct_countries(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert countries_present(session) == set()
    with sessions.begin() as session:
        _seed(session)
        repo.add_subscriber(session, "fr@example.org", country="FR")
        repo.add_subscriber(session, "nowhere@example.org")  # no country: not a choice
    with sessions() as session:
        assert countries_present(session) == {"VN", "LA", "MM", "CN", "TH", "KH", "FR"}


def test_audience_countries_accept_names() -> None:
    assert Audience(countries=("Viet Nam", "la", "LA", "Burma")).countries == ("VN", "LA", "MM")
    with pytest.raises(StoreInputError, match="unknown country 'Atlantis'"):
        Audience(countries=("Atlantis",))


def test_audience_json_round_trip() -> None:
    audience = Audience(lists=("newsletter",), countries=("VN", "LA"), exclude_lists=("staff",))
    assert Audience.from_json(audience.to_json()) == audience
    assert Audience.from_json("{}") == Audience()


def test_audience_query_feeds_a_set_based_insert(sessions: sessionmaker[Session]) -> None:
    """What delivery does: INSERT ... SELECT from the audience, no rows through Python."""
    metadata = MetaData()
    target = Table(
        "audience_copy",
        metadata,
        Column("subscriber_id", Integer, primary_key=True),
        Column("email", String(254)),
        Column("timezone", String(64)),
    )
    with sessions.begin() as session:
        _seed(session)
        metadata.create_all(session.connection())
        source = audience_query(Audience(lists=("newsletter",))).subquery()
        session.execute(
            insert(target).from_select(
                ["subscriber_id", "email", "timezone"],
                select(source.c.subscriber_id, source.c.email, source.c.timezone),
            )
        )
        assert session.scalar(select(func.count()).select_from(target)) == 4
        metadata.drop_all(session.connection())


def test_an_audience_is_public_only_when_every_list_it_can_reach_is(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        _seed(session)  # newsletter, partners-only and staff: all private
        mailing_lists.update_list(session, "newsletter", public=True)
        visibility = list_visibility(session)
    assert visibility == {"newsletter": True, "partners-only": False, "staff": False}

    def public(audience: Audience) -> bool:
        return reaches_only_public_lists(audience, visibility)

    assert public(Audience(lists=("newsletter",), countries=("VN",)))
    assert public(Audience(lists=("newsletter",), exclude_lists=("staff",)))  # only narrows
    assert not public(Audience(lists=("newsletter", "staff")))
    assert not public(Audience(lists=("removed-list",)))  # unknown: treated as private
    assert not public(Audience())  # every list, some private
    assert reaches_only_public_lists(Audience(), {"newsletter": True, "events": True})
