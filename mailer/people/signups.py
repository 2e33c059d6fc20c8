"""Sign-up with double opt-in: the confirmation email and the decision what a sign-up
request does (the signed form stamp and the confirmation link are
`mailer.people.signup_tokens`).

Whatever a request asks, the person sees the same "check your inbox" page: whether
the address is already subscribed, suppressed, or was mailed a moment ago is never
said. Behind that page a confirmation is mailed only to an address that may be
mailed (never a suppressed or erased one, nor one that bounced or complained), at
most once per cooldown. The form carries a signed stamp (which form, when it was
shown, which consent sentence it showed), so the source and consent text recorded
are ours, and a form sent back faster than a person fills it is asked again.
The public endpoint takes posts from other sites (the embeddable snippet), so it
cannot use the staff CSRF token: the honeypot, the stamp, the throttles and the fact
that it only ever sends a confirmation protect it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from mailer.authoring.content import load_issue
from mailer.authoring.loader import ContentError
from mailer.authoring.render import Renderer
from mailer.compose import Root
from mailer.delivery.message import (
    MessageTemplate,
    Recipient,
    address_header,
    check_header_value,
    encoded_words,
)
from mailer.errors import MailerError
from mailer.people.signup_tokens import (
    EMBED,
    FORM_MAX_AGE,
    PAGE,
    Stamp,
    make_link_token,
    make_stamp,
)
from mailer.settings import Settings
from subscribers import signups
from subscribers.countries import normalise_country
from subscribers.errors import StoreInputError
from subscribers.models import MailingList, Subscriber
from subscribers.validation import clean_name, normalise_email

log = logging.getLogger("mailer.people.signups")

ALL = "all"  # the form of the page offering every public list


# --- a request -----------------------------------------------------------------------------------


@dataclass
class Request:
    """What the form sent, as text, to be checked."""

    email: str = ""
    name: str = ""
    country: str = ""
    lists: list[str] = field(default_factory=list)
    consent: bool = False
    consent_text: str = ""
    stamp: str = ""
    honeypot: str = ""


@dataclass(frozen=True)
class Checked:
    email: str
    name: str
    country: str | None
    lists: tuple[MailingList, ...]


def check(session: Session, form: Request) -> Checked | dict[str, str]:
    """The request's fields made valid, or a message per field that is not."""
    errors: dict[str, str] = {}
    email = name = ""
    country: str | None = None
    try:
        email = normalise_email(form.email)
    except StoreInputError as exc:
        errors["email"] = (
            "Please enter your email address." if not form.email.strip() else _said(exc)
        )
    try:
        name = clean_name(form.name)
    except StoreInputError as exc:
        errors["name"] = _said(exc)
    if form.country:
        try:
            country = normalise_country(form.country)
        except StoreInputError:
            errors["country"] = "Please choose a country from the list."
    offered = {lst.slug: lst for lst in signups.offered_lists(session)}
    chosen = [offered[slug] for slug in dict.fromkeys(form.lists) if slug in offered]
    if not chosen or len(chosen) != len(set(form.lists)):
        errors["lists"] = (
            "Please choose at least one list."
            if not form.lists
            else "Please choose among the lists shown."
        )
    if not form.consent:
        errors["consent"] = "Please tick the box to agree; we cannot subscribe you without it."
    if errors:
        return errors
    return Checked(email, name, country, tuple(chosen))


