"""Editor pages: issues (list, upload, preview, test send) and campaigns (create with an
audience, send, schedule, pause, resume, cancel, progress).

Editors and admins may use every page here; posts need the session's CSRF token.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import formataddr
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer import urls
from mailer.authoring.checks import check_issue
from mailer.authoring.content import load_issue, load_issue_text
from mailer.authoring.loader import MAX_FILE_BYTES, TOO_LARGE, ContentError, Problem, decode_text
from mailer.authoring.render import Slot, fill
from mailer.delivery import campaigns as campaign_store
from mailer.delivery import ledger, progress
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.failurescsv import write_failures
from mailer.delivery.testsend import send_test
from mailer.errors import MailerError
from mailer.people.accounts import User
from mailer.schedule import scheduler
from mailer.schedule.waves import parse_wall_time
from mailer.web import archive, charts, csrf, library
from mailer.web import confirm as confirm_page
from mailer.web.auth import current_user
from mailer.web.context import WebContext, db, web
from mailer.web.operator import country_choices
from mailer.web.pages import flash
from mailer.web.public import EMAIL_CSP
from subscribers import repository
from subscribers.audience import (
    Audience,
    count_audience,
    count_by_country_and_partner,
    countries_present,
    list_visibility,
)
from subscribers.countries import REGION, country_name
from subscribers.errors import StoreError
from subscribers.models import Partner

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])

Editor = Annotated[User, Depends(current_user)]
DB = Annotated[Session, Depends(db)]
MAX_UPLOAD_BYTES = MAX_FILE_BYTES  # the CLI reads no larger file either
SOON = timedelta(minutes=2)
# Time zones offered for "at an instant": the partners' and common ones; the default
# (settings.timezone) is added if missing.
ZONES = (
    "Asia/Shanghai",
    "Asia/Bangkok",
    "Asia/Ho_Chi_Minh",
    "Asia/Phnom_Penh",
    "Asia/Vientiane",
    "Asia/Yangon",
    "Europe/Berlin",
    "UTC",
)


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _refresh_seconds(campaigns: Sequence[Campaign]) -> int | None:
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
            if due is not None and due - datetime.now(UTC) < SOON:
                return 3
            seconds = 30
    return seconds


# --- issues -----------------------------------------------------------------------------


@router.get("/issues")
def issues_page(request: Request, session: DB) -> Response:
    context = web(request)
    return context.pages.render(
        request,
        "issues.html",
        issues=library.list_issues(context.root.settings.resolved_issues_dir, session),
        problems=None,
        filename=None,
    )


@router.post("/issues/upload", max_body_size=MAX_UPLOAD_BYTES + 64 * 1024)
def upload_issue(request: Request, session: DB, file: UploadFile) -> Response:
    """A sync handler (run in the thread pool): validation and the database would block
    the event loop otherwise; the upload is already spooled by the form parser."""
    context = web(request)
    name = (file.filename or "upload.yaml").replace("\\", "/").rsplit("/", 1)[-1]
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    problems: list[Problem] = []
    try:
        if len(data) > MAX_UPLOAD_BYTES:
            raise ContentError([Problem(name, None, "", TOO_LARGE)])
        text = decode_text(data, name)
        issue = load_issue_text(text, name)
    except ContentError as exc:
        problems = exc.problems
    if problems:
        return context.pages.render(  # 200: the page itself is fine (browsers log 4xx as errors)
            request,
            "issues.html",
            issues=library.list_issues(context.root.settings.resolved_issues_dir, session),
            problems=problems,
            filename=name,
        )
    issues_dir = context.root.settings.resolved_issues_dir
    replaced = (issues_dir / f"{issue.slug}.yaml").exists()
    path = library.store_upload(issues_dir, issue, text)
    note = " It replaces the earlier file (campaigns already frozen keep what they froze)."
    flash(
        request,
        f"Uploaded {name}: issue {issue.number}, {issue.year} is valid."
        + (note if replaced else ""),
    )
    return _back(f"/issues/{path.stem}")


def _sample_values(base: str, user: User) -> dict[Slot, str]:
    """What an editor sees in the slots: their own name and address, harmless links."""
    return {
        Slot.UNSUBSCRIBE_URL: f"{base}/unsubscribe",
        Slot.PREFERENCES_URL: f"{base}/unsubscribe",
        Slot.VIEW_URL: urls.archive(base),
        Slot.NAME: user.name or user.email,
        Slot.EMAIL: user.email,
    }


def _issue_or_404(context: WebContext, session: Session, key: str) -> library.IssueFile:
    found = library.find_issue(context.root.settings.resolved_issues_dir, session, key)
    if found is None:
        raise HTTPException(
            404, f"No issue {key!r} in {context.root.settings.resolved_issues_dir}."
        )
    return found


@router.get("/issues/{key}")
def issue_page(request: Request, session: DB, user: Editor, key: str) -> Response:
    context = web(request)
    found = _issue_or_404(context, session, key)
    rendered, render_error = None, None
    if found.issue is not None:
        try:
            rendered = context.renderer().render(found.issue)
        except MailerError as exc:
            render_error = str(exc)
    values = _sample_values(context.root.settings.public_base_url, user)
    return context.pages.render(
        request,
        "issue.html",
        found=found,
        issue=found.issue,
        problems=found.error.problems if found.error else [],
        render_error=render_error,
        rendered=rendered,
        text=fill(rendered.text, values, html=False) if rendered else "",
        html_kb=len(rendered.html.encode()) / 1024 if rendered else 0,
        findings=check_issue(found.issue, context.renderer()) if found.issue else [],
        stamp=library.stamp(found.path, context.root.settings.templates_dir),
    )


@router.get("/issues/{key}/stamp")
def issue_stamp(request: Request, session: DB, key: str) -> Response:
    """Changes whenever the content file or a template changes; the preview page polls it
    every 2 s, so it looks at file stamps only and parses nothing."""
    context = web(request)
    path = library.find_path(context.root.settings.resolved_issues_dir, session, key)
    if path is None:
        raise HTTPException(404, f"No issue {key!r}.")
    stamp = library.stamp(path, context.root.settings.templates_dir)
    return JSONResponse({"stamp": stamp}, headers={"Cache-Control": "no-store"})


@router.get("/issues/{key}/preview.html")
def issue_preview_html(request: Request, session: DB, user: Editor, key: str) -> Response:
    """The rendered email alone, for the preview iframes (sandboxed, no scripts)."""
    context = web(request)
    found = _issue_or_404(context, session, key)
    if found.issue is None:
        raise HTTPException(422, "This content file has errors; fix them to see a preview.")
    rendered = context.renderer().render(found.issue)
    values = _sample_values(context.root.settings.public_base_url, user)
    return HTMLResponse(
        fill(rendered.html, values, html=True), headers={"Content-Security-Policy": EMAIL_CSP}
    )


@router.post("/issues/{key}/test")
def test_send(request: Request, session: DB, user: Editor, key: str) -> Response:
    """A copy to the signed-in editor's own address, subject marked [TEST]."""
    context = web(request)
    found = _issue_or_404(context, session, key)
    if found.issue is None:
        flash(request, "Fix the content errors before sending a test.", "error")
        return _back(f"/issues/{key}")
    try:
        [(_address, reply)] = send_test(
            context.root, context.renderer(), found.issue, [(user.email, user.name)]
        )
    except MailerError as exc:
        flash(request, f"The test was not sent: {exc}", "error")
    else:
        flash(request, f"Test sent to {user.email} (server: {reply}).")
    return _back(f"/issues/{key}")


