"""Campaigns: one issue sent to one audience, and the life cycle that guards it.

A campaign records what will be sent (the issue file, subject, sender, audience)
and, once sending starts, freezes the rendered parts so later edits to the issue
file change nothing that goes out. States and the moves between them:

    draft -> scheduled | sending | cancelled
    scheduled -> draft | scheduled | sending | missed | paused | cancelled
    missed -> draft | scheduled | sending | cancelled
    sending -> paused | sent | failed | cancelled
    paused -> sending | scheduled | cancelled   (scheduled: paused before it started)
    sent, cancelled, failed: final

Any other move raises `IllegalTransition`. Functions here take a `Session` and
leave committing to the caller, except `start_sending` given a session factory.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from mailer.authoring.slots import SlotInSubject, refuse_slots
from mailer.delivery import ledger
from mailer.delivery.ledger import AnySelect
from mailer.delivery.message import check_mailbox
from mailer.errors import PermanentError, UserInputError
from mailer.schedule.waves import CampaignWave, WaveStatus
from mailer.timestamps import UTCDateTime, utcnow
from subscribers.base import Base

NAME_MAX = 200  # the column's width


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"
    MISSED = "missed"


S = CampaignState
TRANSITIONS: Mapping[CampaignState, frozenset[CampaignState]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.DRAFT, S.SCHEDULED, S.SENDING, S.MISSED, S.PAUSED, S.CANCELLED}),
    S.MISSED: frozenset({S.DRAFT, S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SENDING: frozenset({S.PAUSED, S.SENT, S.FAILED, S.CANCELLED}),
    S.PAUSED: frozenset({S.SENDING, S.SCHEDULED, S.CANCELLED}),
    S.SENT: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}


class CampaignError(PermanentError):
    """A campaign cannot do what was asked (missing, not frozen, bad field)."""


class CampaignNotFound(CampaignError, UserInputError):
    pass


class IllegalTransition(CampaignError):
    """The move between two states is not allowed (e.g. resuming a sent campaign)."""

    def __init__(self, campaign_id: int, current: str, wanted: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[CampaignState(current)])) or "none (final)"
        super().__init__(
            f"campaign {campaign_id} is {current}; it cannot become {wanted} "
            f"(allowed from {current}: {allowed})"
        )
        self.current = current
        self.wanted = wanted


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    issue_path: Mapped[str] = mapped_column(Text, nullable=False)
    issue_slug: Mapped[str] = mapped_column(String(64), nullable=False)
    issue_number: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(Text)  # None: the issue's own subject
    sender: Mapped[str] = mapped_column(String(400), nullable=False)  # "Name <addr>"
    reply_to: Mapped[str | None] = mapped_column(String(400))
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=CampaignState.DRAFT)
    state_reason: Mapped[str | None] = mapped_column(Text)
    # Paused by a worker because the server kept failing; a worker resumes it.
    auto_resume: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Time zones of scheduler waves not enqueued yet; the campaign is not done before.
    pending_waves: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    frozen_subject: Mapped[str | None] = mapped_column(Text)
    frozen_preheader: Mapped[str | None] = mapped_column(Text)
    frozen_html: Mapped[str | None] = mapped_column(Text)
    frozen_text: Mapped[str | None] = mapped_column(Text)
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    misfire_grace_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.name!r} {self.state}>"


class IssueLike(Protocol):
    """What a campaign needs from `mailer.authoring.content.Issue`."""

    @property
    def slug(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def language(self) -> str: ...


class RenderedLike(Protocol):
    """What a campaign freezes from `mailer.authoring.render.RenderedIssue`."""

    @property
    def subject(self) -> str: ...
    @property
    def preheader(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def language(self) -> str: ...


class RendererLike(Protocol):
    def render(self, issue: Any) -> RenderedLike: ...


def _check_header_value(field: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise UserInputError(f"{field}: line breaks are not allowed in a header value")
    return value


def check_subject(value: str) -> str:
    """A subject override fit for the Subject header and an inbox line: one line, no
    longer than an issue's own subject may be (mailer.authoring.content.MAX_SUBJECT), no
    per-recipient slot (see mailer.authoring.slots), white space as the renderer writes it, so the
    Subject header, the HTML title and the web copy show the same text."""
    from mailer.authoring.content import MAX_SUBJECT  # authoring's module, as in render_issue_file

    _check_header_value("subject", value)
    if len(value) > MAX_SUBJECT:
        raise UserInputError(f"subject: at most {MAX_SUBJECT} characters ({len(value)} given)")
    try:
        refuse_slots(value)
    except SlotInSubject as exc:
        raise UserInputError(f"subject: {exc}") from None
    return " ".join(value.split())


def _check_address(field: str, value: str) -> str:
    """The address fit for a header: ASCII before @, the domain as IDNA (xn--...); an
    internationalised domain was RFC 2047-encoded inside the address, which no client reads."""
    _check_header_value(field, value)
    check_mailbox(field, value)  # e.g. a name that decodes to a line break
    name, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if not local or not domain or " " in address:
        raise UserInputError(f"{field}: {value!r} is not an email address")
    if not local.isascii():
        raise UserInputError(
            f"{field}: the part before @ must be ASCII (many mail servers refuse others): {value!r}"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise UserInputError(f"{field}: {value!r} is not an email address") from None
    if ascii_domain == domain:
        return value
    return str(HeaderAddress(display_name=name, addr_spec=f"{local}@{ascii_domain}"))


def _check_name(name: str) -> str:
    if not name.strip():
        raise UserInputError("name: a campaign needs a name")
    if len(name.strip()) > NAME_MAX:
        raise UserInputError(f"name: at most {NAME_MAX} characters ({len(name.strip())} given)")
    return name.strip()


def _audience_json(audience: Any) -> dict[str, Any]:
    """Accept `subscribers.audience.Audience` (via to_json) or its JSON form."""
    if hasattr(audience, "to_json"):
        audience = audience.to_json()
    if isinstance(audience, str):
        audience = json.loads(audience)
    if not isinstance(audience, Mapping):
        raise UserInputError(f"audience: expected an Audience, got {type(audience).__name__}")
    return dict(audience)


def create_campaign(
    session: Session,
    *,
    name: str,
    issue_path: Path | str,
    issue: IssueLike,
    sender: str,
    audience: Any,
    subject: str | None = None,
    reply_to: str | None = None,
) -> Campaign:
    """A new draft; the subject defaults to the issue's (resolved when content is frozen)."""
    campaign = Campaign(
        name=_check_name(name),
        issue_path=str(Path(issue_path).resolve()),
        issue_slug=issue.slug,
        issue_number=issue.number,
        language=issue.language,
        subject=check_subject(subject) if subject else None,
        sender=_check_address("sender", sender),
        reply_to=_check_address("reply_to", reply_to) if reply_to else None,
        audience=_audience_json(audience),
        state=CampaignState.DRAFT,
        pending_waves=[],
    )
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int, *, lock: bool = False) -> Campaign:
    """The campaign, or CampaignNotFound. `lock` takes a row lock (PostgreSQL)."""
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = session.scalars(query).one_or_none()
    if campaign is None:
        raise CampaignNotFound(f"no campaign with id {campaign_id}")
    return campaign


