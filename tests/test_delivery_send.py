"""Delivery end to end against a real aiosmtpd server, on SQLite and PostgreSQL.

500 recipients in the six countries; faults (451 deferrals, 550 5.1.1, a dropped
connection mid-DATA, a server that is down, a refused login); header injection.
Every message that arrives is parsed with Python's email parser.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer
from mailer.cli import delivery as delivery_cli
from mailer.cli.main import app
from mailer.compose import Root, build
from mailer.delivery import campaigns, dispatch, ledger, lifecycle, progress
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.dispatch import Worker
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from mailer.delivery.tokens import read_token
from mailer.delivery.transport import AuthenticationError
from subscribers import mailing_lists, repository, suppression
from subscribers import partners as partner_store
from subscribers.audience import Audience
from subscribers.models import Subscriber, SubscriberStatus
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer, free_port, smtp_server  # noqa: F401

ISSUE = REPO / "examples" / "issues" / "2022-15.yaml"
NAMES = {
    "CN": "张玉军",
    "KH": "ស្រី សុនលាង",
    "LA": "ລອນຄຳ ອັດສະນາວົງ",
    "MM": "သော်သော်ဟန်",
    "TH": "นฤมล โอริส",
    "VN": "Lê Ngọc Tuấn",
}
SECRET = "test-secret-key-0123456789abcdef"


def delivery_root(tmp_path: Path, database_url: str, port: int, **overrides: object) -> Root:
    values: dict[str, object] = {
        "database_url": database_url,
        "smtp_port": port,
        "smtp_connections": 2,
        "retry_base_seconds": 0.0,
        "worker_batch_size": 50,
    }
    values.update(overrides)
    return build(make_settings(tmp_path, **values))


def add_recipients(session: Session, count: int, list_slug: str = "newsletter") -> list[str]:
    """`count` subscribers spread over the six countries, names in their own scripts."""
    if partner_store.find_partner(session, "MEE") is None:
        mailing_lists.add_list(session, list_slug)
        partner_store.add_partner(session, "MEE", "CN")
    emails = []
    countries = sorted(NAMES)
    for index in range(count):
        country = countries[index % len(countries)]
        email = f"person{index}@{country.lower()}.example.org"
        repository.add_subscriber(
            session,
            email,
            name=f"{NAMES[country]} {index}",
            country=country,
            partner="MEE" if country == "CN" else None,
            lists=[list_slug],
        )
        emails.append(email)
    return emails


def seed_campaign(root: Root, name: str = "Issue 15") -> int:
    """A campaign of the real Issue 15 seed, rendered by the real renderer, sending."""
    renderer = Renderer.from_settings(root.settings)
    issue = load_issue(ISSUE)
    with root.sessions.begin() as session:
        campaign = campaigns.create_campaign(
            session,
            name=name,
            issue_path=ISSUE,
            issue=issue,
            sender="LMEC Newsletter <newsletter@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        campaign_id = campaign.id
    lifecycle.start_sending(root.sessions, campaign_id, renderer=renderer)
    return campaign_id


def decoded_to(data: bytes) -> str:
    raw = BytesHeaderParser(policy=compat32).parsebytes(data)["To"]
    return str(make_header(decode_header(raw)))


def send_all(worker: Worker, sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Run the worker until the campaign is finished (each pass ends when nothing is due)."""
    for _ in range(100):
        worker.run(threading.Event(), until_idle=True)
        with sessions() as session:
            if campaigns.get_campaign(session, campaign_id).state != CampaignState.SENDING:
                return
    raise AssertionError("campaign did not finish")


@pytest.fixture
def server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as running:
        yield running


