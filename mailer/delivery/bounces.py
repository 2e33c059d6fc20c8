"""Bounces and complaints that come back after a relay accepted a message.

A relay's 250 only means it took the message; the recipient's server may refuse it
later and send a delivery status notification (RFC 3464) to the envelope sender.
With `MAILER_BOUNCE_VERP` that sender is `bounces+<token>@<sender domain>`, the
token being the subscriber's signed id (`mailer.delivery.tokens`), so a bounce names its
subscriber without trusting anything the report says: a forged or altered token
matches nobody.

A permanent failure (`Action: failed`, or a 5.x.x status) marks the subscriber
`bounced`, suppresses the address, and turns the campaign's ledger row (found by
the returned Message-ID) from `sent` into `failed` with the report's diagnostic. A
delay (`Action: delayed`, 4.x.x) changes nothing. Anything that is not a delivery
report (an out-of-office reply, say) is left alone: guessing from free text would
suppress people who only went on holiday.

An abuse report from a feedback loop (ARF, RFC 5965: the person pressed "This is
spam") marks the subscriber `complained` and suppresses the address; the subscriber
comes from the signed token in the returned message's List-Unsubscribe link.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mailer.delivery import ledger
from mailer.delivery.tokens import InvalidToken, read_token
from subscribers import suppression
from subscribers.models import Subscriber, SubscriberStatus

_VERP = re.compile(r"^bounces\+([0-9]+\.[A-Za-z0-9_-]+)@", re.IGNORECASE)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Our Message-IDs: <campaign.subscriber.nonce@domain> (`MessageTemplate.message_id`).
_MESSAGE_ID = re.compile(r"<(\d+)\.(\d+)\.[^@>]*@[^>]+>")
# Where a saved message keeps its envelope recipient: our capture server, then MTAs.
_ENVELOPE_HEADERS = ("X-Envelope-To", "Delivered-To", "X-Original-To", "Envelope-To", "To")


class Kind(StrEnum):
    PERMANENT = "permanent"  # the address does not work: suppressed
    COMPLAINT = "complaint"  # the person reported the message as spam: suppressed
    TEMPORARY = "temporary"  # delayed: nothing to do
    NOT_OURS = "not ours"  # no valid VERP token: matches no subscriber
    NOT_A_REPORT = "not a report"  # no delivery status in it (an auto-reply, say)


@dataclass(frozen=True)
class Bounce:
    """What a returned message says, before anything is changed."""

    kind: Kind
    subscriber_id: int | None = None
    status: str | None = None  # e.g. "5.1.1"
    diagnostic: str = ""
    campaign_id: int | None = None

    @property
    def reply(self) -> str:
        return " ".join(f"bounced after delivery: {self.status or ''} {self.diagnostic}".split())


def read(data: bytes, envelope_to: Sequence[str], secret: str) -> Bounce:
    """Classify a returned message; `envelope_to` are the addresses it was sent to."""
    subscriber_id = _subscriber(envelope_to, secret)
    message = BytesParser(policy=policy.default).parsebytes(data)
    feedback = _part(message, "message/feedback-report")
    if feedback is not None:
        return _complaint(message, feedback, subscriber_id, secret)
    fields = _delivery_status(message)
    if fields is None:
        return Bounce(Kind.NOT_A_REPORT, subscriber_id)
    if subscriber_id is None:
        return Bounce(Kind.NOT_OURS)
    action = str(fields.get("Action", "")).strip().lower()
    found = _STATUS.search(str(fields.get("Status", "")))
    status = ".".join(found.groups()) if found else None
    diagnostic = " ".join(str(fields.get("Diagnostic-Code", "")).split())[:300]
    permanent = action == "failed" or (status or "").startswith("5.")
    if action in ("delayed", "delivered", "relayed", "expanded") or not permanent:
        return Bounce(Kind.TEMPORARY, subscriber_id, status, diagnostic)
    return Bounce(
        Kind.PERMANENT, subscriber_id, status, diagnostic, _campaign_of(message, subscriber_id)
    )


def apply(session: Session, bounce: Bounce) -> str:
    """Act on a permanent bounce or a complaint (idempotent); a line saying what was done."""
    if bounce.kind not in (Kind.PERMANENT, Kind.COMPLAINT) or bounce.subscriber_id is None:
        return f"{bounce.kind}: nothing changed"
    subscriber = session.get(Subscriber, bounce.subscriber_id)
    if subscriber is None:
        return f"{bounce.kind}: subscriber no longer exists (erased); nothing changed"
    if bounce.kind == Kind.COMPLAINT:
        subscriber.status = SubscriberStatus.COMPLAINED  # never mailed again, whatever lists
        suppression.suppress(session, subscriber.email, f"complaint: {bounce.diagnostic}")
        session.flush()
        return f"complaint: {subscriber.email} marked complained and suppressed"
    if subscriber.status != SubscriberStatus.BOUNCED:
        subscriber.status = SubscriberStatus.BOUNCED
    suppression.suppress(session, subscriber.email, bounce.reply)
    done = f"permanent: {subscriber.email} marked bounced and suppressed"
    if bounce.campaign_id is not None:
        if ledger.mark_bounced(session, bounce.campaign_id, subscriber.id, bounce.reply):
            done += f"; campaign {bounce.campaign_id} counts it as failed"
    session.flush()
    return done


def _subscriber(envelope_to: Sequence[str], secret: str) -> int | None:
    for address in envelope_to:
        match = _VERP.match(address.strip().strip("<>"))
        if match:
            try:
                return read_token(secret, match.group(1))
            except InvalidToken:
                return None
    return None


def _part(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _complaint(message: Message, feedback: Message, envelope_id: int | None, secret: str) -> Bounce:
    """An abuse report (ARF, RFC 5965) from a mailbox provider's feedback loop.

    Such reports go to the provider's registered address, not to the VERP one, so the
    subscriber is read from the returned message itself: the signed token in its
    List-Unsubscribe link (a Message-ID alone could be forged to silence anyone).
    """
    blocks = feedback.get_payload()
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], Message):
        fields: Message = blocks[0]
    else:  # kept as text by the parser: its lines are header fields all the same
        text = blocks if isinstance(blocks, str) else ""
        fields = BytesParser(policy=policy.default).parsebytes(text.encode(), headersonly=True)
    kind = str(fields.get("Feedback-Type", "")).strip().lower()
    subscriber_id = _token_in_returned(message, secret) or envelope_id
    if subscriber_id is None:
        return Bounce(Kind.NOT_OURS)
    if kind not in ("abuse", "fraud", "virus", ""):
        return Bounce(Kind.TEMPORARY, subscriber_id, diagnostic=f"feedback type {kind}")
    return Bounce(Kind.COMPLAINT, subscriber_id, diagnostic=f"feedback type {kind or 'abuse'}")


_UNSUBSCRIBE_TOKEN = re.compile(r"/unsubscribe/([0-9]+\.[A-Za-z0-9_-]+)")


def _returned_headers(message: Message) -> Message | None:
    """The headers of the message a report returns (a whole message/rfc822 part, or
    only its text/rfc822-headers)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        elif part.get_content_type() == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            raw = payload if isinstance(payload, bytes) else b""
            return BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    return None


