"""Bounces after acceptance: real delivery reports for messages the worker really sent
(VERP on), read from files, a Maildir, an mbox and over SMTP, on both databases."""

from __future__ import annotations

import mailbox
import smtplib
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from typer.testing import CliRunner

from mailer.cli import bounces as bounces_cli
from mailer.cli.main import app
from mailer.compose import Root
from mailer.delivery import bounces
from mailer.delivery.bounces import Kind
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from subscribers import suppression
from subscribers.models import Subscriber, SubscriberStatus
from tests.smtpd import SMTPTestServer, free_port
from tests.test_delivery_send import add_recipients, delivery_root, seed_campaign, send_all

SECRET = "test-secret-key-0123456789abcdef"


def dsn(original: bytes, to: str, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464), returning the
    original's headers."""
    headers = original.split(b"\r\n\r\n", 1)[0]
    recipient = BytesHeaderParser(policy=compat32).parsebytes(original)["To"]
    diagnostic = (
        "smtp; 550 5.1.1 <x>: Recipient address rejected: User unknown in virtual mailbox"
        if status.startswith("5")
        else "smtp; 451 4.4.1 connection timed out"
    )
    return (
        (
            f"From: MAILER-DAEMON@mx.example.vn (Mail Delivery System)\r\n"
            f"To: {to}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\n"
            f"Auto-Submitted: auto-replied\r\n"
            f"MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n'
            f"\r\n"
            f"--B0UND\r\n"
            f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"This is the mail system at host mx.example.vn.\r\n\r\n"
            f"--B0UND\r\n"
            f"Content-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.example.vn\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\n"
            f"Action: {action}\r\n"
            f"Status: {status}\r\n"
            f"Diagnostic-Code: {diagnostic}\r\n\r\n"
            f"--B0UND\r\n"
            f"Content-Type: text/rfc822-headers\r\n\r\n"
        ).encode()
        + headers
        + b"\r\n\r\n--B0UND--\r\n"
    )


def arf(original: bytes, feedback_type: str = "abuse") -> bytes:
    """An abuse report as a mailbox provider's feedback loop sends one (RFC 5965): it
    goes to the provider's registered address and returns the whole message."""
    return (
        b"From: fbl@provider.example\r\nTo: abuse@lmec.example.org\r\n"
        b"Subject: Abuse report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"\r\n'
        b"\r\n--ARF\r\nContent-Type: text/plain\r\n\r\nA user marked this message as spam.\r\n"
        b"\r\n--ARF\r\nContent-Type: message/feedback-report\r\n\r\n"
        + f"Feedback-Type: {feedback_type}\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n".encode()
        + b"\r\n--ARF\r\nContent-Type: message/rfc822\r\n\r\n"
        + original
        + b"\r\n--ARF--\r\n"
    )


AUTO_REPLY = (
    b"From: le@example.vn\r\nTo: x\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n"
    b"\r\nI am away until 5.1.2023 and read mail then (status 5.1.1 means nothing here).\r\n"
)


@pytest.fixture
def sent(tmp_path: Path, database_url: str):
    """A campaign of the Issue 15 seed sent with VERP to 6 people: (root, campaign, messages
    as the relay received them)."""
    with SMTPTestServer() as server:
        root = delivery_root(
            tmp_path, database_url, server.port, bounce_verp=True, secret_key=SECRET
        )
        with root.sessions.begin() as session:
            add_recipients(session, 6)
        campaign_id = seed_campaign(root)
        send_all(root.worker(), root.sessions, campaign_id)
        received = {m.rcpt_tos[0]: m for m in server.messages}
    yield root, campaign_id, received
    root.close()


def state(root: Root, email: str) -> tuple[SubscriberStatus, bool, str, str]:
    with root.sessions() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        row = session.scalars(select(LedgerRow).where(LedgerRow.email == email)).one()
        return (
            subscriber.status,
            suppression.is_suppressed(session, email),
            row.status,
            row.last_reply or "",
        )


def test_a_hard_bounce_marks_bounced_suppresses_and_fails_the_row(sent) -> None:
    root, campaign_id, received = sent
    email = "person0@cn.example.org"
    message = received[email]
    assert message.mail_from.startswith("bounces+")  # VERP: the token names the subscriber
    report = dsn(message.data, message.mail_from)
    bounce = bounces.read(report, [message.mail_from], SECRET)
    assert bounce.kind == Kind.PERMANENT and bounce.status == "5.1.1"
    assert bounce.campaign_id == campaign_id
    with root.sessions.begin() as session:
        done = bounces.apply(session, bounce)
    assert "marked bounced and suppressed" in done and f"campaign {campaign_id}" in done
    status, suppressed, row_status, reply = state(root, email)
    assert status == SubscriberStatus.BOUNCED and suppressed
    assert row_status == LedgerStatus.FAILED and reply.startswith("bounced after delivery: 5.1.1")
    with root.sessions.begin() as session:  # the same report again changes nothing more
        bounces.apply(session, bounce)
    assert state(root, email)[:3] == (status, suppressed, row_status)
    other = state(root, "person1@kh.example.org")
    assert other[:3] == (SubscriberStatus.ACTIVE, False, LedgerStatus.SENT)


