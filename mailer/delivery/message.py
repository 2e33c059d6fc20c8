"""Messages: build the MIME structure once per campaign, personalise per recipient in bytes.

Building an `EmailMessage` per recipient caps a sender at a few hundred messages
per second. Instead `MessageTemplate` asks Python's email library once for the
whole structure (multipart/alternative, text first and HTML last, UTF-8,
quoted-printable) and keeps it as bytes. The rendered parts are split at their
per-recipient slots (`mailer.authoring.render.Slot`) and each piece is QP-encoded once; per
recipient only the slot values are encoded and joined in between with soft line
breaks, so QP never splits or mangles a slot. The per-recipient headers (To with
an RFC 2047 name, Message-ID, Date, List-Unsubscribe) are encoded and prepended.

Every header value is checked for CR and LF: a campaign-wide value raises at build
time, a recipient's name or address raises `HeaderInjection` for that recipient.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import base64mime, policy, quoprimime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from html import escape as html_escape
from itertools import pairwise
from urllib.parse import quote

from mailer import urls
from mailer.authoring.slots import Slot, SlotInSubject, refuse_slots
from mailer.authoring.wrapping import grapheme_boundaries
from mailer.delivery import tokens
from mailer.errors import UserInputError

_SLOT_PATTERN = re.compile("|".join(re.escape(slot.value) for slot in Slot))
_SOFT_BREAK = b"=\r\n"


class HeaderInjection(UserInputError):
    """A header value holds a line break (or NUL): it would forge headers on the wire."""


def check_header_value(field: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjection(f"{field}: line breaks are not allowed in a header value")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_QP_SAFE = re.compile(r"[!-<>-~]{1,75}")  # printable ASCII but '=', no spaces: QP leaves as is


def _qp(text: str) -> bytes:
    """Quoted-printable UTF-8 with CRLF line ends, via the email library's encoder.

    Lines stay within 75 characters so the soft break appended after a piece or a
    value ("=") keeps every line within QP's 76. Short values QP would not change
    (links, most addresses) skip the encoder.
    """
    if _QP_SAFE.fullmatch(text):
        return text.encode("ascii")
    octets = text.replace("\r\n", "\n").encode("utf-8").decode("latin-1")
    return quoprimime.body_encode(octets, maxlinelen=75).replace("\n", "\r\n").encode("ascii")


def _dot_at_line_start(chunk: bytes) -> bool:
    """`chunk` begins a line: would SMTP need to dot-stuff it (RFC 5321 4.5.2)?"""
    return chunk.startswith(b".") or b"\n." in chunk


@dataclass(frozen=True)
class _Part:
    """A body split at its slots: pieces[0] slot[0] pieces[1] … pieces[n], pieces QP-encoded."""

    pieces: tuple[bytes, ...]
    slots: tuple[Slot, ...]
    html: bool

    @property
    def transparent(self) -> bool:
        """No piece puts a dot at the start of a line (each piece starts one)."""
        return not any(_dot_at_line_start(piece) for piece in self.pieces)

    @classmethod
    def split(cls, text: str, *, is_html: bool) -> _Part:
        pieces: list[bytes] = []
        slots: list[Slot] = []
        position = 0
        for match in _SLOT_PATTERN.finditer(text):
            pieces.append(_qp(text[position : match.start()]))
            slots.append(Slot(match.group()))
            position = match.end()
        pieces.append(_qp(text[position:]))
        return cls(tuple(pieces), tuple(slots), is_html)

    def fill(self, values: Mapping[Slot, bytes], out: list[bytes]) -> None:
        for index, slot in enumerate(self.slots):
            piece = self.pieces[index]
            out.append(piece)
            if piece and not piece.endswith(b"\r\n"):
                out.append(_SOFT_BREAK)
            out.append(values[slot])
            out.append(_SOFT_BREAK)
        out.append(self.pieces[-1])


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """One personalised message, ready for `Transport.send`."""

    envelope_from: str
    recipient: str
    data: bytes
    message_id: str
    transparent: bool = False  # no line starts with a dot: SMTP need not look for one

    @property
    def needs_smtputf8(self) -> bool:
        return not (self.recipient.isascii() and self.envelope_from.isascii())


@dataclass(frozen=True)
class Identity:
    """Installation-wide inputs to every message (from settings and the profile)."""

    public_base_url: str
    secret: str
    sender_domain: str
    list_id: str  # RFC 2919 id, e.g. newsletter.lmec.example.org
    list_name: str = ""
    unsubscribe_mailto: str = ""
    bounce_verp: bool = False


_WORD_BYTES = 45  # UTF-8 bytes per encoded word: 60 base64 characters + 12 = 75


def encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words, each within 75 characters, folded with CRLF SP.

    The email library encodes each chunk; the chunks end on grapheme cluster
    boundaries (ICU's character break iterator), so every word decodes on its own to
    whole user-perceived characters: a Thai, Khmer, Lao or Burmese consonant with its
    vowel signs and tone marks, or a Vietnamese letter with its combining accents, is
    never split between two words (readers that show each word apart would show a
    mark without its letter). The email library's own folding splits anywhere. A
    single cluster longer than 45 bytes (nothing a real name holds) is split between
    code points rather than break the 75-character limit.
    """
    if len(text.encode("utf-8")) <= _WORD_BYTES:
        return base64mime.header_encode(text, "utf-8")
    words: list[str] = []
    chunk = ""
    size = 0
    bounds = grapheme_boundaries(text)
    for start, end in pairwise(bounds):
        for cluster in _at_most(text[start:end], _WORD_BYTES):
            width = len(cluster.encode("utf-8"))
            if size + width > _WORD_BYTES:
                words.append(base64mime.header_encode(chunk, "utf-8"))
                chunk, size = "", 0
            chunk += cluster
            size += width
    words.append(base64mime.header_encode(chunk, "utf-8"))
    return "\r\n ".join(words)