def list_campaigns(
    session: Session, *, states: Collection[str] | None = None, limit: int | None = None
) -> Sequence[Campaign]:
    query = select(Campaign).order_by(Campaign.id.desc())
    if states:
        query = query.where(Campaign.state.in_(sorted(states)))
    if limit:
        query = query.limit(limit)
    return session.scalars(query).all()


def transition(campaign: Campaign, wanted: CampaignState, reason: str | None = None) -> Campaign:
    """Move to `wanted` if allowed from the current state, else IllegalTransition."""
    current = CampaignState(campaign.state)
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(campaign.id, current, wanted)
    campaign.state = wanted
    campaign.state_reason = reason
    now = utcnow()
    if wanted == CampaignState.SENDING and campaign.started_at is None:
        campaign.started_at = now
    if wanted in (CampaignState.SENT, CampaignState.FAILED, CampaignState.CANCELLED):
        campaign.finished_at = now
    if wanted != CampaignState.PAUSED:
        campaign.auto_resume = False
    return campaign


def freeze(session: Session, campaign_id: int, rendered: RenderedLike) -> Campaign:
    """Store the rendered parts once; a frozen campaign keeps what it froze."""
    campaign = get_campaign(session, campaign_id)
    if campaign.frozen:
        return campaign
    campaign.frozen_subject = _check_header_value("subject", campaign.subject or rendered.subject)
    campaign.frozen_preheader = rendered.preheader
    campaign.frozen_html = rendered.html
    campaign.frozen_text = rendered.text
    campaign.language = rendered.language
    campaign.frozen_at = utcnow()
    session.flush()
    return campaign