def test_500_recipients_each_get_exactly_their_own_message(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 500)
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)

    arrivals = server.arrivals()
    assert set(arrivals) == set(emails)
    assert set(arrivals.values()) == {1}
    with root.sessions() as session:
        by_email = {s.email: s for s in session.scalars(select(Subscriber))}
        assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENT
        tally = ledger.progress(session, campaign_id)
        assert (tally.total, tally.sent, tally.failed) == (500, 500, 0)
        sent_ids = set(session.scalars(select(LedgerRow.message_id)))
    message_ids = set()
    for received in server.messages:
        message = received.parse()
        to = message["To"].addresses[0]
        subscriber = by_email[to.addr_spec]
        # RFC 2047 decoding gives back the name in its own script. (The stdlib's modern
        # parser puts a space between adjacent encoded words, against RFC 2047 6.2, so
        # the raw header is decoded with the RFC-exact legacy decoder.)
        assert decoded_to(received.data) == f"{subscriber.name} <{subscriber.email}>"
        assert message["Subject"].startswith("Fifth Anniversary")
        assert message["From"].addresses[0].addr_spec == "newsletter@lmec.example.org"
        assert message["List-Id"] == "LMEC Newsletter <newsletter.lmec.example.org>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        text, html = list(message.iter_parts())
        assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        assert text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"]
        assert text["Content-Transfer-Encoding"] == "quoted-printable"
        unsubscribe = message["List-Unsubscribe"].strip("<>")
        token = unsubscribe.rsplit("/", 1)[1]
        assert read_token(SECRET, token) == subscriber.id
        body_text, body_html = text.get_content(), html.get_content()
        assert unsubscribe in body_text and unsubscribe in body_html
        assert f"/preferences/{token}" in body_html
        assert "%%" not in body_text and "%%" not in body_html
        # nobody else's link is in this message
        assert body_html.count("/unsubscribe/") == body_html.count(unsubscribe)
        message_ids.add(message["Message-ID"])
    assert len(message_ids) == 500 and message_ids == sent_ids
    root.close()


def test_deferrals_rejections_and_dropped_connections(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 60)
    deferred, rejected, dropped = emails[0:10], emails[10:15], emails[15:20]
    for email in deferred:
        server.defer(email, times=2)
    for email in rejected:
        server.reject(email, f"550 5.1.1 <{email}>: Recipient address rejected: User unknown")
    for email in dropped:
        server.drop_during_data(email)
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)

    arrivals = server.arrivals()
    assert set(arrivals) == set(emails) - set(rejected)
    assert set(arrivals.values()) == {1}
    with root.sessions() as session:
        rows = {r.email: r for r in session.scalars(select(LedgerRow))}
        for email in deferred:
            assert rows[email].status == LedgerStatus.SENT and rows[email].attempts == 3
        for email in dropped:
            assert rows[email].status == LedgerStatus.SENT and rows[email].attempts == 2
        for email in rejected:
            assert rows[email].status == LedgerStatus.FAILED
            assert (rows[email].last_reply or "").startswith("550 5.1.1")
            assert suppression.is_suppressed(session, email)
        assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENT
        failed = [r.email for r in ledger.failures(session, campaign_id)]
        assert sorted(failed) == sorted(rejected)
    # The next campaign skips the suppressed addresses.
    second = seed_campaign(root, "Issue 15 again")
    with root.sessions() as session:
        assert ledger.progress(session, second).total == 55
    root.close()


def test_a_message_refused_at_its_final_dot_is_failed_or_retried_never_sent(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port, smtp_connections=3)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 12)
    spam, full = emails[0], emails[1]
    server.refuse_message(spam, "554 5.7.1 Message rejected as spam")
    server.refuse_message(full, "452 4.3.1 Insufficient system storage")
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)

    assert server.arrivals() == Counter({email: 1 for email in emails if email != spam})
    with root.sessions() as session:
        rows = {r.email: r for r in session.scalars(select(LedgerRow))}
        assert rows[spam].status == LedgerStatus.FAILED
        assert (rows[spam].last_reply or "").startswith("554 5.7.1")
        assert not suppression.is_suppressed(session, spam)  # the address itself is fine
        assert rows[full].status == LedgerStatus.SENT and rows[full].attempts == 2
    root.close()


def test_a_slow_reply_holds_up_only_its_own_connection(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    """Connections move independently: while one waits for a verdict, the other
    sends everything else (with connections in lock step it would wait too). The
    verdict waits until the 19 others arrived, not a fixed time a busy machine may
    need for them; in lock step they never would, and it comes after 60 s."""
    root = delivery_root(tmp_path, database_url, server.port, smtp_connections=2, smtp_timeout=120)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 20)
    slow = emails[1]
    server.hold_until(slow, until=19, limit=60)
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)
    order = [m.rcpt_tos[0] for m in sorted(server.messages, key=lambda m: m.at)]
    assert sorted(order) == sorted(emails)
    assert order[-1] == slow
    root.close()