def _at_most(cluster: str, limit: int) -> list[str]:
    """`cluster` as one piece, or cut between code points when its UTF-8 is over `limit`."""
    if len(cluster.encode("utf-8")) <= limit:
        return [cluster]
    pieces, piece = [], ""
    for char in cluster:
        if len((piece + char).encode("utf-8")) > limit:
            pieces.append(piece)
            piece = ""
        piece += char
    return [*pieces, piece]


class BadAddress(UserInputError):
    """A recipient's address cannot be written on the wire (e.g. an invalid domain)."""


def _wire_address(email: str) -> str:
    """The address as sent: an internationalised domain as IDNA (xn--...), which needs
    no SMTPUTF8; a non-ASCII local part stays as it is (only SMTPUTF8 can carry it)."""
    local, _, domain = email.rpartition("@")
    if not local or not domain or " " in email:
        raise BadAddress(f"email: {email!r} is not an email address")
    if domain.isascii():
        return email
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        raise BadAddress(f"email: {email!r} has no valid domain name") from None


def _literal(text: str) -> bool:
    """Whether `text` can go into a header as it is: ASCII, and nothing a reader would
    take for an RFC 2047 encoded word (`=?utf-8?q?X=0D=0ABcc:...?=` decodes to a line
    break in many clients, even inside a quoted string, where RFC 2047 forbids it)."""
    return text.isascii() and "=?" not in text


def _display_name(name: str) -> str:
    """A display name that every reader decodes to exactly `name`: quoted when needed,
    or RFC 2047-encoded when it is not ASCII (any script) or looks encoded itself."""
    if _literal(name):  # formataddr quotes; it would refuse a non-ASCII address
        return formataddr((name, "x@x")).removesuffix(" <x@x>")
    return encoded_words(name)


def _address_header(name: str | None, address: str) -> str:
    """`Name <addr>`, the name written so that it reads back as it is (`_display_name`)."""
    if not name:
        return address
    return f"{_display_name(name)} <{address}>"


def address_header(name: str | None, address: str) -> str:
    """`Name <addr>` for a header set with `EmailMessage.set_raw` (which writes it as
    it is): a name not in ASCII as encoded words that never split a grapheme cluster."""
    return _address_header(
        check_header_value("name", name or ""), check_header_value("address", address)
    )


