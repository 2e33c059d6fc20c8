"""Editor pages: the campaigns list, and a campaign's making (the new-campaign form with
its audience and recipient count, a draft's edit form, deleting a draft).

A campaign made here gets the defaults every campaign made from an issue gets
(`mailer.app.campaigns`). Posts need the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from mailer.app import campaigns as app_campaigns
from mailer.app.audiences import audience_countries, audience_from, breakdown
from mailer.app.errors import RecordError, store_errors
from mailer.delivery import campaigns as campaign_store
from mailer.delivery import progress
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.drafts.store import list_drafts
from mailer.errors import MailerError
from mailer.people.accounts import User
from mailer.web import confirm as confirm_page
from mailer.web import csrf, library
from mailer.web.auth import current_user
from mailer.web.context import WebContext, web
from mailer.web.forms import DB, back
from mailer.web.pages import flash
from subscribers import mailing_lists
from subscribers.audience import Audience, count_audience
from subscribers.countries import country_name
from subscribers.partners import list_partners

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])

Editor = Annotated[User, Depends(current_user)]

SOON = timedelta(minutes=2)


def _refresh_seconds(campaigns: Sequence[Campaign], now: datetime) -> int | None:
    """How often the campaign list reloads itself: often while something sends or is about
    to start, now and then while a start is further away (a wave fires, a worker pauses);
    never when nothing is under way."""
    seconds = None
    for campaign in campaigns:
        if campaign.state == CampaignState.SENDING:
            return 3
        if campaign.state in (CampaignState.SCHEDULED, CampaignState.PAUSED):
            due = campaign.scheduled_at
            due = due if due is None or due.tzinfo else due.replace(tzinfo=UTC)
            if due is not None and due - now < SOON:
                return 3
            seconds = 30
    return seconds


@router.get("/campaigns")
def campaigns_page(request: Request, session: DB) -> Response:
    rows = campaign_store.list_campaigns(session, limit=200)
    return web(request).pages.render(
        request,
        "campaigns.html",
        campaigns=rows,
        progress=progress.of_campaigns(session, rows),
        refresh=_refresh_seconds(rows, web(request).root.clock()),
    )


def _campaign_form(
    request: Request,
    session: Session,
    context: WebContext,
    *,
    issue_key: str,
    name: str,
    subject: str,
    audience: Audience,
    status_code: int = 200,
    error: str | None = None,
    editing: Campaign | None = None,
) -> Response:
    """The new-campaign form, or a draft's edit form (`editing`), with the audience's count."""
    issues = (
        []  # a draft keeps its issue: no need to read every content file
        if editing is not None
        else [
            i
            for i in library.list_issues(context.root.settings.resolved_issues_dir, session)
            if i.issue
        ]
    )
    try:
        counts = breakdown(session, audience)
        total = sum(row.count for row in counts)  # each person is in one group: no 2nd count
    except RecordError as exc:
        counts, total, error = [], 0, error or str(exc)
    per_country: dict[str, int] = {}
    for row in counts:
        key = country_name(row.country) if row.country else "unknown"
        per_country[key] = per_country.get(key, 0) + row.count
    return context.pages.render(
        request,
        "campaign_new.html",
        status_code,
        issues=issues,
        drafts=[] if editing is not None else list_drafts(session),
        issue_key=issue_key,
        name=name,
        subject=subject,
        audience=audience,
        counts=counts,
        per_country=sorted(per_country.items(), key=lambda kv: (-kv[1], kv[0])),
        total=total,
        lists=mailing_lists.list_lists(session),
        partners=list_partners(session),
        countries=audience_countries(session),
        error=error,
        editing=editing,
        default_subject=(
            app_campaigns.issue_subject(context.renderer(), editing)
            if editing is not None
            else None
        ),
    )


@router.get("/campaigns/new")
def new_campaign(
    request: Request,
    session: DB,
    issue: str = "",
    name: str = "",
    subject: str = "",
) -> Response:
    query = request.query_params
    audience = audience_from(
        session,
        query.getlist("lists"),
        query.getlist("countries"),
        query.getlist("partners"),
        query.getlist("exclude"),
        query.getlist("languages"),
    )
    return _campaign_form(
        request,
        session,
        web(request),
        issue_key=issue,
        name=name,
        subject=subject,
        audience=audience,
    )


@router.post("/campaigns/new")
def count_recipients(
    request: Request,
    session: DB,
    issue: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    lists: Annotated[list[str] | None, Form()] = None,
    countries: Annotated[list[str] | None, Form()] = None,
    partners: Annotated[list[str] | None, Form()] = None,
    exclude: Annotated[list[str] | None, Form()] = None,
    languages: Annotated[str, Form()] = "",
) -> Response:
    """The form again with the recipient count for the audience as ticked (changes nothing)."""
    return _campaign_form(
        request,
        session,
        web(request),
        issue_key=issue,
        name=name,
        subject=subject,
        audience=audience_from(session, lists, countries, partners, exclude, [languages]),
    )


@router.post("/campaigns")
def create_campaign(
    request: Request,
    session: DB,
    issue: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    lists: Annotated[list[str] | None, Form()] = None,
    countries: Annotated[list[str] | None, Form()] = None,
    partners: Annotated[list[str] | None, Form()] = None,
    exclude: Annotated[list[str] | None, Form()] = None,
    languages: Annotated[str, Form()] = "",
) -> Response:
    context = web(request)
    audience = audience_from(session, lists, countries, partners, exclude, [languages])
    if issue.startswith(DRAFT_KEY):
        return _create_from_draft(request, session, context, issue, name, subject, audience)
    found = library.find_issue(context.root.settings.resolved_issues_dir, session, issue)
    error = None
    if found is None or found.issue is None:
        error = "Choose a valid issue."
    elif count_audience(session, audience) == 0:
        error = "Nobody is in this audience; widen it before creating the campaign."
    if error is not None or found is None or found.issue is None:
        return _campaign_form(
            request,
            session,
            context,
            issue_key=issue,
            name=name,
            subject=subject,
            audience=audience,
            error=error,
        )
    try:
        campaign = app_campaigns.create_from_issue(
            session,
            context.profile,
            found.path,
            found.issue,
            audience,
            name=name,
            subject=subject,
        )
        session.commit()
    except MailerError as exc:
        session.rollback()
        return _campaign_form(
            request,
            session,
            context,
            issue_key=issue,
            name=name,
            subject=subject,
            audience=audience,
            error=str(exc),
        )
    flash(request, f"Created campaign “{campaign.name}” as a draft.")
    return back(f"/campaigns/{campaign.id}")


DRAFT_KEY = "draft:"  # the form's value for a draft: "draft:12"


def _create_from_draft(
    request: Request,
    session: Session,
    context: WebContext,
    key: str,
    name: str,
    subject: str,
    audience: Audience,
) -> Response:
    """A campaign from a draft's latest revision, which it keeps (see app.campaigns)."""
    number = key.removeprefix(DRAFT_KEY)
    error = None
    if not number.isdigit() or not 0 < int(number) < 2**31:
        error = "Choose a valid issue."
    elif count_audience(session, audience) == 0:
        error = "Nobody is in this audience; widen it before creating the campaign."
    else:
        try:
            campaign = app_campaigns.create_from_draft(
                session, context.renderer(), int(number), audience, name=name, subject=subject
            )
            session.commit()
        except MailerError as exc:
            session.rollback()
            error = str(exc)
        else:
            flash(request, f"Created campaign “{campaign.name}” as a draft.")
            return back(f"/campaigns/{campaign.id}")
    return _campaign_form(
        request,
        session,
        context,
        issue_key=key,
        name=name,
        subject=subject,
        audience=audience,
        error=error,
    )