def test_a_server_that_never_answers_the_final_dot_is_given_up_on_in_time(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port, smtp_timeout=1.0)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 6)
    stuck = emails[2]
    server.slow_down(stuck, 4.0)  # the first try only
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)
    arrivals = server.arrivals()
    assert set(arrivals) == set(emails)
    assert arrivals[stuck] in (1, 2)  # a message in flight when we gave up may arrive too
    with root.sessions() as session:
        row = session.scalars(select(LedgerRow).where(LedgerRow.email == stuck)).one()
        assert row.status == LedgerStatus.SENT and row.attempts == 2
    root.close()


def test_per_second_rate_limit_holds_across_connections(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(
        tmp_path, database_url, server.port, smtp_connections=4, smtp_rate_per_second=10
    )
    with root.sessions.begin() as session:
        emails = add_recipients(session, 25)
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)
    assert server.arrivals() == Counter({email: 1 for email in emails})
    times = sorted(message.at for message in server.messages)
    # a burst of 10, then 10 a second: the last of 25 cannot arrive before 1.5 s
    assert (times[-1] - times[0]).total_seconds() >= 1.3
    root.close()


def busiest_second(arrivals: list[float]) -> int:
    """The most messages that arrived within any one second (a sliding window)."""
    times = sorted(arrivals)
    return max(bisect_left(times, start + 1.0) - index for index, start in enumerate(times))


def test_rate_limit_holds_at_the_wire_while_connections_open_slowly(
    tmp_path: Path, database_url: str
) -> None:
    """A relay counts messages as they arrive. Connections that take 0.3 s each to
    open (TLS and a login at a real relay) must not bank slots for the messages that
    wait for them: in no second does the server see more than the rate plus the
    burst (5 + 5), whatever the connections and the machine's speed did."""
    with SMTPTestServer(ehlo_delay=0.3, pipelining=True) as slow_to_open:
        root = delivery_root(
            tmp_path,
            database_url,
            slow_to_open.port,
            smtp_connections=4,
            smtp_rate_per_second=5,
        )
        with root.sessions.begin() as session:
            emails = add_recipients(session, 20)
        campaign_id = seed_campaign(root)
        send_all(root.worker(), root.sessions, campaign_id)
        assert slow_to_open.arrivals() == Counter({email: 1 for email in emails})
        assert busiest_second([m.arrived for m in slow_to_open.messages]) <= 5 + 5
        root.close()


