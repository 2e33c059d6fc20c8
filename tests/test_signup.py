"""Public sign-up with double opt-in, through the web app and a real SMTP server, on
SQLite and PostgreSQL: what is mailed, what confirming records, and what must not leak
or be abused (suppressed addresses, the cooldown, throttles, honeypot, fill time,
forged and expired links)."""

# ruff: noqa: F811
from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from mailer import db
from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer
from mailer.compose import Root, build
from mailer.delivery import campaigns, lifecycle
from mailer.people.signup_tokens import make_stamp
from subscribers import mailing_lists, privacy, repository, signup_counts, signups, suppression
from subscribers.audience import Audience
from subscribers.models import SubscriberStatus, Subscription, SubscriptionStatus
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401
from tests.waiting import wait_until
from tests.web_harness import add_user, client, csrf_of, login, make_app

SEED = REPO / "examples" / "issues" / "2022-13.yaml"
STAMP = re.compile(r'name="stamp" value="([^"]+)"')
CONSENT = re.compile(r'name="consent_text" value="([^"]+)"')
LINK = re.compile(r"https://news\.example\.org/subscribe/confirm/[0-9]+\.[0-9]+\.[A-Za-z0-9_-]+")


def make_root(tmp_path: Path, database_url: str, smtp_port: int, **overrides: object) -> Root:
    values: dict[str, object] = {"signup_min_fill_seconds": 0, "retry_base_seconds": 0.0}
    values.update(overrides)
    root = build(make_settings(tmp_path, database_url=database_url, smtp_port=smtp_port, **values))
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", "Every issue", public=True)
        mailing_lists.add_list(session, "events", "Events", "Workshops", public=True)
        mailing_lists.add_list(session, "partners-only", "Partners only", public=False)
    return root


def form_of(http: TestClient, path: str = "/subscribe/newsletter") -> dict[str, str]:
    page = http.get(path)
    assert page.status_code == 200, page.text
    stamp, consent = STAMP.search(page.text), CONSENT.search(page.text)
    assert stamp and consent
    return {"stamp": html.unescape(stamp.group(1)), "consent_text": html.unescape(consent.group(1))}


def sign_up(
    http: TestClient,
    email: str,
    *,
    lists: tuple[str, ...] = ("newsletter",),
    path: str = "/subscribe/newsletter",
    **extra: str,
) -> tuple[int, str]:
    fields: dict[str, str | list[str]] = {
        **form_of(http, path),
        "email": email,
        "name": "Nguyễn Thị Thu Hà",
        "country": "VN",
        "lists": list(lists),
        "consent": "yes",
        "website": "",
        **extra,
    }
    response = http.post("/subscribe", data=fields)
    return response.status_code, _main(response.text)


def _main(page: str) -> str:
    """The page's main part (the only part that differs between answers)."""
    found = re.search(r"<main.*?</main>", page, re.DOTALL)
    return found.group() if found else page