def render_issue_file(
    renderer: RendererLike, issue_path: str | Path, subject: str | None = None
) -> RenderedLike:
    """Load and render the campaign's issue file (content errors name file and line).

    `subject`, the campaign's own, replaces the issue's before rendering, so the HTML
    title and the preheader's label say what the Subject header says."""
    from mailer.authoring.content import load_issue  # authoring's module; imported when needed

    issue = load_issue(Path(issue_path))
    if subject:
        issue = issue.model_copy(update={"subject": subject})
    return renderer.render(issue)


def mark_scheduled(
    session: Session,
    campaign_id: int,
    when: datetime,
    *,
    misfire_grace_seconds: int | None = None,
    waves: Collection[str] = (),
) -> Campaign:
    """Scheduled for `when` (aware); `waves` are the time zones still to be enqueued."""
    if when.tzinfo is None:
        raise UserInputError("scheduled time: give a time zone")
    campaign = transition(get_campaign(session, campaign_id), CampaignState.SCHEDULED)
    campaign.scheduled_at = when
    if misfire_grace_seconds is not None:
        campaign.misfire_grace_seconds = misfire_grace_seconds
    campaign.pending_waves = sorted(set(waves))
    session.flush()
    return campaign


def unschedule(session: Session, campaign_id: int) -> Campaign:
    campaign = transition(get_campaign(session, campaign_id), CampaignState.DRAFT)
    campaign.scheduled_at = None
    campaign.pending_waves = []
    session.flush()
    return campaign


def mark_missed(session: Session, campaign_id: int, reason: str) -> Campaign:
    campaign = transition(get_campaign(session, campaign_id), CampaignState.MISSED, reason)
    session.flush()
    return campaign


def pause(
    session: Session, campaign_id: int, reason: str = "paused by operator", *, auto: bool = False
) -> Campaign:
    """Stop handing out rows; rows already on the wire finish. `auto`: a worker resumes it."""
    campaign = transition(get_campaign(session, campaign_id), CampaignState.PAUSED, reason)
    campaign.auto_resume = auto
    session.flush()
    return campaign


def resume(session: Session, campaign_id: int) -> Campaign:
    """Back to sending; a scheduled campaign paused before anyone was enqueued goes back
    to scheduled, so its waves still start at their times (the scheduler's part)."""
    campaign = get_campaign(session, campaign_id)
    if campaign.state != CampaignState.PAUSED and TRANSITIONS[CampaignState(campaign.state)]:
        hint = (
            ""
            if campaign.state == CampaignState.SENDING
            else f" (to send it now: mailer send {campaign_id})"
        )
        raise CampaignError(
            f"campaign {campaign_id} is {campaign.state}, not paused: there is nothing to "
            f"resume{hint}"
        )
    waiting = campaign.scheduled_at is not None and ledger.progress(session, campaign_id).total == 0
    wanted = CampaignState.SCHEDULED if waiting else CampaignState.SENDING
    campaign = transition(campaign, wanted)
    session.flush()
    return campaign


def cancel(session: Session, campaign_id: int, reason: str = "cancelled by operator") -> Campaign:
    """Final: rows not sent yet stay queued in the ledger and are never sent."""
    campaign = transition(get_campaign(session, campaign_id), CampaignState.CANCELLED, reason)
    campaign.pending_waves = []
    # Its waves that have not started never will: say so now, not when a scheduler
    # next runs (the page showed them "pending" after the cancel).
    session.execute(
        update(CampaignWave)
        .where(
            CampaignWave.campaign_id == campaign_id,
            CampaignWave.status == WaveStatus.PENDING.value,
        )
        .values(status=WaveStatus.CANCELLED.value, status_reason="campaign is cancelled")
    )
    session.flush()
    return campaign


def edit_draft(
    session: Session,
    campaign_id: int,
    *,
    name: str,
    subject: str | None,
    audience: Any,
) -> Campaign:
    """Change a draft's name, subject (None: the issue's) and audience; only a draft,
    since a scheduled campaign's waves were planned for its audience."""
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.state != CampaignState.DRAFT:
        raise CampaignError(
            f"campaign {campaign_id} is {campaign.state}; only a draft can be edited"
            + (" (unschedule it first)" if campaign.state == CampaignState.SCHEDULED else "")
        )
    campaign.name = _check_name(name)
    campaign.subject = _check_header_value("subject", subject) if subject else None
    campaign.audience = _audience_json(audience)
    session.flush()
    return campaign