def test_a_delay_a_forged_token_and_an_auto_reply_change_nothing(sent) -> None:
    root, _, received = sent
    email = "person2@la.example.org"
    message = received[email]
    delayed = bounces.read(
        dsn(message.data, message.mail_from, action="delayed", status="4.4.1"),
        [message.mail_from],
        SECRET,
    )
    assert delayed.kind == Kind.TEMPORARY
    subscriber_id, signature = message.mail_from.removeprefix("bounces+").split("@")[0].split(".")
    forged_address = f"bounces+{int(subscriber_id) + 1}.{signature}@lmec.example.org"
    forged = bounces.read(dsn(message.data, forged_address), [forged_address], SECRET)
    assert forged.kind == Kind.NOT_OURS and forged.subscriber_id is None
    not_verp = bounces.read(dsn(message.data, "x@y"), ["newsletter@lmec.example.org"], SECRET)
    assert not_verp.kind == Kind.NOT_OURS
    away = bounces.read(AUTO_REPLY, [message.mail_from], SECRET)
    assert away.kind == Kind.NOT_A_REPORT
    with root.sessions.begin() as session:
        for bounce in (delayed, forged, not_verp, away):
            assert "nothing changed" in bounces.apply(session, bounce)
    assert state(root, email)[:3] == (SubscriberStatus.ACTIVE, False, LedgerStatus.SENT)


def test_bounces_arrive_over_smtp_at_the_verp_address_only(sent) -> None:
    root, _, received = sent
    email = "person3@mm.example.org"
    message = received[email]
    done: list[str] = []

    def record(bounce: bounces.Bounce) -> str:
        with root.sessions.begin() as session:
            done.append(bounces.apply(session, bounce))
        return done[-1]

    port = free_port()
    handler = bounces.BounceHandler(SECRET, record, also=["FBL@lmec.example.org"])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("", [message.mail_from], dsn(message.data, message.mail_from))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("", ["postmaster@lmec.example.org"], AUTO_REPLY)
            complainer = received["person0@cn.example.org"]
            client.sendmail("fbl@provider.example", ["fbl@lmec.example.org"], arf(complainer.data))
    finally:
        controller.stop()
    assert len(done) == 2 and "marked bounced" in done[0] and "marked complained" in done[1]
    assert state(root, email)[:2] == (SubscriberStatus.BOUNCED, True)
    assert state(root, "person0@cn.example.org")[:2] == (SubscriberStatus.COMPLAINED, True)


def test_the_cli_reads_eml_files_a_maildir_and_an_mbox(
    sent, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _, received = sent
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILER_SECRET_KEY", SECRET)
    monkeypatch.setattr(bounces_cli.out, "width", 250)
    first, second, third = (
        received[f"person{i}@{c}.example.org"] for i, c in ((4, "th"), (5, "vn"), (1, "kh"))
    )

    def saved(message_from: str, data: bytes) -> bytes:  # as `mailer capture` stores mail
        return f"X-Envelope-To: {message_from}\r\n".encode() + data

    eml = tmp_path / "one.eml"
    eml.write_bytes(saved(first.mail_from, dsn(first.data, first.mail_from)))
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(saved(second.mail_from, dsn(second.data, second.mail_from)))
    maildir.add(AUTO_REPLY)
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    box.add(
        mailbox.mboxMessage(
            saved(
                third.mail_from, dsn(third.data, third.mail_from, action="delayed", status="4.4.1")
            )
        )
    )
    box.flush()
    runner = CliRunner()
    dry = runner.invoke(app, ["bounces", "process", str(eml), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "permanent: 5.1.1" in dry.stdout
    assert state(root, "person4@th.example.org")[0] == SubscriberStatus.ACTIVE  # dry run
    result = runner.invoke(
        app,
        ["bounces", "process", str(eml), str(tmp_path / "Maildir"), str(tmp_path / "bounces.mbox")],
    )
    assert result.exit_code == 0, result.output
    assert "4 message(s): 1 not a report, 2 permanent, 1 temporary" in result.stdout
    for email in ("person4@th.example.org", "person5@vn.example.org"):
        assert state(root, email)[:3] == (SubscriberStatus.BOUNCED, True, LedgerStatus.FAILED)
    assert state(root, "person1@kh.example.org")[:2] == (SubscriberStatus.ACTIVE, False)
    missing = runner.invoke(app, ["bounces", "process", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 1 and "no such file or folder" in missing.stderr


def test_an_abuse_report_marks_complained_and_suppresses_by_the_signed_link(sent) -> None:
    root, _, received = sent
    email = "person1@kh.example.org"
    message = received[email]
    report = arf(message.data)
    complaint = bounces.read(report, ["abuse@lmec.example.org"], SECRET)  # not the VERP address
    assert complaint.kind == Kind.COMPLAINT
    with root.sessions.begin() as session:
        assert "marked complained and suppressed" in bounces.apply(session, complaint)
    status, suppressed, row_status, _ = state(root, email)
    assert status == SubscriberStatus.COMPLAINED and suppressed
    assert row_status == LedgerStatus.SENT  # it was delivered: the ledger is right as it is

    # A report whose returned message carries someone else's token, altered: nobody.
    other = received["person2@la.example.org"]
    token = other.mail_from.removeprefix("bounces+").split("@")[0]
    forged = other.data.replace(token.encode(), token[:-1].encode() + b"A")
    assert forged != other.data
    assert bounces.read(arf(forged), ["abuse@x"], SECRET).kind == Kind.NOT_OURS
    not_abuse = bounces.read(arf(other.data, "not-spam"), ["abuse@x"], SECRET)
    assert not_abuse.kind == Kind.TEMPORARY
    with root.sessions.begin() as session:
        bounces.apply(session, not_abuse)
    assert state(root, "person2@la.example.org")[:2] == (SubscriberStatus.ACTIVE, False)
