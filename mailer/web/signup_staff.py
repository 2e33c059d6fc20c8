"""The staff's views of public sign-ups (admins): `/subscribers/signups` (pending
sign-ups, counts per list and week) and `/lists/<slug>/signup` (the list's page URL,
the snippet for partners, the welcome issue).

Apart from the public pages (mailer.web.signup), which install the sign-up service
both use, because they serve other people behind other guards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from mailer.app.errors import RecordNotFound, store_errors
from mailer.people.signups import SignupService
from mailer.web import csrf, library
from mailer.web.auth import require_admin
from mailer.web.context import db, web
from mailer.web.pages import flash
from subscribers import mailing_lists, signup_counts
from subscribers.countries import REGION, country_names

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])
DB = Annotated[Session, Depends(db)]


def _service(request: Request) -> SignupService:
    service: SignupService = request.app.state.signups  # installed by mailer.web.signup
    return service


@router.get("/subscribers/signups")
def signups_page(request: Request, session: DB) -> Response:
    service = _service(request)
    now = datetime.now(UTC)
    weekly = signup_counts.weekly_counts(session, now=now)
    weeks = (
        [c.week for c in next(iter(weekly.values()))]
        if weekly
        else [
            (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
            - timedelta(weeks=n)
            for n in range(8)
        ]
    )
    return web(request).pages.render(
        request,
        "signups.html",
        rows=signup_counts.pending(session),
        total=signup_counts.count_pending(session),
        now=now,
        names=country_names(),
        weekly=weekly,
        weeks=weeks,
        list_names={lst.slug: lst.name for lst in mailing_lists.list_lists(session, archived=True)},
        days=service.settings.signup_expiry_days,
    )


@router.get("/lists/{slug}/signup")
def list_signup_page(request: Request, session: DB, slug: str) -> Response:
    service = _service(request)
    try:
        with store_errors():
            mailing_list = mailing_lists.get_list(session, slug)
    except RecordNotFound:
        return web(request).pages.render(
            request, "error.html", 404, status=404, message=f"No list {slug!r}."
        )
    settings = service.settings
    base = settings.public_base_url
    snippet = (
        web(request)
        .pages.env.get_template("public/embed_snippet.html")
        .render(
            action=f"{base}/subscribe",
            stamp=service.embed_stamp(mailing_list.slug),
            consent_text=service.consent_text,
            list=mailing_list,
            countries=[(code, country_names()[code]) for code in REGION],
            newsletter=web(request).profile.masthead.name,
        )
    )
    issues = [i for i in library.list_issues(settings.resolved_issues_dir, session) if i.issue]
    return web(request).pages.render(
        request,
        "list_signup.html",
        issues=issues,
        list=mailing_list,
        page_url=f"{base}/subscribe/{mailing_list.slug}",
        all_url=f"{base}/subscribe",
        snippet=snippet,
        counts=signup_counts.weekly_counts(session).get(mailing_list.slug, []),
    )


@router.post("/lists/{slug}/signup")
def set_welcome(
    request: Request, session: DB, slug: str, welcome_issue: Annotated[str, Form()] = ""
) -> Response:
    """Choose the issue mailed to those who join the list by signing up (or none)."""
    mailing_list = mailing_lists.get_list(session, slug)
    issues_dir = web(request).root.settings.resolved_issues_dir
    if welcome_issue:
        found = library.find_issue(issues_dir, session, welcome_issue)
        if found is None or found.issue is None:
            flash(request, f"welcome_issue: no valid issue {welcome_issue[:100]!r}", "error")
            return RedirectResponse(f"/lists/{slug}/signup", status_code=303)
    mailing_list.welcome_issue = welcome_issue or None
    session.commit()
    flash(
        request,
        f"Those who join {mailing_list.name} by signing up now receive {welcome_issue}."
        if welcome_issue
        else f"No welcome email for {mailing_list.name}.",
    )
    return RedirectResponse(f"/lists/{slug}/signup", status_code=303)
