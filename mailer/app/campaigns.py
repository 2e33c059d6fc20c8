"""Campaigns as the CLI and the web app both make and report them.

One set of defaults for a campaign made from an issue (its name, the profile's
sender written one way, its Reply-To), one campaign report with partner names,
and one failures CSV (always formula-neutralised, see `mailer.delivery.failurescsv`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from mailer.app.errors import store_errors
from mailer.authoring.content import Issue, load_issue
from mailer.authoring.loader import ContentError, Problem
from mailer.authoring.profile import Profile
from mailer.authoring.render import Renderer
from mailer.authoring.variants import load_variants
from mailer.delivery import campaigns, ledger
from mailer.delivery.campaigns import Campaign
from mailer.delivery.failurescsv import write_failures
from subscribers.audience import Audience, check_audience
from subscribers.models import Partner


def default_name(issue: Issue) -> str:
    """What a campaign is called when nobody names it: "Issue 15, 2022"."""
    return f"Issue {issue.number}, {issue.year}"


def create_from_issue(
    session: Session,
    profile: Profile,
    issue_path: Path,
    issue: Issue,
    audience: Audience,
    *,
    name: str | None = None,
    subject: str | None = None,
    sender: str | None = None,
    reply_to: str | None = None,
) -> Campaign:
    """A new draft for `issue`; what is not given comes from the issue and the profile.

    The audience's lists and partners must exist (a typo is an error, not nobody). The
    issue's language variants (`mailer.authoring.variants`) are loaded and compared
    now, so variants that disagree are refused before the campaign exists; all of
    them are rendered and frozen with it when it is scheduled or sent.
    """
    with store_errors():
        check_audience(session, audience)
    load_variants(issue_path, profile.default_language)
    return campaigns.create_campaign(
        session,
        name=(name or "").strip() or default_name(issue),
        issue_path=issue_path,
        issue=issue,
        sender=sender or profile.sender.mailbox,
        reply_to=reply_to or profile.sender.reply_to,
        subject=(subject or "").strip() or None,
        audience=audience,
    )


def create_from_draft(
    session: Session,
    renderer: Renderer,
    draft_id: int,
    audience: Audience,
    *,
    name: str | None = None,
    subject: str | None = None,
    sender: str | None = None,
    reply_to: str | None = None,
) -> Campaign:
    """A new campaign from the draft's head revision, which it keeps (`draft_revision_id`)
    and freezes when it is scheduled or started, as a file's campaign freezes its file.

    A draft that `mailer check` would refuse is refused here, with every field named
    (ContentError): a half-written draft is never sent."""
    from mailer.authoring.checks import Level, check_issue
    from mailer.drafts.document import issue_from_document
    from mailer.drafts.store import lock_head

    head = lock_head(session, draft_id)
    label = f"draft {draft_id}"
    issue = issue_from_document(head.document, renderer.profile, label)
    errors = [f for f in check_issue(issue, renderer) if f.level is Level.ERROR]
    if errors:
        raise ContentError([Problem(label, None, f.field, f.message) for f in errors])
    profile = renderer.profile
    with store_errors():
        check_audience(session, audience)
    return campaigns.create_campaign(
        session,
        name=(name or "").strip() or default_name(issue),
        issue_path=revision_path(draft_id, head.number),
        issue=issue,
        sender=sender or profile.sender.mailbox,
        reply_to=reply_to or profile.sender.reply_to,
        subject=(subject or "").strip() or None,
        audience=audience,
        draft_revision_id=head.id,
    )


def revision_path(draft_id: int, number: int) -> str:
    """Where a draft's revision is shown (`/drafts/12/revisions/3`): the "issue path"
    of a campaign made from it."""
    return f"/drafts/{draft_id}/revisions/{number}"


def variant_languages(profile: Profile, issue_path: Path) -> list[str]:
    """The languages of the issue's variants, the default first."""
    found = load_variants(issue_path, profile.default_language)
    default = found.default.language
    return [default, *sorted(lang for lang in found.languages if lang != default)]


def issue_subject(renderer: Renderer, campaign: Campaign) -> str:
    """The subject the campaign's issue gives itself (read from its file now)."""
    if campaign.draft_revision_id is not None:
        return _revision_subject(renderer, campaign)
    try:
        return renderer.subject(load_issue(Path(campaign.issue_path)))
    except ContentError as exc:
        return f"the issue's own (its file has errors: {exc.problems[0] if exc.problems else exc})"
    except OSError:
        return "the issue's own (its file is missing)"


def _revision_subject(renderer: Renderer, campaign: Campaign) -> str:
    from mailer.drafts.document import revision_issue

    session = object_session(campaign)
    if session is None or campaign.draft_revision_id is None:
        return "the issue's own"
    try:
        return renderer.subject(revision_issue(session, campaign.draft_revision_id))
    except ContentError as exc:
        return f"the issue's own (its draft has errors: {exc.problems[0] if exc.problems else exc})"


def subject_of(renderer: Renderer, campaign: Campaign) -> str:
    """The subject that goes (or went) out: frozen, chosen, or the issue's own."""
    if campaign.frozen_subject or campaign.subject:
        return campaign.frozen_subject or campaign.subject or ""
    return issue_subject(renderer, campaign)


@dataclass(frozen=True)
class CampaignReport:
    """A campaign with its ledger's breakdowns; partners by name, not id."""

    campaign: Campaign
    ledger: ledger.Report
    partner_names: dict[str, str]

    def partner(self, key: str) -> str:
        """The partner a `by_partner` row is about ("" for contacts without one)."""
        return self.partner_names.get(key, key)


def report(session: Session, campaign_id: int) -> CampaignReport:
    """Totals and the breakdowns per country, partner, time zone and language."""
    campaign = campaigns.get_campaign(session, campaign_id)
    return CampaignReport(
        campaign=campaign,
        ledger=ledger.report(session, campaign_id),
        partner_names=partner_names(session),
    )


def partner_names(session: Session) -> dict[str, str]:
    """Every partner's name by its id as the ledger keys it (a string)."""
    return {str(pid): name for pid, name in session.execute(select(Partner.id, Partner.name))}


def history(session: Session, email: str) -> list[tuple[ledger.LedgerRow, Campaign]]:
    """Every campaign an address was in, newest first, with its ledger row:
    "did they get issue 15?"."""
    rows = ledger.deliveries_to(session, email)
    ids = {row.campaign_id for row in rows}
    found = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_(ids)))}
    return [(row, found[row.campaign_id]) for row in rows]


def write_failures_csv(session: Session, campaign_id: int, handle: io.TextIOBase) -> int:
    """The campaign's failed recipients as CSV into `handle`; how many there were."""
    campaigns.get_campaign(session, campaign_id)  # an unknown id is an error, not a header
    return write_failures(handle, ledger.failures(session, campaign_id))


def failures_csv(session: Session, campaign_id: int) -> bytes:
    """The same CSV as UTF-8 bytes, for a download."""
    buffer = io.StringIO()
    write_failures_csv(session, campaign_id, buffer)
    return buffer.getvalue().encode("utf-8")


def failures_filename(campaign_id: int) -> str:
    return f"campaign-{campaign_id}-failures.csv"


def recent_failures(session: Session, campaign_id: int, limit: int = 200) -> list[ledger.LedgerRow]:
    """The failed and retrying rows a campaign page lists (failed first)."""
    return ledger.unsettled(session, campaign_id, limit)