@router.get("/campaigns/{campaign_id:int}/edit")
def edit_campaign_page(request: Request, session: DB, campaign_id: int) -> Response:
    campaign = _draft_or_redirect(request, session, campaign_id)
    if not isinstance(campaign, Campaign):
        return campaign
    return _campaign_form(
        request,
        session,
        web(request),
        issue_key=Path(campaign.issue_path).stem,
        name=campaign.name,
        subject=campaign.subject or "",
        audience=Audience.from_json(dict(campaign.audience)),
        editing=campaign,
    )


@router.post("/campaigns/{campaign_id:int}/edit")
def edit_campaign(
    request: Request,
    session: DB,
    campaign_id: int,
    name: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    lists: Annotated[list[str] | None, Form()] = None,
    countries: Annotated[list[str] | None, Form()] = None,
    partners: Annotated[list[str] | None, Form()] = None,
    exclude: Annotated[list[str] | None, Form()] = None,
    languages: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    """Save a draft's name, subject and audience (`action=count`: only count them); the
    form comes back with what was typed and the error when something is wrong."""
    campaign = _draft_or_redirect(request, session, campaign_id)
    if not isinstance(campaign, Campaign):
        return campaign
    context = web(request)
    audience = audience_from(session, lists, countries, partners, exclude, [languages])
    issue_key = Path(campaign.issue_path).stem
    error = None
    try:
        with store_errors():
            if action == "count":
                error = ""  # the form again with the count, nothing saved
            elif count_audience(session, audience) == 0:
                error = "Nobody is in this audience; widen it before saving."
            else:
                campaign_store.edit_draft(
                    session,
                    campaign_id,
                    name=name or campaign.name,
                    subject=subject.strip() or None,
                    audience=audience,
                )
                session.commit()
    except MailerError as exc:
        session.rollback()
        error = str(exc)
    if error is not None:
        return _campaign_form(
            request,
            session,
            context,
            issue_key=issue_key,
            name=name,
            subject=subject,
            audience=audience,
            error=error or None,
            editing=campaign_store.get_campaign(session, campaign_id),
        )
    flash(request, "Saved the draft: its name, subject and audience are as shown below.")
    return back(f"/campaigns/{campaign_id}")


def _draft_or_redirect(request: Request, session: Session, campaign_id: int) -> Campaign | Response:
    campaign = campaign_store.get_campaign(session, campaign_id)
    if campaign.state != CampaignState.DRAFT:
        flash(
            request,
            f"This campaign is {campaign.state}: only a draft can be edited"
            + (" (unschedule it first)." if campaign.state == CampaignState.SCHEDULED else "."),
            "error",
        )
        return back(f"/campaigns/{campaign_id}")
    return campaign


@router.post("/campaigns/{campaign_id:int}/delete")
def delete_campaign(
    request: Request, session: DB, campaign_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    campaign = campaign_store.get_campaign(session, campaign_id)
    if not confirm_page.confirmed(confirm) and campaign.state == CampaignState.DRAFT:
        return confirm_page.ask(
            request,
            title=f"Delete the draft {campaign.name}?",
            consequences=[
                "The draft goes: its name, subject and audience. Nothing was sent, "
                "and the issue file stays."
            ],
            action=f"/campaigns/{campaign_id}/delete",
            button="Delete the draft",
            back=f"/campaigns/{campaign_id}",
            back_label="Keep the draft",
        )
    try:
        name = campaign_store.delete_draft(session, campaign_id)
        session.commit()
    except MailerError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return back(f"/campaigns/{campaign_id}")
    flash(request, f"Deleted the draft campaign “{name}”; nothing was sent.")
    return back("/campaigns")