def link_in(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    found = LINK.search(text.get_content())
    assert found, text.get_content()
    return found.group().removeprefix("https://news.example.org")


def subscription(root: Root, email: str, slug: str) -> Subscription | None:
    with root.sessions() as session:
        person = repository.find_subscriber(session, email)
        if person is None:
            return None
        found = [s for s in repository.subscriptions_of(session, person.id) if s.list.slug == slug]
        return found[0] if found else None


@pytest.fixture
def app_root(
    tmp_path: Path, database_url: str, smtp_server: SMTPTestServer
) -> Iterator[tuple[FastAPI, Root]]:
    root = make_root(tmp_path, database_url, smtp_server.port)
    yield make_app(root), root
    root.close()


def test_sign_up_mails_a_confirmation_and_only_its_post_confirms(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, root = app_root
    http = client(app)
    status, page = sign_up(http, "Thuha@Example.org", lists=("newsletter", "events"))
    assert status == 200 and "Check your inbox" in page
    assert smtp_server.wait_for(1)
    message = smtp_server.parsed()[0]
    assert message["To"] == "Thuha@example.org"
    assert message["Subject"].startswith("Confirm your subscription")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None  # not a list message: nobody is on a list yet
    html_part = message.get_body(("html",))
    assert html_part is not None and "Confirm my subscription" in html_part.get_content()
    assert "LMEC Newsletter" in html_part.get_content() and "\\u{" not in html_part.get_content()
    link = link_in(message)
    assert link.rsplit("/", 1)[1] in html_part.get_content()  # the button and the link shown
    with root.sessions() as session:
        assert repository.find_subscriber(session, "thuha@example.org") is None
        assert signup_counts.count_pending(session) == 1

    shown = http.get(link)  # what a mail scanner does: nothing changes
    assert shown.status_code == 200 and ">Confirm</button>" in shown.text
    assert "T***@example.org" in shown.text and "Events" in shown.text
    assert http.get(link).status_code == 200
    assert subscription(root, "thuha@example.org", "newsletter") is None

    refused = http.post(link, data={})  # no CSRF token: refused, nothing changes
    assert refused.status_code == 403
    assert subscription(root, "thuha@example.org", "newsletter") is None

    done = http.post(link, data={"csrf_token": csrf_of(shown.text)})
    assert done.status_code == 303
    assert "You are subscribed" in http.get(link).text
    before = datetime.now(UTC)
    for slug in ("newsletter", "events"):
        record = subscription(root, "thuha@example.org", slug)
        assert record is not None and record.status == SubscriptionStatus.ACTIVE
        assert record.consent_source == "signup-page"
        assert record.consent_form == "page:newsletter"
        assert record.consent_text == root.settings.signup_consent_text
        assert record.consent_ip == "testclient" and record.consent_confirm_ip == "testclient"
        assert record.consent_confirmed_at is not None
        assert record.consent_at <= record.consent_confirmed_at <= before + timedelta(seconds=1)
    with root.sessions() as session:
        person = repository.find_subscriber(session, "thuha@example.org")
        assert person is not None and person.status == SubscriberStatus.ACTIVE
        assert person.name == "Nguyễn Thị Thu Hà" and person.country == "VN"
        assert person.timezone == "Asia/Ho_Chi_Minh"
        assert signup_counts.count_pending(session) == 0
        row = session.scalars(select(signups.Signup)).one()
        assert row.email is None and row.ip is None  # the subscription holds it now
        exported = privacy.export_person(session, "thuha@example.org")
        assert exported["subscriptions"][0]["consent_text"] == root.settings.signup_consent_text
    again = http.post(link, data={"csrf_token": csrf_of(shown.text)})  # twice: no harm
    assert again.status_code == 303

    # The next campaign reaches the new subscriber.
    smtp_server.clear()
    with root.sessions.begin() as session:
        campaign_id = campaigns.create_campaign(
            session,
            name="Issue 13",
            issue_path=SEED,
            issue=load_issue(SEED),
            sender="LMEC Newsletter <newsletter@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        ).id
    lifecycle.start_sending(
        root.sessions, campaign_id, renderer=Renderer.from_settings(root.settings)
    )
    root.worker().run(threading.Event(), until_idle=True)
    assert smtp_server.wait_for(1)
    assert smtp_server.count() == 1
    assert "Thuha@example.org" in str(smtp_server.parsed()[0]["To"])


def test_forged_altered_and_expired_links_change_nothing(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, root = app_root
    http = client(app)
    sign_up(http, "linh@example.vn")
    assert smtp_server.wait_for(1)
    link = link_in(smtp_server.parsed()[0])
    head, expires, signature = link.rsplit("/", 1)[1].split(".")
    token = http.get(link)
    csrf = csrf_of(token.text)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    later = str(int(expires) + 86400)
    for bad in (
        f"{head}.{expires}.{flipped}",  # altered signature
        f"{head}.{later}.{signature}",  # a later expiry, same signature
        f"{int(head) + 1}.{expires}.{signature}",  # another request's id
        "1.2.3",
        "not-a-token",
        f"{head}.{expires}",
    ):
        for method in ("get", "post"):
            response = getattr(http, method)(
                f"/subscribe/confirm/{bad}",
                **({"data": {"csrf_token": csrf}} if method == "post" else {}),
            )
            assert response.status_code in (400, 404), (bad, method, response.status_code)
    assert subscription(root, "linh@example.vn", "newsletter") is None

    with root.sessions.begin() as session:  # the link's time is up
        session.execute(
            update(signups.Signup).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    # The row's expiry is signed into the link: moving it makes the old link invalid too,
    # so make the link the row now names, as if it had been sent with that expiry.
    with root.sessions() as session:
        row = session.scalars(select(signups.Signup)).one()
        expired_link = app.state.signups.confirm_url(row).removeprefix("https://news.example.org")
    page = http.get(expired_link)
    assert page.status_code == 400 and "This link has expired" in page.text
    response = http.post(expired_link, data={"csrf_token": csrf})
    assert response.status_code == 400 and "expired" in response.text
    assert subscription(root, "linh@example.vn", "newsletter") is None


def test_a_repeated_sign_up_sends_nothing_more_within_the_cooldown_and_says_the_same(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, root = app_root
    http = client(app)
    first = sign_up(http, "aung@example.mm")
    assert smtp_server.wait_for(1)
    second = sign_up(http, "aung@example.mm", lists=("events",))
    assert second == first
    # An address already active is answered the same, and gets nothing within the cooldown.
    with root.sessions.begin() as session:
        repository.add_subscriber(session, "active@example.org", lists=["newsletter"])
    active_first = sign_up(http, "active@example.org")
    active_again = sign_up(http, "active@example.org")
    assert active_first == active_again == first
    assert smtp_server.wait_for(2)
    assert sorted(m["To"] for m in smtp_server.parsed()) == [
        "active@example.org",
        "aung@example.mm",
    ]
    with root.sessions() as session:  # the first request's link still works
        assert signup_counts.count_pending(session) == 2


def test_suppressed_erased_and_bounced_addresses_are_never_mailed(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, root = app_root
    http = client(app)
    with root.sessions.begin() as session:
        suppression.suppress(session, "gone@example.org", "hard bounce")
        repository.add_subscriber(session, "erased@example.org", lists=["newsletter"])
        privacy.erase(session, "erased@example.org")
        person = repository.add_subscriber(session, "bounced@example.org")
        repository.set_status(session, person.id, SubscriberStatus.BOUNCED)
    answers = {
        sign_up(http, address)
        for address in (
            "GONE@example.org",
            "erased@example.org",
            "bounced@example.org",
            "new@example.org",
        )
    }
    assert len(answers) == 1  # the same page for all four
    assert smtp_server.wait_for(1)
    assert [m["To"] for m in smtp_server.parsed()] == ["new@example.org"]
    with root.sessions() as session:
        assert signup_counts.count_pending(session) == 1


def test_an_unsubscribed_address_comes_back_only_by_confirming(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, root = app_root
    http = client(app)
    with root.sessions.begin() as session:
        person = repository.add_subscriber(
            session, "left@example.org", name="Somchai", lists=["newsletter"]
        )
        repository.unsubscribe(session, person.id, source="one-click")
    sign_up(http, "left@example.org", name="Someone Else")
    assert smtp_server.wait_for(1)
    record = subscription(root, "left@example.org", "newsletter")
    assert record is not None and record.status == SubscriptionStatus.UNSUBSCRIBED
    link = link_in(smtp_server.parsed()[0])
    http.post(link, data={"csrf_token": csrf_of(http.get(link).text)})
    record = subscription(root, "left@example.org", "newsletter")
    assert record is not None and record.status == SubscriptionStatus.ACTIVE
    with root.sessions() as session:
        found = repository.find_subscriber(session, "left@example.org")
        assert found is not None and found.status == SubscriberStatus.ACTIVE
        assert found.name == "Somchai"  # a sign-up never rewrites someone's details


def test_throttles_per_client_and_per_address(
    tmp_path: Path, database_url: str, smtp_server: SMTPTestServer
) -> None:
    root = make_root(
        tmp_path,
        database_url,
        smtp_server.port,
        signup_per_ip_per_hour=4,
        signup_per_address_per_day=2,
        signup_cooldown_minutes=0,
    )
    try:
        http = client(make_app(root))
        assert sign_up(http, "a@example.org")[0] == 200
        assert sign_up(http, "a@example.org")[0] == 200
        status, page = sign_up(http, "a@example.org")  # a third for the address
        assert status == 429 and "try again in" in page
        assert sign_up(http, "b@example.org")[0] == 200  # the fourth from this client
        status, page = sign_up(http, "c@example.org")  # the fifth
        assert status == 429 and "Please try again later" in page
        assert smtp_server.wait_for(3)
        assert sorted(m["To"] for m in smtp_server.parsed()) == [
            "a@example.org",
            "a@example.org",
            "b@example.org",
        ]
    finally:
        root.close()


def test_the_honeypot_and_a_form_sent_too_fast_mail_nothing(
    tmp_path: Path, database_url: str, smtp_server: SMTPTestServer
) -> None:
    root = make_root(tmp_path, database_url, smtp_server.port, signup_min_fill_seconds=600)
    try:
        http = client(make_app(root))
        status, page = sign_up(http, "robot@example.org", website="http://spam.example")
        assert status == 200 and "Check your inbox" in page  # a robot learns nothing
        status, page = sign_up(http, "quick@example.org")
        assert status == 400 and "press Subscribe again" in page
        assert 'value="quick@example.org"' in page  # what was typed comes back
        with root.sessions() as session:
            assert signup_counts.count_pending(session) == 0
        forged = {
            "stamp": make_stamp("another secret", "page", "newsletter", "I agree.", 0),
            "consent_text": "I agree.",
            "email": "x@example.org",
            "lists": "newsletter",
            "consent": "yes",
        }
        response = http.post("/subscribe", data=forged)
        assert response.status_code == 400 and "did not come from us" in response.text
        assert smtp_server.count() == 0
    finally:
        root.close()


def test_bad_fields_come_back_with_messages_and_nothing_is_stored(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, root = app_root
    http = client(app)
    status, page = sign_up(http, "not an address", lists=(), consent="")
    assert status == 400
    assert 'id="err-email"' in page and 'id="err-lists"' in page and 'id="err-consent"' in page
    status, page = sign_up(http, "x@example.org", lists=("partners-only",))
    assert status == 400 and "Please choose among the lists shown" in page
    status, page = sign_up(http, "x@example.org", country="Atlantis")
    assert status == 400 and 'id="err-country"' in page
    assert http.get("/subscribe/partners-only").status_code == 404  # private: like unknown
    assert http.get("/subscribe/nothing-here").status_code == 404
    with root.sessions() as session:
        assert signup_counts.count_pending(session) == 0
    assert smtp_server.count() == 0


def test_staff_see_pending_sign_ups_weekly_counts_and_the_snippet(
    app_root: tuple[FastAPI, Root], smtp_server: SMTPTestServer
) -> None:
    app, _ = app_root
    add_user(app, "admin@example.org", "admin")
    add_user(app, "editor@example.org", "editor")
    sign_up(client(app), "waiting@example.org")
    assert smtp_server.wait_for(1)
    http, _ = login(app, "admin@example.org")
    page = http.get("/subscribers/signups")
    assert page.status_code == 200
    assert "waiting@example.org" in page.text and "unconfirmed" in page.text
    assert "page:newsletter" in page.text
    assert "0 / 1" in page.text  # this week: none confirmed of one asked
    snippet = http.get("/lists/newsletter/signup")
    assert snippet.status_code == 200
    assert "action=&#34;https://news.example.org/subscribe&#34;" in snippet.text
    assert "&lt;script" not in snippet.text and 'name="website"' not in snippet.text
    assert http.get("/subscribers").text.count('href="/subscribers/signups"') == 1
    editor, _ = login(app, "editor@example.org")
    assert editor.get("/subscribers/signups").status_code == 403
    assert editor.get("/lists/newsletter/signup").status_code == 403


def test_purge_deletes_unconfirmed_sign_ups_after_the_configured_days(
    app_root: tuple[FastAPI, Root],
    smtp_server: SMTPTestServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    app, root = app_root
    http = client(app)
    sign_up(http, "old@example.org")
    sign_up(http, "new@example.org")
    assert smtp_server.wait_for(2)
    with root.sessions.begin() as session:
        session.execute(
            update(signups.Signup)
            .where(signups.Signup.email == "old@example.org")
            .values(
                created_at=datetime.now(UTC) - timedelta(days=8),
                expires_at=datetime.now(UTC) - timedelta(days=1),
            )
        )
    from mailer.cli.main import app as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_DATABASE_URL", root.settings.resolved_database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["subscribers", "purge-unconfirmed"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 unconfirmed sign-up " in result.output
    with root.sessions() as session:
        assert [s.email for s in signup_counts.pending(session)] == ["new@example.org"]
    result = CliRunner().invoke(cli, ["subscribers", "purge-unconfirmed"])
    assert "deleted 0 unconfirmed sign-ups" in result.output


def test_migration_0010_goes_down_and_up(engine: object) -> None:
    from sqlalchemy import Engine, inspect

    assert isinstance(engine, Engine)
    db.downgrade(engine, "0009")
    tables = set(inspect(engine).get_table_names())
    assert "signups" not in tables and "signup_throttle" not in tables
    db.upgrade(engine)
    assert db.is_up_to_date(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("subscriptions")}
    assert {"consent_form", "consent_text", "consent_confirmed_at"} <= columns


def test_the_scheduler_purges_unconfirmed_sign_ups(
    tmp_path: Path, database_url: str, smtp_server: SMTPTestServer
) -> None:
    """The scheduler's re-read runs the purge (once an hour), so a running installation
    deletes expired sign-ups without anyone running the command."""
    root = make_root(tmp_path, database_url, smtp_server.port, scheduler_poll_seconds=0.2)
    try:
        sign_up(client(make_app(root)), "expired@example.org")
        with root.sessions.begin() as session:
            session.execute(
                update(signups.Signup).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        scheduler = root.scheduler()
        scheduler.start()
        try:
            wait_until(lambda: _pending(root) == 0, "the scheduler to purge the sign-up")
        finally:
            scheduler.stop()
    finally:
        root.close()


def _pending(root: Root) -> int:
    with root.sessions() as session:
        return signup_counts.count_pending(session)


def test_a_list_s_welcome_issue_is_mailed_once_confirmed(
    tmp_path: Path, database_url: str, smtp_server: SMTPTestServer
) -> None:
    issues = tmp_path / "issues"
    issues.mkdir()
    (issues / "2022-13.yaml").write_bytes(SEED.read_bytes())
    root = make_root(tmp_path, database_url, smtp_server.port, issues_dir=issues)
    try:
        app = make_app(root)
        add_user(app, "admin@example.org", "admin")
        admin, token = login(app, "admin@example.org")
        chosen = admin.post(
            "/lists/newsletter/signup", data={"csrf_token": token, "welcome_issue": "2022-13"}
        )
        assert chosen.status_code == 303
        refused = admin.post(
            "/lists/events/signup", data={"csrf_token": token, "welcome_issue": "../etc/passwd"}
        )
        assert refused.status_code == 303
        with root.sessions() as session:
            assert mailing_lists.get_list(session, "newsletter").welcome_issue == "2022-13"
            assert mailing_lists.get_list(session, "events").welcome_issue is None
        http = client(app)
        sign_up(http, "hello@example.org", lists=("newsletter", "events"))
        assert smtp_server.wait_for(1)
        link = link_in(smtp_server.parsed()[0])
        http.post(link, data={"csrf_token": csrf_of(http.get(link).text)})
        assert smtp_server.wait_for(2)
        welcome = smtp_server.parsed()[1]
        assert welcome["To"].addresses[0].addr_spec == "hello@example.org"
        assert "Working-Group Meeting" in str(welcome["Subject"])
        assert "/unsubscribe/" in str(welcome["List-Unsubscribe"])
        assert smtp_server.count() == 2  # one welcome, for the one list that has one
    finally:
        root.close()
