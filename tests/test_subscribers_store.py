"""Repository, countries, validation and data-protection requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from subscribers import mailing_lists, search
from subscribers import partners as partner_store
from subscribers import repository as repo
from subscribers.audience import Audience, audience_query
from subscribers.countries import default_timezone, normalise_country, validate_timezone
from subscribers.errors import Conflict, NotFound, StoreInputError
from subscribers.models import Subscriber, SubscriberStatus, SubscriptionStatus
from subscribers.privacy import erase, export_person
from subscribers.suppression import is_suppressed, list_suppressions, suppress
from subscribers.validation import email_hash, normalise_email


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("VN", "VN"),
        ("vn", "VN"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
        ("Việt Nam", "VN"),
        ("Lao PDR", "LA"),
        ("Laos", "LA"),
        ("Burma", "MM"),
        ("Myanmar", "MM"),
        ("Cambodia", "KH"),
        ("Kampuchea", "KH"),
        ("China", "CN"),
        ("PRC", "CN"),
        ("Thailand", "TH"),
        ("  thailand ", "TH"),
        ("Germany", "DE"),
        ("USA", "US"),
    ],
)
def test_country_codes_and_names(text: str, code: str) -> None:
    assert normalise_country(text) == code


def test_unknown_country_says_what_is_accepted() -> None:
    with pytest.raises(StoreInputError) as caught:
        normalise_country("Atlantis")
    message = str(caught.value)
    assert "unknown country 'Atlantis'" in message
    assert "ISO 3166-1 alpha-2" in message and "VN (Vietnam)" in message and "Burma" in message


def test_default_time_zones() -> None:
    expected = {
        "CN": "Asia/Shanghai",
        "KH": "Asia/Phnom_Penh",
        "LA": "Asia/Vientiane",
        "MM": "Asia/Yangon",
        "TH": "Asia/Bangkok",
        "VN": "Asia/Ho_Chi_Minh",
        "DE": "Europe/Berlin",
        "US": "America/New_York",
        None: "UTC",
        "JP": "Asia/Tokyo",
        "BV": "UTC",
    }
    for country, zone in expected.items():
        assert default_timezone(country) == zone, country
    nine = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo(default_timezone("MM")))
    assert nine.astimezone(UTC).strftime("%H:%M") == "02:30"  # Myanmar is UTC+06:30


def test_email_validation_and_hash() -> None:
    assert normalise_email(" Zhang.Wei@EXAMPLE.org ") == "Zhang.Wei@example.org"
    assert email_hash("A@example.org") == email_hash("a@EXAMPLE.ORG")
    for bad in ["", "no-at-sign", "a@b", "two@@example.org"]:
        with pytest.raises(StoreInputError):
            normalise_email(bad)


def test_email_unique_case_insensitively(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = repo.add_subscriber(session, "Li.Xia@Example.org", name="李霞", country="China")
        assert first.email == "Li.Xia@example.org" and first.email_key == "li.xia@example.org"
        assert first.timezone == "Asia/Shanghai"
    with sessions.begin() as session, pytest.raises(Conflict):
        repo.add_subscriber(session, "LI.XIA@example.org")
    with sessions() as session, pytest.raises(IntegrityError):  # the index holds too
        session.add(
            Subscriber(
                email="LI.XIA@example.org",
                email_key="li.xia@example.org",
                email_hash=email_hash("li.xia@example.org"),
                timezone="UTC",
            )
        )
        session.flush()
    with sessions() as session:
        assert repo.get_subscriber(session, "li.xia@EXAMPLE.ORG").name == "李霞"


def test_subscriber_fields_and_updates(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        partner_store.add_partner(session, "ກະຊວງຊັບພະຍາກອນທຳມະຊາດ", "Laos")
        mailing_lists.add_list(session, "newsletter", "Newsletter")
        s = repo.add_subscriber(
            session,
            "s@example.org",
            name="ສົມພອນ",
            partner="ກະຊວງຊັບພະຍາກອນທຳມະຊາດ",
            language="lo",
            attributes={"title": "Dr."},
            lists=["newsletter"],
        )
        assert (s.country, s.timezone) == ("LA", "Asia/Vientiane")  # from the partner
        assert s.created_at.tzinfo is not None
    with sessions.begin() as session:
        s = repo.update_subscriber(session, "s@example.org", country="Burma")
        assert (s.country, s.timezone) == ("MM", "Asia/Yangon")  # default zone follows
        s = repo.update_subscriber(session, s.id, timezone="Europe/Berlin", country="TH")
        assert (s.country, s.timezone) == ("TH", "Europe/Berlin")  # explicit zone stays
        s = repo.update_subscriber(session, s.id, attributes={"dept": "IC"})
        assert s.attributes == {"title": "Dr.", "dept": "IC"}
    with sessions.begin() as session:
        with pytest.raises(StoreInputError, match="unknown time zone 'Mars/Base'"):
            repo.update_subscriber(session, "s@example.org", timezone="Mars/Base")
        with pytest.raises(StoreInputError, match="invalid status"):
            repo.update_subscriber(session, "s@example.org", status="gone")
        with pytest.raises(StoreInputError, match="line break"):
            repo.update_subscriber(session, "s@example.org", name="a\nb")
        with pytest.raises(NotFound):
            repo.get_subscriber(session, "nobody@example.org")
    with sessions() as session:
        found = search.search_subscribers(session, "ສົມ")
        assert [x.email for x in found] == ["s@example.org"]
        assert search.search_subscribers(session, "100%") == []
        assert [x.email for x in search.search_subscribers(session, list_slug="newsletter")] == [
            "s@example.org"
        ]


def test_partner_and_list_management(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        partner = partner_store.add_partner(session, "Green Delta", "VN")
        mailing_lists.add_list(session, "newsletter", "Newsletter", "Monthly news")
        repo.add_subscriber(session, "a@example.org", partner="green delta", lists=["newsletter"])
        with pytest.raises(Conflict):
            partner_store.add_partner(session, "Green Delta")
        with pytest.raises(StoreInputError, match="invalid list slug"):
            mailing_lists.add_list(session, "Bad Slug")
        assert [(c.slug, c.active) for c in mailing_lists.list_counts(session)] == [
            ("newsletter", 1)
        ]
        partner_store.remove_partner(session, partner.id)
    with sessions.begin() as session:
        assert repo.get_subscriber(session, "a@example.org").partner_id is None
        mailing_lists.remove_list(session, "newsletter")
    with sessions() as session:
        assert (
            repo.subscriptions_of(session, repo.get_subscriber(session, "a@example.org").id) == []
        )
        with pytest.raises(NotFound, match="no list 'newsletter'"):
            mailing_lists.get_list(session, "newsletter")


def _recipients(session: Session) -> list[str]:
    return [r.email for r in session.execute(audience_query(Audience()))]


def test_unsubscribe_resubscribe_and_preferences(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter")
        mailing_lists.add_list(session, "partners-only")
        s = repo.add_subscriber(session, "p@example.org", lists=["newsletter", "partners-only"])
        sid = s.id
    with sessions.begin() as session:
        assert repo.unsubscribe(session, sid, source="one-click") == 2
        assert repo.unsubscribe(session, sid) == 0  # idempotent
        assert repo.get_subscriber(session, sid).status == SubscriberStatus.UNSUBSCRIBED
        subscription = repo.subscriptions_of(session, sid)[0]
        assert subscription.unsubscribe_source == "one-click"
        assert subscription.consent_source == "manual"  # the consent record is kept
        assert _recipients(session) == []
    with sessions.begin() as session:
        repo.set_preferences(session, sid, ["partners-only"], ip="203.0.113.9")
    with sessions() as session:
        states = {
            x.list.slug: (x.status, x.consent_ip) for x in repo.subscriptions_of(session, sid)
        }
        assert states == {
            "newsletter": (SubscriptionStatus.UNSUBSCRIBED, None),
            "partners-only": (SubscriptionStatus.ACTIVE, "203.0.113.9"),
        }
        assert _recipients(session) == ["p@example.org"]
    with sessions.begin() as session:
        repo.set_preferences(session, sid, [])
        assert _recipients(session) == []
        repo.update_subscriber(session, sid, status=SubscriberStatus.BOUNCED)
        with pytest.raises(Conflict, match="bounced"):
            repo.resubscribe(session, sid)
        repo.update_subscriber(session, sid, status=SubscriberStatus.UNSUBSCRIBED)
        repo.resubscribe(session, sid, source="web")
        assert _recipients(session) == ["p@example.org"]


def test_erase_keeps_only_a_hash(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter")
        repo.add_subscriber(session, "Erase.Me@example.org", name="ឈ្មោះ", lists=["newsletter"])
        suppress(session, "erase.me@example.org", "bounce: 550 5.1.1 <erase.me@example.org>")
    with sessions() as session:
        data = export_person(session, "ERASE.ME@example.org")
        json.dumps(data, ensure_ascii=False)
        assert data["subscriber"]["name"] == "ឈ្មោះ"
        assert data["subscriptions"][0]["list"] == "newsletter"
        assert data["suppression"]["address_kept"] is True
    forgotten: list[tuple[int | None, str]] = []

    def forget(session: Session, subscriber_id: int | None, email: str) -> int:
        forgotten.append((subscriber_id, email))
        return 3

    with sessions.begin() as session:
        result = erase(session, "erase.me@EXAMPLE.org", also_forget=[forget])
        assert result.subscriber_deleted and result.subscriptions_deleted == 1
        assert result.other_rows_changed == 3
    assert forgotten[0][1] == "erase.me@example.org"
    with sessions() as session:
        assert repo.find_subscriber(session, "erase.me@example.org") is None
        assert is_suppressed(session, "Erase.Me@example.org")
        [entry] = list_suppressions(session)
        assert entry.email is None and "erase.me" not in entry.reason
        assert export_person(session, "erase.me@example.org")["subscriber"] is None
    with sessions.begin() as session:
        repo.add_subscriber(session, "erase.me@example.org", lists=["newsletter"])
        assert _recipients(session) == []  # the hash keeps them off every send
        erase(session, "erase.me@example.org")  # idempotent


def test_migration_downgrade_and_upgrade(engine: Engine) -> None:
    db.downgrade(engine, "base")
    assert "subscribers" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"partners", "subscribers", "lists", "subscriptions", "suppressions"} <= tables


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("utc", "UTC"), ("asia/bangkok", "Asia/Bangkok"), (" Europe/berlin ", "Europe/Berlin")],
)
def test_time_zones_typed_in_another_case_are_found(typed: str, stored: str) -> None:
    assert validate_timezone(typed) == stored


@pytest.mark.parametrize("bad", ["Mars/Base", "../../etc/passwd", "", "localtime", "Asia"])
def test_unknown_time_zones_are_refused(bad: str) -> None:
    with pytest.raises(StoreInputError, match="unknown time zone"):
        validate_timezone(bad)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("EN", "en"), ("zh_CN", "zh-CN"), ("zh-hans", "zh-Hans"), ("Vi", "vi"), ("en-us", "en-US")],
)
def test_language_tags_get_their_usual_case(typed: str, stored: str) -> None:
    assert repo.clean_language(typed) == stored


def test_ids_of_removed_subscribers_are_never_given_again(
    sessions: sessionmaker[Session],
) -> None:
    """Unsubscribe links carry the subscriber id: an erased person's old link must not
    reach whoever is added next (SQLite reuses the highest rowid without AUTOINCREMENT)."""
    with sessions.begin() as session:
        repo.add_subscriber(session, "first@example.org")
        last = repo.add_subscriber(session, "erase.me@example.org")
        erased_id = last.id
    with sessions.begin() as session:
        erase(session, "erase.me@example.org")
    with sessions.begin() as session:
        newcomer = repo.add_subscriber(session, "newcomer@example.org")
        assert newcomer.id > erased_id


def test_preference_lists_are_the_public_ones_and_the_private_ones_a_person_is_on(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        assert mailing_lists.add_list(session, "newsletter", public=True).public is True
        assert (
            mailing_lists.add_list(session, "partners-only").public is False
        )  # private by default
        mailing_lists.add_list(session, "staff")
        member = repo.add_subscriber(session, "m@example.org", lists=["partners-only"]).id
        left = repo.add_subscriber(session, "l@example.org", lists=["staff"]).id
        repo.unsubscribe(session, left, "staff")
        outsider = repo.add_subscriber(session, "o@example.org").id
    with sessions() as session:

        def offered(subscriber_id: int) -> list[str]:
            return [x.slug for x in mailing_lists.preference_lists(session, subscriber_id)]

        assert offered(member) == ["newsletter", "partners-only"]
        assert offered(left) == ["newsletter"]  # a private list one left is not offered again
        assert offered(outsider) == ["newsletter"]
        counts = {c.slug: c.public for c in mailing_lists.list_counts(session)}
        assert counts == {"newsletter": True, "partners-only": False, "staff": False}
    with sessions.begin() as session:
        mailing_lists.update_list(session, "staff", public=True)
        mailing_lists.update_list(session, "newsletter", name="News")  # visibility unchanged
        assert mailing_lists.get_list(session, "newsletter").public is True
        assert [x.slug for x in mailing_lists.preference_lists(session, outsider)] == [
            "newsletter",
            "staff",
        ]


def test_a_zone_sent_back_unchanged_does_not_pin_it(sessions: sessionmaker[Session]) -> None:
    """A form sends every field back; a time zone equal to the stored one is not a
    choice, so a new country still moves a default zone (the CLI passes None)."""
    with sessions.begin() as session:
        s = repo.add_subscriber(session, "aung@example.org", country="MM")
        s = repo.update_subscriber(session, s.id, country="TH", timezone="Asia/Yangon")
        assert (s.country, s.timezone) == ("TH", "Asia/Bangkok")
        s = repo.update_subscriber(session, s.id, country="LA", timezone=" Asia/Bangkok ")
        assert s.timezone == "Asia/Vientiane"
        s = repo.update_subscriber(session, s.id, country="VN", timezone="Asia/Tokyo")
        assert s.timezone == "Asia/Tokyo"  # typed on purpose: stays
        s = repo.update_subscriber(session, s.id, country="KH", timezone="Asia/Tokyo")
        assert s.timezone == "Asia/Tokyo"  # not the old country's default: stays


def test_store_errors_name_their_field(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        partner_store.add_partner(session, "Green Delta", "VN")
        s = repo.add_subscriber(session, "a@example.org")
        cases: list[tuple[Callable[[], object], str]] = [
            (lambda: repo.update_subscriber(session, s.id, timezone="Mars/Olympus"), "timezone"),
            (lambda: repo.update_subscriber(session, s.id, email="nope"), "email"),
            (lambda: repo.update_subscriber(session, s.id, country="Atlantis"), "country"),
            (lambda: repo.update_subscriber(session, s.id, partner="Nobody"), "partner"),
            (lambda: repo.update_subscriber(session, s.id, language="!!"), "language"),
            (lambda: repo.update_subscriber(session, s.id, status="gone"), "status"),
            (lambda: repo.add_subscriber(session, "A@example.org"), "email"),
            (lambda: repo.add_subscriber(session, "b@example.org", lists=["x"]), "lists"),
            (lambda: partner_store.add_partner(session, "green delta"), "name"),
            (lambda: mailing_lists.add_list(session, "Bad Slug"), "slug"),
        ]
        for call, field in cases:
            with pytest.raises((StoreInputError, NotFound, Conflict)) as caught:
                call()
            assert caught.value.field == field, (field, caught.value)


def test_a_list_campaigns_used_is_archived_not_deleted(sessions: sessionmaker[Session]) -> None:
    from subscribers.audience import check_audience, count_audience

    with sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", public=True)
        mailing_lists.add_list(session, "events")
        for n in range(3):
            repo.add_subscriber(session, f"p{n}@example.org", lists=["newsletter", "events"])
        before = mailing_lists.list_removal(session, "newsletter", campaigns=2, sent=1)
        assert (before.active, before.unsubscribed, before.archives) == (3, 0, True)
        done = mailing_lists.remove_list(session, "newsletter", campaigns=2, sent=1)
        assert done == before
    with sessions() as session:
        assert [x.slug for x in mailing_lists.list_lists(session)] == ["events"]
        assert [x.slug for x in mailing_lists.list_lists(session, archived=True)] == ["newsletter"]
        assert [c.slug for c in mailing_lists.list_counts(session)] == ["events"]
        with pytest.raises(NotFound, match="was removed on"):
            mailing_lists.get_list(session, "newsletter")
        with pytest.raises(NotFound, match="removed list"):
            check_audience(session, Audience(lists=("newsletter",)))
        assert count_audience(session, Audience()) == 3  # through "events" only
        assert count_audience(session, Audience(lists=("newsletter",), countries=())) == 0
        person = repo.get_subscriber(session, "p0@example.org")
        with pytest.raises(NotFound):
            repo.subscribe(session, person.id, "newsletter")
        assert [x.slug for x in mailing_lists.preference_lists(session, person.id)] == ["events"]
        with pytest.raises(Conflict, match="a removed list"):
            mailing_lists.add_list(session, "newsletter")
    with sessions.begin() as session:  # a list no campaign used is deleted
        gone = mailing_lists.remove_list(session, "events")
        assert (gone.active, gone.archives) == (3, False)
    with sessions() as session:
        assert mailing_lists.list_lists(session) == []
        assert len(mailing_lists.list_lists(session, archived=True)) == 1