def delete_draft(session: Session, campaign_id: int) -> str:
    """Remove a draft that never went anywhere; returns its name. Anything that was
    scheduled, sent or cancelled stays, as the record of what happened."""
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.state != CampaignState.DRAFT or campaign.started_at is not None:
        raise CampaignError(
            f"campaign {campaign_id} is {campaign.state}; only a draft can be deleted "
            "(cancel it instead)"
        )
    name = campaign.name
    session.execute(delete(CampaignWave).where(CampaignWave.campaign_id == campaign_id))
    session.delete(campaign)
    session.flush()
    return name


def audience_select(campaign: Campaign) -> AnySelect:
    """The subscriber store's query for this campaign's audience."""
    from subscribers.audience import Audience, audience_query

    return audience_query(Audience.from_json(dict(campaign.audience)))


def start_sending(
    session_factory_or_session: sessionmaker[Session] | Session,
    campaign_id: int,
    *,
    timezones: Collection[str] | None = None,
    renderer: RendererLike | None = None,
    audience: AnySelect | None = None,
    firing_wave: int | None = None,
) -> int:
    """Freeze (if needed), move to sending and enqueue the audience; return rows added.

    Idempotent: rows already in the ledger are skipped, so a job that fires twice or a
    command run again adds nothing. With `timezones`, only recipients in those zones
    are enqueued (a scheduler wave) and those waves leave `pending_waves`. An unfrozen
    campaign needs a `renderer`. `audience` overrides the stored audience (tests,
    benchmarks). Without `timezones` everyone goes now, so the campaign's waves not
    started yet are settled, except `firing_wave` (the scheduler's wave calling this,
    which records its own start). With a session factory this commits; with a session
    the caller does.
    """
    if isinstance(session_factory_or_session, Session):
        return _start_sending(
            session_factory_or_session, campaign_id, timezones, renderer, audience, firing_wave
        )
    with session_factory_or_session.begin() as session:
        return _start_sending(session, campaign_id, timezones, renderer, audience, firing_wave)


def _start_sending(
    session: Session,
    campaign_id: int,
    timezones: Collection[str] | None,
    renderer: RendererLike | None,
    audience: AnySelect | None,
    firing_wave: int | None,
) -> int:
    campaign = get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if state in (CampaignState.SENT, CampaignState.CANCELLED, CampaignState.FAILED):
        raise IllegalTransition(campaign.id, state, CampaignState.SENDING)
    if not campaign.frozen:
        if renderer is None:
            raise CampaignError(f"campaign {campaign_id} has no frozen content and no renderer")
        freeze(
            session,
            campaign_id,
            render_issue_file(renderer, campaign.issue_path, campaign.subject),
        )
    if state not in (CampaignState.SENDING, CampaignState.PAUSED):
        transition(campaign, CampaignState.SENDING)
    if timezones is None:
        campaign.pending_waves = []
        # Everyone goes now: waves not started (still to come, or missed and now sent by
        # hand) have nobody left to start, and progress must not count their people twice.
        session.execute(
            update(CampaignWave)
            .where(
                CampaignWave.campaign_id == campaign.id,
                CampaignWave.id != (firing_wave or 0),
                CampaignWave.status.in_(
                    [WaveStatus.PENDING.value, WaveStatus.MISSED.value, WaveStatus.FAILED.value]
                ),
            )
            .values(
                status=WaveStatus.STARTED.value,
                status_reason="sent with everyone at once",
                recipients=0,
                started_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
    else:
        campaign.pending_waves = sorted(set(campaign.pending_waves) - set(timezones))
    query = audience if audience is not None else audience_select(campaign)
    added = ledger.enqueue(session, campaign.id, query, utcnow(), timezones=timezones)
    session.flush()
    if timezones is None and not added and ledger.progress(session, campaign.id).total == 0:
        # Sent to nobody, the campaign would be final ('sent') and could never go out.
        raise CampaignError(
            f"campaign {campaign.id}: its audience has no recipients, so nothing was sent "
            "(add subscribers, or check its lists, countries and partners)"
        )
    return added
