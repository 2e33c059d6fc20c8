"""The audience counts the database keeps (migration 0012) equal a naive count after
any sequence of writes, through every write path, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from subscribers import mailing_lists
from subscribers import partners as partner_store
from subscribers import repository as repo
from subscribers.audience import (
    Audience,
    audience_query,
    count_audience,
    count_by_country_and_partner,
)
from subscribers.csvimport import import_csv
from subscribers.errors import StoreError
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
from subscribers.privacy import erase
from subscribers.suppression import suppress, unsuppress

LISTS = ("newsletter", "partners-only", "staff", "events")
PARTNERS = ("Mekong Water Institute", "Green Delta", "Red River Centre")
COUNTRIES = ("VN", "LA", "TH", None)
EMAILS = tuple(f"p{n}@example.org" for n in range(12))

Group = tuple[str, int, str]


def kept(session: Session) -> Counter[Group]:
    """What the database keeps: people per (country, partner, lists) group (on
    PostgreSQL, what this transaction changed is counted first, as the readers do)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT audience_flush()"))
    people = func.sum(AudienceCount.people)
    rows = session.execute(
        select(AudienceCount.country, AudienceCount.partner_id, AudienceCount.lists, people)
        .group_by(AudienceCount.country, AudienceCount.partner_id, AudienceCount.lists)
        .having(people != 0)
    )
    return Counter({(c, p, lists): int(n) for c, p, lists, n in rows})


def naive(session: Session) -> Counter[Group]:
    """The same, counted the slow way from the tables themselves, in Python."""
    suppressed = set(session.scalars(select(Suppression.email_hash)))
    on_lists: dict[int, list[int]] = {}
    for subscriber_id, list_id in session.execute(
        select(Subscription.subscriber_id, Subscription.list_id).where(
            Subscription.status == SubscriptionStatus.ACTIVE
        )
    ):
        on_lists.setdefault(subscriber_id, []).append(list_id)
    groups: Counter[Group] = Counter()
    for person in session.scalars(select(Subscriber)):
        lists = sorted(on_lists.get(person.id, []))
        if person.status != SubscriberStatus.ACTIVE or person.email_hash in suppressed:
            continue
        if lists:
            key = "," + ",".join(map(str, lists)) + ","
            groups[(person.country or "", person.partner_id or 0, key)] += 1
    return groups


AUDIENCES = (
    Audience(),
    Audience(lists=("newsletter",)),
    Audience(lists=("newsletter", "staff"), exclude_lists=("partners-only",)),
    Audience(exclude_lists=("events",), countries=("VN", "LA")),
    Audience(partners=("Green Delta", "Red River Centre")),
    Audience(lists=("no-such-list",)),
)


def assert_counts_right(session: Session) -> None:
    assert kept(session) == naive(session)
    names = {i: n for i, n in session.execute(select(Partner.id, Partner.name))}
    for audience in AUDIENCES:
        rows = session.execute(audience_query(audience)).all()
        expected = Counter((r.country, names.get(r.partner_id)) for r in rows)
        counted = count_by_country_and_partner(session, audience)
        assert {(c.country, c.partner): c.count for c in counted} == expected, audience
        assert count_audience(session, audience) == len(rows)


# --- the writes -------------------------------------------------------------------------

Write = Callable[[Session], object]


def _id(session: Session, email: str) -> int:
    return repo.get_subscriber(session, email).id


def _csv(rows: list[tuple[str, str, str, str]]) -> bytes:
    lines = ["email,country,partner,lists"]
    lines += [f"{email},{country},{partner},{lists}" for email, country, partner, lists in rows]
    return "\n".join(lines).encode()


def _archive(session: Session, slug: str) -> object:
    return mailing_lists.remove_list(session, slug, campaigns=1)  # a list campaigns used