# --- campaigns ----------------------------------------------------------------------------


@router.get("/campaigns")
def campaigns_page(request: Request, session: DB) -> Response:
    rows = campaign_store.list_campaigns(session, limit=200)
    return web(request).pages.render(
        request,
        "campaigns.html",
        campaigns=rows,
        progress=progress.of_campaigns(session, rows),
        refresh=_refresh_seconds(rows),
    )


def _audience(
    lists: list[str] | None,
    countries: list[str] | None,
    partners: list[str] | None,
    exclude: list[str] | None,
) -> Audience:
    return Audience(
        lists=tuple(lists or ()),
        countries=tuple(countries or ()),
        partners=tuple(partners or ()),
        exclude_lists=tuple(exclude or ()),
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
        counts = count_by_country_and_partner(session, audience)
        total = sum(row.count for row in counts)  # each person is in one group: no 2nd count
    except StoreError as exc:
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
        issue_key=issue_key,
        name=name,
        subject=subject,
        audience=audience,
        counts=counts,
        per_country=sorted(per_country.items(), key=lambda kv: (-kv[1], kv[0])),
        total=total,
        lists=repository.list_lists(session),
        partners=repository.list_partners(session),
        countries=_audience_countries(session),
        error=error,
        editing=editing,
        default_subject=_issue_subject(context, editing) if editing is not None else None,
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
    audience = _audience(
        query.getlist("lists"),
        query.getlist("countries"),
        query.getlist("partners"),
        query.getlist("exclude"),
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
) -> Response:
    """The form again with the recipient count for the audience as ticked (changes nothing)."""
    return _campaign_form(
        request,
        session,
        web(request),
        issue_key=issue,
        name=name,
        subject=subject,
        audience=_audience(lists, countries, partners, exclude),
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
) -> Response:
    context = web(request)
    audience = _audience(lists, countries, partners, exclude)
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
    sender = context.profile.sender
    try:
        campaign = campaign_store.create_campaign(
            session,
            name=name.strip() or f"Issue {found.issue.number}, {found.issue.year}",
            issue_path=found.path,
            issue=found.issue,
            sender=formataddr((sender.name, sender.address)),
            reply_to=sender.reply_to,
            audience=audience,
            subject=subject.strip() or None,
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
    return _back(f"/campaigns/{campaign.id}")


@router.get("/campaigns/{campaign_id:int}")
def campaign_page(request: Request, session: DB, campaign_id: int) -> Response:
    context = web(request)
    campaign = campaign_store.get_campaign(session, campaign_id)
    report = ledger.report(session, campaign_id)
    waves = progress.waves_of(session, campaign_id)
    partner_names = {pid: pname for pid, pname in session.execute(select(Partner.id, Partner.name))}
    by_country = sorted(
        (charts.Bar(country_name(t.key), t) for t in report.by_country if t.key),
        key=lambda b: b.label,
    ) + [charts.Bar("unknown", t) for t in report.by_country if not t.key]
    by_partner = sorted(
        (charts.Bar(partner_names.get(int(t.key), t.key), t) for t in report.by_partner if t.key),
        key=lambda b: b.label,
    ) + [charts.Bar("no partner", t) for t in report.by_partner if not t.key]
    failed = list(
        session.scalars(
            select(ledger.LedgerRow)
            .where(
                ledger.LedgerRow.campaign_id == campaign_id,
                ledger.LedgerRow.status.in_(["failed", "retry"]),
            )
            .order_by(ledger.LedgerRow.status, ledger.LedgerRow.id)
            .limit(200)
        )
    )
    audience = Audience.from_json(dict(campaign.audience))
    not_started = campaign.state in (CampaignState.DRAFT, CampaignState.MISSED) or (
        campaign.state == CampaignState.SCHEDULED and not report.total.total
    )
    return context.pages.render(
        request,
        "campaign.html",
        c=campaign,
        audience=audience,
        public=archive.is_public(campaign, list_visibility(session)),
        subject=_subject(context, campaign),
        recipients=_count_or_none(session, audience) if not_started else None,
        report=report,
        progress=progress.planned(
            campaign.state, report.total, ((w.status, w.recipients) for w in waves)
        ),
        stamp=progress.stamp(campaign, report.total, waves),
        country_chart=charts.responsive_bars(by_country),
        partner_chart=charts.responsive_bars(by_partner),
        by_country=by_country,
        by_partner=by_partner,
        failed=failed,
        timezone=context.root.settings.timezone,
        zones=ZONES,
        waves=scheduler.waves_report(session, campaign_id, report=report, waves=waves),
    )


def _subject(context: WebContext, campaign: Campaign) -> str:
    """The subject that goes (or went) out: frozen, chosen, or the issue's own."""
    if campaign.frozen_subject or campaign.subject:
        return campaign.frozen_subject or campaign.subject or ""
    return _issue_subject(context, campaign)


def _issue_subject(context: WebContext, campaign: Campaign) -> str:
    """The subject the campaign's issue gives itself (read from its file)."""
    try:
        return context.renderer().subject(load_issue(Path(campaign.issue_path)))
    except ContentError as exc:
        return f"the issue's own (its file has errors: {exc.problems[0] if exc.problems else exc})"
    except OSError:
        return "the issue's own (its file is missing)"


def _count_or_none(session: Session, audience: Audience) -> int | None:
    try:
        return count_audience(session, audience)
    except StoreError:
        return None


@router.get("/campaigns/{campaign_id:int}/status.json")
def campaign_status(session: DB, campaign_id: int) -> Response:
    """What the campaign page polls (static/campaign.js): a stamp that changes whenever the
    page would, read from the campaign, its waves and an index range of its unsent rows."""
    campaign = campaign_store.get_campaign(session, campaign_id)
    waves = progress.waves_of(session, campaign_id)
    return JSONResponse(
        {
            "state": campaign.state,
            "stamp": progress.stamp(campaign, ledger.open_counts(session, campaign_id), waves),
            "final": campaign.state in progress.FINAL,
        },
        headers={"Cache-Control": "no-store"},
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
    action: Annotated[str, Form()] = "save",
) -> Response:
    """Save a draft's name, subject and audience (`action=count`: only count them); the
    form comes back with what was typed and the error when something is wrong."""
    campaign = _draft_or_redirect(request, session, campaign_id)
    if not isinstance(campaign, Campaign):
        return campaign
    context = web(request)
    audience = _audience(lists, countries, partners, exclude)
    issue_key = Path(campaign.issue_path).stem
    error = None
    try:
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
    except (MailerError, StoreError) as exc:
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
    return _back(f"/campaigns/{campaign_id}")


def _draft_or_redirect(request: Request, session: Session, campaign_id: int) -> Campaign | Response:
    campaign = campaign_store.get_campaign(session, campaign_id)
    if campaign.state != CampaignState.DRAFT:
        flash(
            request,
            f"This campaign is {campaign.state}: only a draft can be edited"
            + (" (unschedule it first)." if campaign.state == CampaignState.SCHEDULED else "."),
            "error",
        )
        return _back(f"/campaigns/{campaign_id}")
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
        return _back(f"/campaigns/{campaign_id}")
    flash(request, f"Deleted the draft campaign “{name}”; nothing was sent.")
    return _back("/campaigns")


def _control(request: Request, session: Session, campaign_id: int, action: str) -> Response:
    try:
        if action == "pause":
            campaign = campaign_store.pause(session, campaign_id, "paused from the web app")
            done = (
                "Paused: nothing more goes out until you resume it."
                if campaign.started_at is not None
                else "Paused: a wave that comes due meanwhile queues its recipients, and "
                "nothing goes out until you resume it."
            )
        elif action == "resume":
            campaign = campaign_store.resume(session, campaign_id)
            done = (
                "Resumed: back to scheduled; its waves start at their times."
                if campaign.state == CampaignState.SCHEDULED
                else "Resumed: sending goes on."
            )
        else:
            campaign_store.cancel(session, campaign_id, "cancelled from the web app")
            done = "Cancelled: nothing more of it will be sent; what was sent stays recorded."
        session.commit()
        flash(request, done)
    except MailerError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return _back(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id:int}/pause")
def pause_campaign(request: Request, session: DB, campaign_id: int) -> Response:
    return _control(request, session, campaign_id, "pause")


@router.post("/campaigns/{campaign_id:int}/resume")
def resume_campaign(request: Request, session: DB, campaign_id: int) -> Response:
    return _control(request, session, campaign_id, "resume")


@router.post("/campaigns/{campaign_id:int}/cancel")
def cancel_campaign(
    request: Request, session: DB, campaign_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    if not confirm_page.confirmed(confirm):  # ask first, saying what will be lost
        question = confirm_page.ask_to_cancel(request, session, campaign_id)
        if question is not None:
            return question
    return _control(request, session, campaign_id, "cancel")


@router.post("/campaigns/{campaign_id:int}/send")
def send_now(request: Request, session: DB, campaign_id: int) -> Response:
    """Freeze the content and queue every recipient now; the worker sends them."""
    context = web(request)
    try:
        added = campaign_store.start_sending(session, campaign_id, renderer=context.renderer())
        session.commit()
        flash(request, f"Sending started: {added} recipients queued.")
    except MailerError as exc:
        session.rollback()
        flash(request, f"Not started: {exc}", "error")
    return _back(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id:int}/schedule")
def schedule_campaign(
    request: Request,
    session: DB,
    campaign_id: int,
    at: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "instant",
    tz: Annotated[str, Form()] = "",
) -> Response:
    """At an instant in one zone, or at the same wall time in each recipient's zone."""
    context = web(request)
    try:
        wall = parse_wall_time(at)
        local = mode == "local"
        campaign = campaign_store.get_campaign(session, campaign_id)
        plan = (
            scheduler.reschedule
            if campaign.state == CampaignState.SCHEDULED
            else scheduler.schedule
        )
        waves = plan(
            session,
            campaign_id,
            wall,
            tz=None if local else (tz or context.root.settings.timezone),
            local_time=local,
            renderer=context.renderer(),
        )
        session.commit()
    except MailerError as exc:
        session.rollback()
        flash(request, f"Not scheduled: {exc}", "error")
        return _back(f"/campaigns/{campaign_id}")
    first = min(w.starts_at for w in waves)
    flash(
        request,
        f"Scheduled in {len(waves)} wave{'s' if len(waves) != 1 else ''}; "
        f"the first starts {first:%Y-%m-%d %H:%M} UTC.",
    )
    return _back(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id:int}/unschedule")
def unschedule_campaign(request: Request, session: DB, campaign_id: int) -> Response:
    try:
        scheduler.unschedule(session, campaign_id)
        session.commit()
        flash(request, "Back to draft; nothing will be sent until you schedule or send it.")
    except MailerError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return _back(f"/campaigns/{campaign_id}")


def _audience_countries(session: Session) -> list[tuple[str, str]]:
    """The region's six countries, then any other country subscribers are in."""
    present = countries_present(session)
    return [(code, name) for code, name in country_choices() if code in REGION or code in present]


@router.get("/campaigns/{campaign_id:int}/failures.csv")
def failures_csv(session: DB, campaign_id: int) -> Response:
    """Every failed recipient with the server's last reply, for follow-up by hand."""
    campaign_store.get_campaign(session, campaign_id)
    buffer = io.StringIO()
    write_failures(buffer, ledger.failures(session, campaign_id))
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-failures.csv"'
        },
    )
