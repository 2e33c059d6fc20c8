"""The public archive: which campaigns count as published issues, their web copy, and
the Atom feed (built with ElementTree, never by string concatenation).

A campaign is published when it started sending and its audience is made only of
public lists (`subscribers.audience.reaches_only_public_lists`): every list it names
is public, or, for an audience that names no lists ("anyone with an active
subscription"), every list there is is public. Visibility is read when the page is
asked for, so making a list private takes its campaigns off the archive, the feed
and "view in browser" at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer import urls
from mailer.authoring.labels import issue_date, label
from mailer.authoring.profile import Masthead
from mailer.authoring.render import Slot, fill, web_copy
from mailer.delivery.campaigns import (
    Campaign,
    CampaignState,
    CampaignVariant,
    FrozenContent,
    content_for,
    frozen_contents,
)
from mailer.settings import Settings
from subscribers.audience import Audience, list_visibility, reaches_only_public_lists

PUBLISHED = (CampaignState.SENDING, CampaignState.PAUSED, CampaignState.SENT)
ATOM = "http://www.w3.org/2005/Atom"
SLUG = re.compile(r"^(\d{4})-(\d+)$")


@dataclass(frozen=True)
class ArchiveEntry:
    campaign_id: int
    slug: str
    number: int | None
    subject: str
    summary: str
    published: datetime
    language: str = ""  # of the variant shown (the default one in the archive)
    others: tuple[str, ...] = ()  # the languages of its other variants

    @property
    def label(self) -> str:
        """ "Issue 15, 2022" from the slug ("2022-15"); the slug itself otherwise."""
        match = SLUG.match(self.slug)
        return f"Issue {int(match[2])}, {match[1]}" if match else self.slug


def issue_label(entry: ArchiveEntry, language: str) -> str:
    """ "Issue 15, 2022" in `language` (the catalogs' label); the slug for other slugs."""
    match = SLUG.match(entry.slug)
    if not match:
        return entry.slug
    return label("issue", language).format(number=int(match[2]), year=match[1])


def long_date(moment: datetime, language: str) -> str:
    """The day an issue went out, as CLDR writes dates in `language`."""
    return issue_date(moment.date(), language)


def _published(campaign: Campaign) -> datetime:
    moment = campaign.started_at or campaign.frozen_at or campaign.created_at
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_public(campaign: Campaign, visibility: Mapping[str, bool]) -> bool:
    """Whether the campaign's audience is made only of public lists (see the module
    docstring); an audience that cannot be read counts as private."""
    try:
        audience = Audience.from_json(dict(campaign.audience))
    except (TypeError, ValueError):  # the store's StoreInputError is a ValueError
        return False
    return reaches_only_public_lists(audience, visibility)


def sent_issues(session: Session) -> list[ArchiveEntry]:
    """One entry per published issue (its first published campaign), newest first."""
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.state.in_([s.value for s in PUBLISHED]), Campaign.frozen_at.is_not(None))
        .order_by(Campaign.id)
    ).all()
    visibility = list_visibility(session)
    first: dict[str, Campaign] = {}
    for campaign in campaigns:
        if is_public(campaign, visibility):
            first.setdefault(campaign.issue_slug, campaign)
    languages: dict[int, list[str]] = {}
    shown = [c.id for c in first.values()]
    for campaign_id, language in session.execute(
        select(CampaignVariant.campaign_id, CampaignVariant.language)
        .where(CampaignVariant.campaign_id.in_(shown))
        .order_by(CampaignVariant.language)
    ):
        languages.setdefault(campaign_id, []).append(language)
    entries = [
        _entry(c, others=tuple(x for x in languages.get(c.id, []) if x != c.language))
        for c in first.values()
    ]
    return sorted(entries, key=lambda e: (e.published, e.slug), reverse=True)


def _entry(
    campaign: Campaign, content: FrozenContent | None = None, others: tuple[str, ...] = ()
) -> ArchiveEntry:
    """The campaign as the archive lists it: its default variant, or `content`."""
    return ArchiveEntry(
        campaign_id=campaign.id,
        slug=campaign.issue_slug,
        number=campaign.issue_number,
        subject=(
            content.subject
            if content is not None
            else campaign.frozen_subject or campaign.subject or campaign.name
        ),
        summary=content.preheader if content is not None else campaign.frozen_preheader or "",
        published=_published(campaign),
        language=content.language if content is not None else campaign.language or "",
        others=others,
    )


def public_html(
    session: Session,
    settings: Settings,
    campaign_id: int,
    web_parts: Callable[[ArchiveEntry], Mapping[str, str]],
    language: str | None = None,
) -> str | None:
    """The web copy of a published campaign; None (the page answers 404) for one that
    is unknown, unsent or not public. `language` (the link's `?lang=`, put there for
    each subscriber's variant) chooses the variant, as the worker does: none given,
    or one the campaign has no variant for, shows the default.

    The frozen HTML with what only the email shows (its recipient's lines, its
    unsubscribe and "view in browser" links) replaced by `web_parts(entry)` (see
    `mailer.authoring.render.web_copy`). Slots left elsewhere (typed into the content) are filled
    generically: the web copy is the same for everyone and names nobody. HTML frozen
    before the email marked those parts keeps them, its links leading to a page that
    explains each email carries its own.
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or not campaign.frozen_html:
        return None
    # A campaign cancelled (or failed) part way still has recipients holding its link.
    if campaign.state not in PUBLISHED and campaign.started_at is None:
        return None
    if not is_public(campaign, list_visibility(session)):
        return None
    content = content_for(frozen_contents(session, campaign), language)
    page = web_copy(content.html, web_parts(_entry(campaign, content)))
    base = settings.public_base_url
    values = {
        Slot.UNSUBSCRIBE_URL: f"{base}/unsubscribe",
        Slot.PREFERENCES_URL: f"{base}/unsubscribe",
        Slot.VIEW_URL: urls.view_in_browser(
            base, campaign.id, None if content.default else content.language
        ),
        Slot.NAME: "subscriber",
        Slot.EMAIL: "your address",
    }
    return fill(content.html if page is None else page, values, html=True)


def atom_feed(entries: Sequence[ArchiveEntry], base: str, masthead: Masthead) -> bytes:
    """An Atom 1.0 document (RFC 4287) of the published issues."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "title", f"{masthead.name} {masthead.label}".strip())
    sub(feed, "id", urls.archive_feed(base))
    sub(feed, "link", rel="self", href=urls.archive_feed(base))
    sub(feed, "link", rel="alternate", type="text/html", href=urls.archive(base))
    latest = max((e.published for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
    sub(feed, "updated", latest.isoformat())
    author = sub(feed, "author")
    sub(author, "name", masthead.name)
    for entry in entries:
        item = sub(feed, "entry")
        sub(item, "title", entry.subject)
        sub(item, "id", urls.view_in_browser(base, entry.campaign_id))
        sub(
            item,
            "link",
            rel="alternate",
            type="text/html",
            href=urls.view_in_browser(base, entry.campaign_id),
        )
        sub(item, "published", entry.published.isoformat())
        sub(item, "updated", entry.published.isoformat())
        if entry.summary:
            sub(item, "summary", entry.summary)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
