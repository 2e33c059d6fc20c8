"""Editor pages: one campaign's page (report, charts, waves, failures), the status it
polls, and its controls (send now, schedule, unschedule, pause, resume, cancel), and
its failures as CSV.

Posts need the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from mailer.app import campaigns as app_campaigns
from mailer.app.audiences import count_or_none
from mailer.delivery import campaigns as campaign_store
from mailer.delivery import ledger, lifecycle, progress
from mailer.delivery.campaigns import CampaignState
from mailer.errors import MailerError
from mailer.people.accounts import User
from mailer.schedule import plan as planning
from mailer.schedule.waves import parse_wall_time
from mailer.web import archive, charts, csrf
from mailer.web import confirm as confirm_page
from mailer.web.auth import current_user
from mailer.web.context import web
from mailer.web.forms import DB, back
from mailer.web.pages import flash
from subscribers.audience import Audience, list_visibility
from subscribers.countries import country_name

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])

Editor = Annotated[User, Depends(current_user)]

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


@router.get("/campaigns/{campaign_id:int}")
def campaign_page(request: Request, session: DB, campaign_id: int) -> Response:
    context = web(request)
    result = app_campaigns.report(session, campaign_id)
    campaign, report = result.campaign, result.ledger
    waves = progress.waves_of(session, campaign_id)
    by_country = sorted(
        (charts.Bar(country_name(t.key), t) for t in report.by_country if t.key),
        key=lambda b: b.label,
    ) + [charts.Bar("unknown", t) for t in report.by_country if not t.key]
    by_partner = sorted(
        (charts.Bar(result.partner(t.key), t) for t in report.by_partner if t.key),
        key=lambda b: b.label,
    ) + [charts.Bar("no partner", t) for t in report.by_partner if not t.key]
    failed = app_campaigns.recent_failures(session, campaign_id)
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
        subject=app_campaigns.subject_of(context.renderer(), campaign),
        recipients=count_or_none(session, audience) if not_started else None,
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
        waves=planning.waves_report(session, campaign_id, report=report, waves=waves),
        variants=[v.language for v in campaign_store.frozen_contents(session, campaign)],
    )


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


def _control(request: Request, session: Session, campaign_id: int, action: str) -> Response:
    try:
        if action == "pause":
            campaign = lifecycle.pause(session, campaign_id, "paused from the web app")
            done = (
                "Paused: nothing more goes out until you resume it."
                if campaign.started_at is not None
                else "Paused: a wave that comes due meanwhile queues its recipients, and "
                "nothing goes out until you resume it."
            )
        elif action == "resume":
            campaign = lifecycle.resume(session, campaign_id)
            done = (
                "Resumed: back to scheduled; its waves start at their times."
                if campaign.state == CampaignState.SCHEDULED
                else "Resumed: sending goes on."
            )
        else:
            lifecycle.cancel(session, campaign_id, "cancelled from the web app")
            done = "Cancelled: nothing more of it will be sent; what was sent stays recorded."
        session.commit()
        flash(request, done)
    except MailerError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return back(f"/campaigns/{campaign_id}")


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
        added = lifecycle.start_sending(session, campaign_id, renderer=context.renderer())
        session.commit()
        flash(request, f"Sending started: {added} recipients queued.")
    except MailerError as exc:
        session.rollback()
        flash(request, f"Not started: {exc}", "error")
    return back(f"/campaigns/{campaign_id}")


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
            planning.reschedule if campaign.state == CampaignState.SCHEDULED else planning.schedule
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
        return back(f"/campaigns/{campaign_id}")
    first = min(w.starts_at for w in waves)
    flash(
        request,
        f"Scheduled in {len(waves)} wave{'s' if len(waves) != 1 else ''}; "
        f"the first starts {first:%Y-%m-%d %H:%M} UTC.",
    )
    return back(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id:int}/unschedule")
def unschedule_campaign(request: Request, session: DB, campaign_id: int) -> Response:
    try:
        planning.unschedule(session, campaign_id)
        session.commit()
        flash(request, "Back to draft; nothing will be sent until you schedule or send it.")
    except MailerError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return back(f"/campaigns/{campaign_id}")


@router.get("/campaigns/{campaign_id:int}/failures.csv")
def failures_csv(session: DB, campaign_id: int) -> Response:
    """Every failed recipient with the server's last reply, for follow-up by hand."""
    return Response(
        app_campaigns.failures_csv(session, campaign_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="{app_campaigns.failures_filename(campaign_id)}"'
            )
        },
    )