def _token_in_returned(message: Message, secret: str) -> int | None:
    headers = _returned_headers(message)
    found = _UNSUBSCRIBE_TOKEN.search(str(headers.get("List-Unsubscribe", ""))) if headers else None
    if found is None:
        return None
    try:
        return read_token(secret, found.group(1))
    except InvalidToken:
        return None


def _delivery_status(message: Message) -> dict[str, Any] | None:
    """The first failed per-recipient block of the message/delivery-status part (or the
    first block of any kind), as a field -> value mapping; None if there is none."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list) or not blocks:
            return {}
        recipients = [b for b in blocks[1:] if isinstance(b, Message)] or [
            b for b in blocks if isinstance(b, Message)
        ]
        for block in recipients:
            if str(block.get("Action", "")).strip().lower() == "failed":
                return dict(block.items())
        return dict(recipients[0].items()) if recipients else {}
    return None


def _campaign_of(message: Message, subscriber_id: int) -> int | None:
    """The campaign of the returned message, from its Message-ID (if it is one of ours,
    for this subscriber)."""
    headers = _returned_headers(message)
    match = _MESSAGE_ID.search(str(headers.get("Message-ID", ""))) if headers else None
    if match and int(match.group(2)) == subscriber_id:
        return int(match.group(1))
    return None


@dataclass(frozen=True)
class Returned:
    """One message read from a file, a Maildir or an mbox, with where it came from."""

    source: str
    data: bytes
    envelope_to: tuple[str, ...]


def messages_in(path: Path) -> Iterator[Returned]:
    """`.eml` files (a file, or every `.eml` in a directory), a Maildir or an mbox."""
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        maildir = mailbox.Maildir(path, create=False)
        for key in sorted(maildir.keys()):
            yield _returned(f"{path}/{key}", maildir.get_bytes(key))
    elif path.is_dir():
        for file in sorted(path.glob("*.eml")):
            yield _returned(str(file), file.read_bytes())
    elif path.read_bytes()[:5] == b"From ":
        box = mailbox.mbox(path, create=False)
        for index, key in enumerate(box.keys()):
            yield _returned(f"{path}#{index + 1}", box.get_bytes(key))
    else:
        yield _returned(str(path), path.read_bytes())


def _returned(source: str, data: bytes) -> Returned:
    headers = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)
    envelope: list[str] = []
    for name in _ENVELOPE_HEADERS:
        for value in headers.get_all(name, []):
            envelope += [a.strip() for a in str(value).split(",") if a.strip()]
    return Returned(source, data, tuple(envelope))


class BounceHandler:
    """aiosmtpd handler: takes mail for `bounces+…@domain`, and for the addresses in
    `also` (a feedback loop's report address, say), nothing else."""

    def __init__(self, secret: str, record: Any, also: Sequence[str] = ()) -> None:
        self.secret = secret
        self.record = record  # Callable[[Bounce], str], run in the server's thread
        self.also = {address.strip().lower() for address in also}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not _VERP.match(address) and address.strip().lower() not in self.also:
            return "550 5.1.1 this server only takes bounces and abuse reports"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        bounce = read(bytes(data), envelope.rcpt_tos, self.secret)
        self.record(bounce)
        return f"250 2.0.0 bounce read: {bounce.kind}"