def test_recipients_who_left_after_the_campaign_was_queued_are_skipped(
    tmp_path: Path,
    database_url: str,
    server: SMTPTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows are queued when sending starts. Whoever then unsubscribes (from everything,
    or from the campaign's list while staying on another), bounces, is suppressed or is
    removed gets nothing: the worker looks when it claims the rows, records them
    `skipped` with the reason, and the report counts them."""
    root = delivery_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 12)
        mailing_lists.add_list(session, "events")
        repository.subscribe(session, repository.get_subscriber(session, emails[4]).id, "events")
    campaign_id = seed_campaign(root)  # every row queued
    left = {
        emails[1]: "the subscriber became unsubscribed",
        emails[4]: "unsubscribed from the campaign's list(s)",
        emails[7]: "the address was suppressed",
        emails[8]: "the subscriber became bounced",
        emails[10]: "the subscriber was erased",
    }
    with root.sessions.begin() as session:
        person = {email: repository.get_subscriber(session, email).id for email in left}
        repository.unsubscribe(session, person[emails[1]], source="one-click")
        repository.unsubscribe(session, person[emails[4]], "newsletter")  # still on "events"
        suppression.suppress(session, emails[7].upper(), "complaint")
        repository.set_status(session, person[emails[8]], SubscriberStatus.BOUNCED)
        repository.remove_subscriber(session, person[emails[10]])
    send_all(root.worker(), root.sessions, campaign_id)
    assert server.arrivals() == Counter({e: 1 for e in emails if e not in left})
    with root.sessions() as session:
        rows = {r.email: r for r in session.scalars(select(LedgerRow))}
        for email, reason in left.items():
            assert rows[email].status == LedgerStatus.SKIPPED, email
            assert rows[email].last_reply == f"skipped, not sent: {reason} after it was queued"
            assert rows[email].attempts == 0 and rows[email].sent_at is None
        total = ledger.report(session, campaign_id).total
        assert (total.total, total.sent, total.skipped, total.failed) == (12, 7, 5, 0)
        assert total.done == 12 and total.finished
        assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENT
        shown = progress.of_campaigns(session, [campaigns.get_campaign(session, campaign_id)])
        page = shown[campaign_id]  # what the campaign page and the list show
        assert (page.total, page.sent, page.skipped, page.done) == (12, 7, 5, 12)

    monkeypatch.chdir(tmp_path)  # the CLI's report says so too
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(delivery_cli.out, "width", 250)
    report = CliRunner().invoke(app, ["campaign", "report", str(campaign_id)])
    assert report.exit_code == 0, report.stdout
    assert "7 sent, 0 retrying, 0 open, 0 failed, of 12; 5 skipped" in report.stdout
    headers = [line for line in report.stdout.splitlines() if "recipients" in line]
    assert headers and all("skipped" in line for line in headers)  # a column in every table
    root.close()


def test_retries_give_up_after_the_limit(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port, retry_max_attempts=3)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 6)
    server.defer(emails[0], times=10, reply="452 4.2.2 Mailbox full")
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)
    with root.sessions() as session:
        row = session.scalars(select(LedgerRow).where(LedgerRow.email == emails[0])).one()
        assert row.status == LedgerStatus.FAILED and row.attempts == 3
        assert row.last_reply == "gave up after 3 attempts: 452 4.2.2 Mailbox full"
        assert not suppression.is_suppressed(session, emails[0])
    assert server.arrivals()[emails[0]] == 0
    root.close()


def test_backoff_is_exponential_and_capped(tmp_path: Path, database_url: str) -> None:
    root = delivery_root(tmp_path, database_url, 1, retry_base_seconds=60, retry_max_seconds=600)
    worker = root.worker()
    assert [worker.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5, 9)] == [
        60,
        120,
        240,
        480,
        600,
        600,
    ]
    root.close()


def test_server_down_pauses_then_resumes_when_back(tmp_path: Path, database_url: str) -> None:
    port = free_port()  # nothing listens here yet
    root = delivery_root(
        tmp_path, database_url, port, pause_after_consecutive_failures=4, smtp_timeout=2
    )
    with root.sessions.begin() as session:
        emails = add_recipients(session, 12)
    campaign_id = seed_campaign(root)
    worker = root.worker()
    worker.run_once()
    with root.sessions() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        assert campaign.state == CampaignState.PAUSED and campaign.auto_resume
        assert "SMTP server failing" in (campaign.state_reason or "")
        assert "cannot connect to SMTP server" in (campaign.state_reason or "")
    assert worker.run_once() == 0  # a paused campaign hands out no rows
    assert worker.probe_paused() == []  # still down
    with SMTPTestServer(port=port) as server:
        assert worker.probe_paused() == [campaign_id]
        send_all(worker, root.sessions, campaign_id)
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails) and set(arrivals.values()) == {1}
    root.close()


def test_a_batch_takes_more_rows_as_it_empties(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connections do not wait at a batch boundary: as the batch empties the worker
    claims the next rows into it, each still sent exactly once (issue 12, PostgreSQL
    send speed). The time a batch may go on taking rows is lifted, so a slow machine
    cannot end it early."""
    monkeypatch.setattr(dispatch, "REFILL_SECONDS", 3600.0)
    with SMTPTestServer() as server:
        root = delivery_root(tmp_path, database_url, server.port, worker_batch_size=3)
        with root.sessions.begin() as session:
            emails = add_recipients(session, 10)
        campaign_id = seed_campaign(root)
        worker = root.worker()
        assert worker.run_once() == 10  # a batch of 3, topped up three times
        worker.close()
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails) and set(arrivals.values()) == {1}
    with root.sessions() as session:
        assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENT
        assert ledger.progress(session, campaign_id).sent == 10
    root.close()


def test_wrong_password_sends_nothing(tmp_path: Path, database_url: str) -> None:
    with SMTPTestServer(login=("news", "right")) as server:
        root = delivery_root(
            tmp_path, database_url, server.port, smtp_username="news", smtp_password="wrong"
        )
        with root.sessions.begin() as session:
            add_recipients(session, 5)
        campaign_id = seed_campaign(root)
        worker = root.worker()
        with pytest.raises(AuthenticationError, match="refused the login of 'news'"):
            worker.run_once()
        worker.close()
        assert server.count() == 0
        with root.sessions() as session:
            tally = ledger.progress(session, campaign_id)
            assert tally.pending == 5 and tally.sent == 0
            rows = session.scalars(select(LedgerRow)).all()
            assert {(r.status, r.attempts) for r in rows} == {(LedgerStatus.QUEUED, 0)}
        root.close()
        # The right password delivers.
        root = delivery_root(
            tmp_path, database_url, server.port, smtp_username="news", smtp_password="right"
        )
        send_all(root.worker(), root.sessions, campaign_id)
        assert server.count() == 5
        root.close()


def test_header_injection_never_reaches_the_wire(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 4)
        # The store refuses such names; write one behind its back, as an old import might.
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == emails[0])
            .values(name="Name\r\nBcc: x@evil.example")
        )
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)
    assert set(server.arrivals()) == set(emails[1:])
    assert all(b"evil" not in m.data for m in server.messages)
    with root.sessions() as session:
        row = session.scalars(select(LedgerRow).where(LedgerRow.email == emails[0])).one()
        assert row.status == LedgerStatus.FAILED
        assert "line breaks are not allowed" in (row.last_reply or "")
    root.close()