def _replenish(session: Session) -> None:
    """Lists and partners removed by earlier writes come back (deleted ones under new
    ids, archived ones taken out of the archive), and so do people removed or erased."""
    session.execute(update(MailingList).values(archived_at=None))  # by hand: slugs stay taken
    for slug in LISTS:
        found = session.scalar(select(MailingList).where(MailingList.slug == slug))
        if found is None:
            mailing_lists.add_list(session, slug)
    for name, country in zip(PARTNERS, ("LA", "VN", "VN"), strict=True):
        if partner_store.find_partner(session, name) is None:
            partner_store.add_partner(session, name, country)
    for n, address in enumerate(EMAILS):  # people removed or erased come back too
        if repo.find_subscriber(session, address) is None:
            repo.add_subscriber(
                session,
                address,
                country=COUNTRIES[n % 4],
                partner=PARTNERS[n % 3] if n % 5 else None,
                lists=LISTS[n % 3 : n % 3 + 2],
            )


email = st.sampled_from(EMAILS)
slug = st.sampled_from(LISTS)
slugs = st.lists(slug, max_size=3, unique=True)
country = st.sampled_from(COUNTRIES)
partner = st.sampled_from((*PARTNERS, None))
status = st.sampled_from(list(SubscriberStatus))

writes: st.SearchStrategy[tuple[str, Write]] = st.one_of(
    st.builds(
        lambda e, c, p, ls: (
            "add",
            lambda s: repo.add_subscriber(s, e, country=c, partner=p, lists=ls),
        ),
        email,
        country,
        partner,
        slugs,
    ),
    st.builds(
        lambda e, c: ("country", lambda s: repo.update_subscriber(s, e, country=c)),
        email,
        country,
    ),
    st.builds(
        lambda e, p: ("partner", lambda s: repo.update_subscriber(s, e, partner=p)),
        email,
        partner,
    ),
    st.builds(
        lambda e, x: ("status", lambda s: repo.update_subscriber(s, e, status=x)), email, status
    ),
    st.builds(
        lambda e, n: ("address", lambda s: repo.update_subscriber(s, e, email=EMAILS[n])),
        email,
        st.integers(0, len(EMAILS) - 1),
    ),
    st.builds(lambda e: ("remove", lambda s: repo.remove_subscriber(s, e)), email),
    st.builds(
        lambda e, ls: ("subscribe", lambda s: [repo.subscribe(s, _id(s, e), x) for x in ls]),
        email,
        slugs,
    ),
    st.builds(
        lambda e, x: ("unsubscribe", lambda s: repo.unsubscribe(s, _id(s, e), x)),
        email,
        st.sampled_from((*LISTS, None)),
    ),
    st.builds(lambda e: ("resubscribe", lambda s: repo.resubscribe(s, _id(s, e))), email),
    st.builds(
        lambda e, ls: ("preferences", lambda s: repo.set_preferences(s, _id(s, e), ls)),
        email,
        slugs,
    ),
    st.builds(
        lambda rows, x: ("import", lambda s: import_csv(s, _csv(rows), list_slug=x)),
        st.lists(
            st.tuples(
                email,
                st.sampled_from(("VN", "LA", "TH", "")),
                st.sampled_from((*PARTNERS, "")),
                st.lists(slug, max_size=2, unique=True).map(";".join),
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda row: row[0],
        ),
        st.sampled_from((*LISTS, None)),
    ),
    st.builds(lambda e: ("erase", lambda s: erase(s, e)), email),
    st.builds(lambda e: ("suppress", lambda s: suppress(s, e, "bounce")), email),
    st.builds(lambda e: ("unsuppress", lambda s: unsuppress(s, e)), email),
    st.builds(lambda x: ("delete list", lambda s: mailing_lists.remove_list(s, x)), slug),
    st.builds(lambda x: ("archive list", lambda s: _archive(s, x)), slug),
    st.builds(
        lambda p: ("remove partner", lambda s: partner_store.remove_partner(s, p)),
        st.sampled_from(PARTNERS),
    ),
    st.just(
        (
            "bulk status",  # any other tool: one statement over many rows
            lambda s: s.execute(
                update(Subscriber)
                .where(Subscriber.country == "VN")
                .values(status=SubscriberStatus.ACTIVE)
            ),
        )
    ),
    st.just(
        (
            "bulk subscriptions",
            lambda s: s.execute(
                update(Subscription)
                .where(Subscription.list_id % 2 == 0)
                .values(status=SubscriptionStatus.UNSUBSCRIBED)
            ),
        )
    ),
    st.just(("bulk delete", lambda s: s.execute(delete(Suppression)))),
)


def test_kept_counts_equal_a_naive_count_after_any_writes(
    sessions: sessionmaker[Session],
) -> None:
    """Random sequences of every kind of write, each committed or rolled back (a failed
    write, or a good one given up): afterwards the kept counts are the naive ones."""
    with sessions.begin() as session:
        _replenish(session)
    seen: Counter[str] = Counter()

    @settings(deadline=None, max_examples=40)  # no timing in tests: the machine is shared
    @given(st.lists(st.tuples(writes, st.booleans()), min_size=1, max_size=8))
    def check(steps: list[tuple[tuple[str, Write], bool]]) -> None:
        for (name, write), give_up in steps:
            with sessions() as session:
                try:
                    write(session)
                    session.flush()
                except StoreError:
                    session.rollback()
                    seen["refused"] += 1
                    continue
                if give_up:
                    assert_counts_right(session)  # inside the transaction, too
                    session.rollback()
                else:
                    session.commit()
                    seen[name] += 1
            with sessions() as session:
                assert_counts_right(session)
                seen["someone counted"] += bool(kept(session))
        with sessions.begin() as session:
            _replenish(session)

    check()
    # The random writes reached the interesting cases: people counted, writes refused,
    # most kinds of write committed.
    assert seen["someone counted"] > 0 and seen["refused"] > 0 and len(seen) > 12, seen


def test_concurrent_writers_keep_the_counts_right(sessions: sessionmaker[Session]) -> None:
    """Four threads changing the same people's lists and statuses at the same time
    (PostgreSQL runs them concurrently; SQLite one writer at a time)."""
    with sessions.begin() as session:
        _replenish(session)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for round_ in range(15):
                for n, address in enumerate(EMAILS):
                    if (n + seed + round_) % 3:
                        continue
                    chosen = [x for i, x in enumerate(LISTS) if (i + seed + round_) % 2]
                    try:
                        with sessions.begin() as session:
                            person = _id(session, address)
                            repo.set_preferences(session, person, chosen)
                            repo.update_subscriber(session, address, country=COUNTRIES[round_ % 3])
                    except IntegrityError:
                        # Two threads subscribing one person to one list at once: the
                        # second is refused by the primary key (the application's race,
                        # not the counts'); what was committed must still be counted right.
                        continue
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with sessions() as session:
        assert_counts_right(session)
        assert sum(kept(session).values()) == len(EMAILS)  # everyone is on some list
        if session.get_bind().dialect.name == "postgresql":  # the folding keeps it small
            rows = session.scalar(select(func.count()).select_from(AudienceCount))
            assert rows == len(kept(session))


def test_the_migration_counts_what_is_there_and_goes_back_down(engine: Engine) -> None:
    """Upgrading an installation with subscribers in it counts them; downgrading drops
    the counts and the triggers, and writes then work as before."""
    sessions = db.session_factory(engine)
    db.downgrade(engine, "0011")
    with sessions.begin() as session:
        _replenish(session)
        suppress(session, EMAILS[0], "bounce")
        repo.unsubscribe(session, _id(session, EMAILS[1]))
    db.upgrade(engine)
    with sessions() as session:
        assert_counts_right(session)
        assert sum(kept(session).values()) == len(EMAILS) - 2
    db.downgrade(engine, "0011")
    with sessions.begin() as session:
        repo.remove_subscriber(session, EMAILS[2])
        tables = "audience_counts" in {
            row[0]
            for row in session.execute(
                text("SELECT name FROM sqlite_master")
                if session.get_bind().dialect.name == "sqlite"
                else text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        }
        assert not tables
    db.upgrade(engine)
    with sessions() as session:
        assert_counts_right(session)
        assert sum(kept(session).values()) == len(EMAILS) - 3