def _header_name(field: str, raw: str) -> str:
    """The display name of a mailbox given in header syntax (a sender typed as
    `Name <addr>`, or made by `formataddr`), decoded as a reader would decode it.

    A name that decodes to a line break or another control character is refused.
    """
    try:
        name = str(make_header(decode_header(raw))) if "=?" in raw else raw
    except (HeaderParseError, LookupError, UnicodeDecodeError):
        return raw  # not valid encoded words: readers show it as it is, and so will we
    if _CONTROL.search(name):
        raise HeaderInjection(f"{field}: the name decodes to a line break or control character")
    return name


def _mailbox_header(field: str, value: str) -> str:
    """`Name <addr>` for a From or Reply-To given in header syntax, written by us (not
    by `EmailMessage`, which decodes encoded words in what it is given and writes
    the decoded text back raw, line breaks included)."""
    mailboxes = [(name, address) for name, address in getaddresses([value]) if address]
    if len(mailboxes) != 1 or "@" not in mailboxes[0][1]:
        raise UserInputError(f"{field}: {value!r} is not an email address")
    name, address = mailboxes[0]
    return _address_header(_header_name(field, name), address)


def check_mailbox(field: str, value: str) -> str:
    """`value` (a sender or Reply-To, `Name <addr>`) as it will be written, or the error
    it would raise at send time, so that a campaign can refuse it when it is made."""
    return _mailbox_header(field, check_header_value(field, value))