def test_internationalised_domains_reach_a_relay_without_smtputf8(
    tmp_path: Path, database_url: str
) -> None:
    """jo@bücher.de went out as is (553 from a relay without SMTPUTF8) or, with an ASCII
    name, crashed the sending thread in formataddr; a broken domain fails its row only."""
    with SMTPTestServer(smtputf8=False) as server:
        root = delivery_root(tmp_path, database_url, server.port)
        with root.sessions.begin() as session:
            emails = add_recipients(session, 2)
            repository.add_subscriber(session, "jo@bücher.de", name="Jo", lists=["newsletter"])
            repository.add_subscriber(session, "broken@bü.de", name="Bo", lists=["newsletter"])
            # The store would refuse this domain; write it behind its back, as an old import might.
            session.execute(
                update(Subscriber)
                .where(Subscriber.email == "broken@bü.de")
                .values(email="broken@bü..de")
            )
        campaign_id = seed_campaign(root)
        send_all(root.worker(), root.sessions, campaign_id)
        assert server.arrivals() == Counter({**dict.fromkeys(emails, 1), "jo@xn--bcher-kva.de": 1})
        with root.sessions() as session:
            row = session.scalars(select(LedgerRow).where(LedgerRow.email == "broken@bü..de")).one()
            assert row.status == LedgerStatus.FAILED
            assert "has no valid domain name" in (row.last_reply or "")
        root.close()


def test_paused_and_cancelled_campaigns_are_skipped(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        add_recipients(session, 6)
    first = seed_campaign(root, "paused")
    second = seed_campaign(root, "cancelled")
    with root.sessions.begin() as session:
        lifecycle.pause(session, first)
        lifecycle.cancel(session, second)
    worker = root.worker()
    assert worker.run_once() == 0
    assert server.count() == 0
    with root.sessions.begin() as session:
        lifecycle.resume(session, first)
    send_all(worker, root.sessions, first)
    assert server.count() == 6
    root.close()


def test_campaign_where_every_recipient_failed_is_failed(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    root = delivery_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        emails = add_recipients(session, 3)
    for email in emails:
        server.reject(email, "550 5.7.1 Relaying denied")
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)
    with root.sessions() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        assert campaign.state == CampaignState.FAILED
        assert campaign.state_reason == "every one of 3 recipient(s) failed: see the report"
        assert not any(suppression.is_suppressed(session, e) for e in emails)  # 5.7.x: not 5.1.x
    root.close()


def test_dkim_signing_from_settings(
    tmp_path: Path, database_url: str, server: SMTPTestServer
) -> None:
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    root = delivery_root(
        tmp_path,
        database_url,
        server.port,
        dkim_selector="news",
        dkim_domain="lmec.example.org",
        dkim_private_key_path=key,
    )
    with root.sessions.begin() as session:
        add_recipients(session, 2)
    campaign_id = seed_campaign(root)
    send_all(root.worker(), root.sessions, campaign_id)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert server.count() == 2
    assert all(dkim.verify(m.data, dnsfunc=dns) for m in server.messages)
    root.close()