def _said(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# --- the service ---------------------------------------------------------------------------------


class Throttled(MailerError):
    """Too many sign-ups from this client or for this address; try again later."""

    def __init__(self, retry_after: float) -> None:
        self.minutes = max(1, int(retry_after // 60) + (1 if retry_after % 60 else 0))
        super().__init__(f"too many sign-ups; try again in {self.minutes} minutes")


@dataclass(frozen=True)
class Outcome:
    """What happened behind the "check your inbox" page (for logs and tests only)."""

    mailed_signup: int | None  # the request whose confirmation is to be sent
    why_not: str = ""


@dataclass(frozen=True)
class Confirmation:
    """One confirmation email, ready for the transport."""

    sender: str
    recipient: str
    data: bytes
    smtputf8: bool


class SignupService:
    """The sign-up rules over the composition root's parts; one per web app."""

    def __init__(self, root: Root, renderer: Callable[[], Renderer]) -> None:
        self.root = root
        self.settings: Settings = root.settings
        self.sessions: sessionmaker[Session] = root.sessions
        self._renderer = renderer
        # Throttle rows are read and written one request at a time in this process.
        self.lock = threading.Lock()

    @property
    def secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    @property
    def consent_text(self) -> str:
        return " ".join(self.settings.signup_consent_text.split())

    def page_stamp(self, form: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return make_stamp(self.secret, PAGE, form, self.consent_text, issued)

    def embed_stamp(self, slug: str) -> str:
        return make_stamp(self.secret, EMBED, slug, self.consent_text, 0)

    def too_fast(self, stamp: Stamp, now: float | None = None) -> bool:
        """A page form sent back before a person could have filled it, or one left open
        for more than a day (shown again, fresh)."""
        if stamp.kind != PAGE:
            return False
        age = (now if now is not None else time.time()) - stamp.issued
        return age < self.settings.signup_min_fill_seconds or age > FORM_MAX_AGE.total_seconds()

    def throttle_client(self, session: Session, ip: str, now: datetime) -> None:
        wait = signups.count_attempt(
            session,
            signups.ip_key(ip),
            limit=self.settings.signup_per_ip_per_hour,
            window=timedelta(hours=1),
            now=now,
        )
        if wait:
            raise Throttled(wait)

    def request(
        self,
        session: Session,
        checked: Checked,
        stamp: Stamp,
        consent_text: str,
        ip: str,
        now: datetime,
    ) -> Outcome:
        """Count the request for the address, then decide whether to mail a confirmation."""
        wait = signups.count_attempt(
            session,
            signups.address_key(checked.email),
            limit=self.settings.signup_per_address_per_day,
            window=timedelta(days=1),
            now=now,
        )
        if wait:
            raise Throttled(wait)
        if not signups.mailable(session, checked.email):
            return Outcome(None, "suppressed, bounced or complained")
        cooldown = timedelta(minutes=self.settings.signup_cooldown_minutes)
        if signups.mailed_within(session, checked.email, cooldown, now):
            return Outcome(None, "a confirmation went to this address within the cooldown")
        signup = signups.create_pending(
            session,
            email=checked.email,
            name=checked.name,
            country=checked.country,
            language=self._renderer().profile.language,
            lists=checked.lists,
            form=stamp.label,
            consent_text=consent_text,
            ip=ip,
            expires_after=timedelta(days=self.settings.signup_expiry_days),
            now=now,
        )
        signups.mark_mailed(session, checked.email, now)
        return Outcome(signup.id)

    def confirm_url(self, signup: signups.Signup) -> str:
        token = make_link_token(self.secret, signup.id, signup.expires_at, signup.nonce)
        return f"{self.settings.public_base_url}/subscribe/confirm/{token}"

    def build(self, signup: signups.Signup) -> Confirmation:
        """The confirmation email: HTML from the MJML path and a plain-text part."""
        assert signup.email is not None
        renderer = self._renderer()
        profile = renderer.profile
        names = [item.list.name for item in signup.lists]
        title = f"Confirm your subscription to the {profile.masthead.name}"
        rendered = renderer.render_notice(
            "signup_confirm",
            subject=title,
            preheader="One click and you will receive what you asked for; nothing until then.",
            language=profile.language,
            list_names=names,
            address=signup.email,
            confirm_url=self.confirm_url(signup),
            expires=f"{signup.expires_at.astimezone(UTC):%Y-%m-%d %H:%M}",
        )
        wire = _wire_address(signup.email)
        smtputf8 = not wire.isascii()
        # Headers set raw are written as given: encoded words never split a grapheme.
        chosen = policy.SMTPUTF8 if smtputf8 else policy.SMTP
        message = EmailMessage(policy=chosen.clone(refold_source="none"))
        message.set_raw("From", address_header(profile.sender.name, profile.sender.address))
        message["To"] = wire
        if profile.sender.reply_to:
            message["Reply-To"] = profile.sender.reply_to
        if rendered.subject.isascii():
            message["Subject"] = rendered.subject
        else:
            subject = check_header_value("subject", rendered.subject)
            message.set_raw("Subject", encoded_words(subject))
        message["Date"] = format_datetime(datetime.now(UTC).replace(microsecond=0))
        message["Message-ID"] = (
            f"<signup.{signup.id}.{secrets.token_hex(6)}@{self.settings.sender_domain}>"
        )
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        message.set_content(rendered.text, charset="utf-8", cte="quoted-printable")
        message.add_alternative(
            rendered.html, subtype="html", charset="utf-8", cte="quoted-printable"
        )
        return Confirmation(profile.sender.address, wire, message.as_bytes(), smtputf8)

    def send(self, signup_id: int) -> bool:
        """Mail the confirmation of a request (after the page was answered). If it cannot
        be sent, the request and the cooldown are dropped, so trying again works."""
        with self.sessions() as session:
            signup = signups.get_signup(session, signup_id)
            if signup is None or signup.email is None:
                return False
            mail = self.build(signup)
            address = signup.email
        transport = self.root.transport()
        try:
            transport.send(mail.sender, [mail.recipient], mail.data, smtputf8=mail.smtputf8)
        except MailerError as exc:
            log.warning("sign-up %s: the confirmation could not be sent: %s", signup_id, exc)
            with self.sessions.begin() as session:
                signups.discard(session, signup_id)
                signups.mark_mailed(session, address, None)
            return False
        finally:
            transport.close()
        log.info("sign-up %s: confirmation sent", signup_id)
        return True

    def welcome(self, subscriber_id: int, issues: Sequence[Welcome]) -> int:
        """Mail each welcome issue to a person who just confirmed, built like a campaign
        message (their own unsubscribe and preferences links); how many were sent. Not
        recorded in any ledger; a failure is logged and not retried."""
        with self.sessions() as session:
            person = session.get(Subscriber, subscriber_id)
            if person is None or not signups.mailable(session, person.email):
                return 0
            recipient = Recipient(person.id, person.email, person.name or None)
        renderer = self._renderer()
        sender = renderer.profile.sender
        sent = 0
        transport = self.root.transport()
        try:
            for welcome in issues:
                try:
                    rendered = renderer.render(load_issue(welcome.path))
                    message = MessageTemplate(
                        identity=self.root.identity(),
                        campaign_id=welcome.campaign_id,
                        nonce="welcome",
                        subject=rendered.subject,
                        sender=formataddr((sender.name, sender.address)),
                        html=rendered.html,
                        text=rendered.text,
                        reply_to=sender.reply_to,
                    ).personalise(recipient)
                    transport.send(
                        message.envelope_from,
                        [message.recipient],
                        message.data,
                        smtputf8=message.needs_smtputf8,
                    )
                    sent += 1
                except (MailerError, ContentError) as exc:
                    log.warning(
                        "welcome %s to subscriber %s not sent: %s", welcome.path, subscriber_id, exc
                    )
        finally:
            transport.close()
        return sent


@dataclass(frozen=True)
class Welcome:
    """A welcome issue's file, and the campaign that sent it (for its "view in browser"
    link; 0 when none did)."""

    path: Path
    campaign_id: int


def _wire_address(email: str) -> str:
    """An internationalised domain as IDNA (no SMTPUTF8 needed for it)."""
    local, _, domain = email.rpartition("@")
    if domain.isascii():
        return email
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return email