def _header(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode()


class MessageTemplate:
    """A campaign's message, built once; `personalise` makes each recipient's bytes."""

    def __init__(
        self,
        *,
        identity: Identity,
        campaign_id: int,
        nonce: str,
        subject: str,
        sender: str,
        html: str,
        text: str,
        reply_to: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        sign: Callable[[bytes], bytes] | None = None,
        view_language: str | None = None,  # the variant the "view in browser" link shows
    ) -> None:
        self.identity = identity
        self.campaign_id = campaign_id
        self.nonce = nonce
        self.sign = sign
        check_header_value("subject", subject)
        try:  # a slot is filled in the body only: in the header it would go out literally
            refuse_slots(subject)
        except SlotInSubject as exc:
            raise UserInputError(f"subject: {exc}") from None
        check_header_value("sender", sender)
        _sender_name, self.sender_address = parseaddr(sender)
        if "@" not in self.sender_address:
            raise UserInputError(f"sender: {sender!r} is not an email address")
        # From, Reply-To and List-Id are written here, not by EmailMessage (see
        # `_mailbox_header`), and so is a subject that looks encoded; each reads back
        # exactly as given.
        own = [_header("From", _mailbox_header("sender", sender))]
        own.append(_header("List-Id", self._list_id()))
        if reply_to:
            check_header_value("reply_to", reply_to)
            own.append(_header("Reply-To", _mailbox_header("reply_to", reply_to)))
        skeleton = EmailMessage(policy=policy.SMTP)
        if "=?" in subject or not subject.isascii():
            own.append(_header("Subject", encoded_words(subject)))
        else:
            skeleton["Subject"] = subject
        skeleton["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        for name, value in extra_headers:
            check_header_value(name, name)
            if value.isascii() and len(name) + len(value) < 76:
                # Written by us: set_content below drops the skeleton's Content-* headers
                # (Content-Language would never reach the wire).
                own.append(_header(name, check_header_value(name, value)))
            else:
                skeleton[name] = check_header_value(name, value)
        text_marker, html_marker = "@@TEXT-PART-BODY@@", "@@HTML-PART-BODY@@"
        skeleton.set_content(text_marker, subtype="plain", charset="utf-8", cte="quoted-printable")
        skeleton.add_alternative(
            html_marker, subtype="html", charset="utf-8", cte="quoted-printable"
        )
        for part in skeleton.iter_parts():
            del part["MIME-Version"]  # the library repeats it on added parts; once is enough
        raw = skeleton.as_bytes(policy=policy.SMTP)
        self.skeleton = raw
        head, _, after_text = raw.partition(text_marker.encode())
        middle, _, tail = after_text.partition(html_marker.encode())
        if not middle or not tail:
            raise RuntimeError("the MIME skeleton lost a body marker")
        self._head, self._middle, self._tail = b"".join(own) + head, middle, tail
        # Header lines start with a name or, folded, with white space: never a dot.
        fixed = (head.partition(b"\r\n\r\n")[2], middle, tail)
        # The skeleton ends each part with a line break of its own.
        self._text = _Part.split(text.removesuffix("\n"), is_html=False)
        self._html = _Part.split(html.removesuffix("\n"), is_html=True)
        # Every piece and every slot value starts a line (values follow a soft break),
        # so checking them once here and the values per recipient covers the message.
        self._transparent = (
            self._text.transparent
            and self._html.transparent
            and not any(_dot_at_line_start(chunk) for chunk in fixed)
        )
        self._date_second = -1
        self._date = b""
        self._view_url = urls.view_in_browser(identity.public_base_url, campaign_id, view_language)
        self._view_qp = _qp(self._view_url)
        # Tokens are URL-safe; only the configured base URL could hold `&` or quotes.
        self._links_need_escaping = html_escape(identity.public_base_url) != (
            identity.public_base_url
        )

    def _list_id(self) -> str:
        name = self.identity.list_name
        if not name:
            return f"<{self.identity.list_id}>"
        return f"{_display_name(name)} <{self.identity.list_id}>"

    def _date_header(self, now: datetime) -> bytes:
        second = int(now.timestamp())
        if second != self._date_second:
            self._date = _header(
                "Date", format_datetime(now.astimezone(UTC).replace(microsecond=0))
            )
            self._date_second = second
        return self._date

    def urls_for(self, subscriber_id: int, token: str | None = None) -> dict[Slot, str]:
        """The per-recipient links; the web app's view of a message uses the same ones."""
        token = token or tokens.make_token(self.identity.secret, subscriber_id)
        base = self.identity.public_base_url
        return {
            Slot.UNSUBSCRIBE_URL: urls.unsubscribe(base, token),
            Slot.PREFERENCES_URL: urls.preferences(base, token),
            Slot.VIEW_URL: self._view_url,
        }

    def message_id(self, subscriber_id: int) -> str:
        """Stable per (campaign, subscriber): a resent duplicate carries the same id."""
        return f"<{self.campaign_id}.{subscriber_id}.{self.nonce}@{self.identity.sender_domain}>"

    def personalise(self, recipient: Recipient, now: datetime | None = None) -> Outgoing:
        email = check_header_value("email", recipient.email.strip())
        wire_email = _wire_address(email)
        name = check_header_value("name", recipient.name or "")
        token = tokens.make_token(self.identity.secret, recipient.subscriber_id)
        links = self.urls_for(recipient.subscriber_id, token)
        message_id = self.message_id(recipient.subscriber_id)
        unsubscribe = f"<{links[Slot.UNSUBSCRIBE_URL]}>"
        if self.identity.unsubscribe_mailto:
            subject = quote(f"unsubscribe {token}")
            unsubscribe += f", <mailto:{self.identity.unsubscribe_mailto}?subject={subject}>"
        out: list[bytes] = [
            _header("To", _address_header(name, wire_email)),
            _header("Message-ID", message_id),
            self._date_header(now or datetime.now(UTC)),
            _header("List-Unsubscribe", unsubscribe),
            self._head,
        ]
        text_values = {
            Slot.UNSUBSCRIBE_URL: _qp(links[Slot.UNSUBSCRIBE_URL]),
            Slot.PREFERENCES_URL: _qp(links[Slot.PREFERENCES_URL]),
            Slot.VIEW_URL: self._view_qp,
            Slot.NAME: _qp(name) if name else b"",
            Slot.EMAIL: _qp(email),
        }
        html_values = dict(text_values)  # links and most addresses need no escaping
        checked = [(Slot.NAME, name), (Slot.EMAIL, email)]
        if self._links_need_escaping:
            checked += links.items()
        for slot, value in checked:
            escaped = html_escape(value)
            if escaped != value:
                html_values[slot] = _qp(escaped)
        self._text.fill(text_values, out)
        out.append(self._middle)
        self._html.fill(html_values, out)
        out.append(self._tail)
        data = b"".join(out)
        if self.sign is not None:
            data = self.sign(data) + data
        envelope_from = self.sender_address
        if self.identity.bounce_verp:
            envelope_from = f"bounces+{token}@{self.identity.sender_domain}"
        transparent = self._transparent and not any(
            _dot_at_line_start(value)
            for values in (text_values, html_values)
            for value in values.values()
        )
        return Outgoing(envelope_from, wire_email, data, message_id, transparent)
