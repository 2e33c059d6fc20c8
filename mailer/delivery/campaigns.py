"""Campaigns: one issue sent to one audience.

A campaign records what will be sent (the issue file, subject, sender, audience)
and, once sending starts, freezes the rendered parts so later edits to the issue
file change nothing that goes out. This module creates, edits and freezes
campaigns; every change of a campaign's state (draft, scheduled, sending, paused,
sent, failed, cancelled, missed) is a move of `mailer.delivery.lifecycle`, with
the table of which move is allowed from which state. Functions here take a
`Session` and leave committing to the caller.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session

from mailer.authoring.slots import SlotInSubject, refuse_slots
from mailer.delivery.ledger import AnySelect
from mailer.delivery.message import Identity, check_mailbox
from mailer.errors import PermanentError, UserInputError
from mailer.schedule.waves import CampaignWave
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


class CampaignError(PermanentError):
    """A campaign cannot do what was asked (missing, not frozen, bad field)."""


class CampaignNotFound(CampaignError, UserInputError):
    pass


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
    # The draft revision the campaign was made from and froze (None: a content file).
    # The foreign key is the database's (migration 0013), not declared here, so that
    # processes that never load mailer.drafts can flush campaigns.
    draft_revision_id: Mapped[int | None] = mapped_column(Integer)

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.name!r} {self.state}>"


class CampaignVariant(Base):
    """One language's frozen content of a campaign (migration 0015). Every variant of
    the issue is frozen with the campaign; the default one is also in the campaign's
    own `frozen_*` columns (and `campaign.language`), which campaigns frozen before
    variants existed have alone."""

    __tablename__ = "campaign_variants"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    source_path: Mapped[str] = mapped_column(Text, nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    preheader: Mapped[str] = mapped_column(Text, nullable=False)
    html: Mapped[str] = mapped_column(Text, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)


@dataclass(frozen=True)
class FrozenContent:
    """What one recipient's message is made of: a variant, or the campaign's own
    columns for a campaign frozen before variants existed."""

    language: str
    subject: str
    preheader: str
    html: str
    text: str
    default: bool


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


class ProfileLike(Protocol):
    @property
    def default_language(self) -> str: ...


class RendererLike(Protocol):
    def render(self, issue: Any) -> RenderedLike: ...
    @property
    def profile(self) -> ProfileLike: ...


@dataclass(frozen=True)
class RenderedVariant:
    """One variant file rendered for a campaign."""

    source: str
    rendered: RenderedLike


@dataclass(frozen=True)
class RenderedVariants:
    """Every variant of a campaign's issue rendered; reads as its default variant."""

    variants: tuple[RenderedVariant, ...]
    default_index: int = 0

    @property
    def main(self) -> RenderedLike:
        return self.variants[self.default_index].rendered

    @property
    def subject(self) -> str:
        return self.main.subject

    @property
    def preheader(self) -> str:
        return self.main.preheader

    @property
    def html(self) -> str:
        return self.main.html

    @property
    def text(self) -> str:
        return self.main.text

    @property
    def language(self) -> str:
        return self.main.language


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
    draft_revision_id: int | None = None,
) -> Campaign:
    """A new draft; the subject defaults to the issue's (resolved when content is frozen).
    Made from a draft's revision (`draft_revision_id`), `issue_path` names that revision
    ("drafts/12/revisions/3"), not a file."""
    campaign = Campaign(
        name=_check_name(name),
        issue_path=str(issue_path if draft_revision_id else Path(issue_path).resolve()),
        draft_revision_id=draft_revision_id,
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


def freeze(session: Session, campaign_id: int, rendered: RenderedLike) -> Campaign:
    """Store the rendered parts once; a frozen campaign keeps what it froze. Given
    `RenderedVariants` (what `render_issue_file` returns), every variant is stored
    in `campaign_variants` and the default one in the campaign's own columns."""
    campaign = get_campaign(session, campaign_id)
    if campaign.frozen:
        return campaign
    if isinstance(rendered, RenderedVariants):
        for variant in rendered.variants:
            part = variant.rendered
            session.add(
                CampaignVariant(
                    campaign_id=campaign.id,
                    language=part.language,
                    source_path=variant.source,
                    subject=_check_header_value("subject", part.subject),
                    preheader=part.preheader,
                    html=part.html,
                    text=part.text,
                )
            )
        # The campaign's own subject was rendered into its variant (see render_issue_file).
        campaign.frozen_subject = _check_header_value("subject", rendered.subject)
    else:
        campaign.frozen_subject = _check_header_value(
            "subject", campaign.subject or rendered.subject
        )
    campaign.frozen_preheader = rendered.preheader
    campaign.frozen_html = rendered.html
    campaign.frozen_text = rendered.text
    campaign.language = rendered.language
    campaign.frozen_at = utcnow()
    session.flush()
    return campaign


def render_issue_file(
    renderer: RendererLike, issue_path: str | Path, subject: str | None = None
) -> RenderedVariants:
    """Load and render every language variant of the campaign's issue file (see
    `mailer.authoring.variants`); content errors name file and line, and a variant
    that fails to render is an error naming its file, so nothing is frozen or sent.

    `subject`, the campaign's own, replaces the subject of the variant the campaign
    was made from (its language) before rendering, so the HTML title and the
    preheader's label say what the Subject header says; other variants keep theirs."""
    # authoring's modules; imported when needed
    from mailer.authoring.loader import ContentError, Problem
    from mailer.authoring.variants import language_key, load_variants

    path = Path(issue_path)
    found = load_variants(path, renderer.profile.default_language)
    own = next((v for v in found.variants if v.path.resolve() == path.resolve()), None)
    default = found.default
    parts: list[RenderedVariant] = []
    for variant in found.variants:
        issue = variant.issue
        if (
            subject
            and own is not None
            and language_key(issue.language) == language_key(own.language)
        ):
            issue = issue.model_copy(update={"subject": subject})
        try:
            rendered = renderer.render(issue)
        except ContentError:
            raise  # already names the variant's file and line
        except (PermanentError, OSError, ValueError) as exc:  # a photo, a template...
            raise ContentError(
                [Problem(str(variant.path), None, "", f"this variant cannot be rendered: {exc}")]
            ) from None
        parts.append(RenderedVariant(str(variant.path.resolve()), rendered))
    index = next(i for i, v in enumerate(found.variants) if v is default)
    return RenderedVariants(tuple(parts), index)


def frozen_contents(session: Session, campaign: Campaign) -> list[FrozenContent]:
    """Every frozen variant of `campaign`, the default first; a campaign frozen before
    variants existed has one, its own columns. Empty while it is not frozen."""
    if not campaign.frozen or campaign.frozen_html is None:
        return []
    default = FrozenContent(
        campaign.language or "",
        campaign.frozen_subject or "",
        campaign.frozen_preheader or "",
        campaign.frozen_html,
        campaign.frozen_text or "",
        True,
    )
    rows = session.scalars(
        select(CampaignVariant)
        .where(CampaignVariant.campaign_id == campaign.id)
        .order_by(CampaignVariant.language)
    ).all()
    others = [
        FrozenContent(row.language, row.subject, row.preheader, row.html, row.text, False)
        for row in rows
        if row.language != campaign.language
    ]
    return [default, *others]


def variant_identity(identity: Identity, content: FrozenContent) -> Identity:
    """The message identity of a variant: a variant other than the default is a list of
    its own for mail filters, its List-Id the profile's with the language in front
    (`zh.newsletter.lmec.example.org`); the default variant keeps the profile's."""
    from mailer.authoring.variants import language_key

    if content.default or not content.language:
        return identity
    return replace(identity, list_id=f"{language_key(content.language)}.{identity.list_id}")


def content_for(contents: Sequence[FrozenContent], language: str | None) -> FrozenContent:
    """The variant a reader of `language` gets: theirs (see
    `mailer.authoring.variants.pick`), else the default; never none, never two."""
    from mailer.authoring.variants import pick

    if not contents:
        raise CampaignError("the campaign has no frozen content")
    default = contents[0]
    chosen = pick([c.language for c in contents], language, default.language)
    return next((c for c in contents if c.language == chosen), default)


def render_campaign(renderer: RendererLike, campaign: Campaign) -> RenderedLike:
    """The campaign's content rendered for freezing: its issue file's, or the draft
    revision's it was made from (a revision a campaign refers to never changes)."""
    if campaign.draft_revision_id is None:
        return render_issue_file(renderer, campaign.issue_path, campaign.subject)
    from mailer.drafts.document import revision_issue  # drafts' module; imported when needed

    session = object_session(campaign)
    if session is None:
        raise CampaignError(f"campaign {campaign.id} is not attached to a database session")
    return renderer.render(revision_issue(session, campaign.draft_revision_id, campaign.subject))


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
