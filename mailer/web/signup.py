"""Public sign-up pages (the staff's views of sign-ups are mailer.web.signup_staff).

Public (no login): `GET /subscribe` (every public list) and `GET /subscribe/<list>`,
`POST /subscribe` (our pages and partners' embedded snippets; no CSRF token, see
`mailer.people.signups`), and the confirmation link `GET /subscribe/confirm/<token>`,
which only shows a Confirm button: mail scanners open links, and only the button's
POST (with this browser session's CSRF token) confirms.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.people import signups as service_module
from mailer.people.signup_tokens import (
    EMBED,
    InvalidLink,
    InvalidStamp,
    Stamp,
    check_link,
    consent_digest,
    link_id,
    read_stamp,
)
from mailer.people.signups import ALL, SignupService, Throttled, Welcome, check
from mailer.web import csrf, library
from mailer.web.context import db, web
from mailer.web.pages import mask
from subscribers import mailing_lists, signups
from subscribers.countries import REGION, country_names

log = logging.getLogger("mailer.web.signup")

public = APIRouter()
DB = Annotated[Session, Depends(db)]
HONEYPOT = "website"
STARTED = (CampaignState.SENDING, CampaignState.PAUSED, CampaignState.SENT)


def install(app: FastAPI) -> None:
    """Add the public sign-up routes and the service behind them (which the staff's
    views, mailer.web.signup_staff, use too) to the app."""
    context = app.state.web
    app.state.signups = SignupService(context.root, context.renderer)
    app.include_router(public)


def _service(request: Request) -> SignupService:
    service: SignupService = request.app.state.signups
    return service


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def country_choices() -> list[tuple[str, str]]:
    """The region's six countries first, then every other by name."""
    names = country_names()
    rest = sorted((c for c in names if c not in REGION), key=lambda c: names[c])
    return [(c, names[c]) for c in (*REGION, *rest)]


# --- the form ---------------------------------------------------------------------------------


def _form_page(
    request: Request,
    session: Session,
    form_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
    stamp: str | None = None,
    consent_text: str | None = None,
    status: int = 200,
) -> Response:
    """The sign-up form for one list (`form_id` its slug) or for all (`all`)."""
    service = _service(request)
    offered = list(signups.offered_lists(session))
    heading, intro = "Subscribe", ""
    if form_id != ALL:
        chosen = [lst for lst in offered if lst.slug == form_id]
        if not chosen:
            return web(request).pages.render(
                request, "public/invalid.html", 404, title="This list is not open for sign-up"
            )
        heading = f"Subscribe to {chosen[0].name}"
        intro = chosen[0].description
    values = values or {
        "email": "",
        "name": "",
        "country": "",
        "lists": [form_id],
        "consent": False,
    }
    return web(request).pages.render(
        request,
        "public/subscribe.html",
        status,
        title=heading,
        heading=heading,
        intro=intro,
        lists=offered,
        form=values,
        errors=errors or {},
        message=message,
        message_kind="error" if errors or message else "ok",
        countries=country_choices(),
        stamp=stamp or service.page_stamp(form_id),
        consent_text=consent_text or service.consent_text,
    )


@public.get("/subscribe")
def subscribe_all(request: Request, session: DB) -> Response:
    """Every public list; without any, how to subscribe by writing to us."""
    return _form_page(request, session, ALL)


@public.get("/subscribe/{slug}")
def subscribe_list(request: Request, session: DB, slug: str) -> Response:
    return _form_page(request, session, slug)


def _request(form: FormData) -> service_module.Request:
    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    return service_module.Request(
        email=text("email"),
        name=text("name"),
        country=text("country"),
        lists=[v for v in form.getlist("lists") if isinstance(v, str)],
        consent=text("consent") == "yes",
        consent_text=text("consent_text"),
        stamp=text("stamp"),
        honeypot=text(HONEYPOT),
    )


@public.post("/subscribe")
async def subscribe(request: Request, background: BackgroundTasks) -> Response:
    """A sign-up from our pages or an embedded snippet: the same page whatever the
    address is, with the confirmation mailed after the answer (so neither the page nor
    its timing tells whether one was sent)."""
    service = _service(request)
    sent = _request(await request.form())
    try:
        stamp = read_stamp(service.secret, sent.stamp)
        if consent_digest(sent.consent_text) != stamp.consent:
            raise InvalidStamp("the consent text was altered")
    except InvalidStamp:
        return await _again(
            request,
            sent,
            None,
            "This form did not come from us or was changed. Please check and send this one.",
        )
    ip, now = _ip(request), datetime.now(UTC)
    outcome = await run_in_threadpool(_handle, service, sent, stamp, ip, now)
    if isinstance(outcome, Throttled):
        return web(request).pages.render(
            request,
            "public/subscribe_wait.html",
            429,
            title="Try again later",
            minutes=outcome.minutes,
        )
    if outcome == "again":
        return await _again(
            request, sent, stamp, "Please check your details and press Subscribe again."
        )
    if isinstance(outcome, dict):
        return await _again(request, sent, stamp, "", outcome)
    if isinstance(outcome, int):
        background.add_task(service.send, outcome)
    return web(request).pages.render(
        request,
        "public/subscribe_sent.html",
        title="Check your inbox",
        days=service.settings.signup_expiry_days,
    )


def _handle(
    service: SignupService, sent: service_module.Request, stamp: Stamp, ip: str, now: datetime
) -> Throttled | str | dict[str, str] | int | None:
    """Throttle, trap, check and decide, in one transaction: the request to mail, None
    when nothing is mailed, "again" for a form sent too fast, or the field errors."""
    with service.lock, service.sessions.begin() as session:
        try:
            service.throttle_client(session, ip, now)
            if sent.honeypot.strip():
                log.info("sign-up from %s dropped: the honeypot field was filled", ip)
                return None
            if service.too_fast(stamp, now.timestamp()):
                return "again"
            checked = check(session, sent)
            if isinstance(checked, dict):
                return checked
            outcome = service.request(session, checked, stamp, sent.consent_text, ip, now)
        except Throttled as exc:
            log.warning("sign-up throttled from %s", ip)
            return exc
    if outcome.mailed_signup is None:
        log.info("sign-up from %s: nothing mailed (%s)", ip, outcome.why_not)
    return outcome.mailed_signup


async def _again(
    request: Request,
    sent: service_module.Request,
    stamp: Stamp | None,
    message: str,
    errors: dict[str, str] | None = None,
) -> Response:
    """The form again with what was typed: an embedded form comes back as our page for
    the same list, keeping its stamp (and the source it records)."""
    service = _service(request)
    form_id = stamp.form if stamp else ALL
    keep = sent.stamp if stamp is not None and stamp.kind == EMBED else None
    values = {
        "email": sent.email,
        "name": sent.name,
        "country": sent.country,
        "lists": sent.lists,
        "consent": sent.consent,
    }

    def page() -> Response:
        with service.sessions() as session:
            return _form_page(
                request,
                session,
                form_id,
                values=values,
                errors=errors,
                message=message or "Please correct what is marked below.",
                stamp=keep,
                consent_text=sent.consent_text if keep else None,
                status=400,
            )

    return await run_in_threadpool(page)


# --- the confirmation link ------------------------------------------------------------------


def _confirm_page(request: Request, state: str, status: int = 200, **values: Any) -> Response:
    service = _service(request)
    return web(request).pages.render(
        request,
        "public/subscribe_confirm.html",
        status,
        title="Confirm your subscription",
        state=state,
        days=service.settings.signup_expiry_days,
        **values,
    )


def _invalid(request: Request) -> Response:
    return web(request).pages.render(
        request, "public/invalid.html", 400, title="This link is not valid"
    )


def _find(session: Session, service: SignupService, token: str) -> signups.Signup:
    signup = signups.get_signup(session, link_id(token))
    check_link(service.secret, token, signup)
    assert signup is not None
    return signup


@public.get("/subscribe/confirm/{token}")
def confirm_page(request: Request, session: DB, token: str) -> Response:
    """Shows what would be confirmed, with a button; never changes anything."""
    service = _service(request)
    try:
        signup = _find(session, service, token)
    except InvalidLink:
        return _invalid(request)
    if signup.status == signups.SignupStatus.CONFIRMED.value:
        return _confirm_page(request, "confirmed")
    if signup.expired(datetime.now(UTC)):
        return _confirm_page(request, "expired", 400)
    return _confirm_page(
        request,
        "ask",
        token=token,
        address=mask(signup.email or ""),
        list_names=[item.list.name for item in signup.lists],
        consent_text=signup.consent_text or "",
    )


@public.post("/subscribe/confirm/{token}", dependencies=[Depends(csrf.verify)])
def confirm(request: Request, token: str, background: BackgroundTasks) -> Response:
    service = _service(request)
    now = datetime.now(UTC)
    with service.lock, service.sessions.begin() as session:
        try:
            signup = _find(session, service, token)
        except InvalidLink:
            return _invalid(request)
        if signup.status == signups.SignupStatus.CONFIRMED.value:
            return RedirectResponse(f"/subscribe/confirm/{token}", status_code=303)
        if signup.expired(now):
            return _confirm_page(request, "expired", 400)
        signup_id = signup.id
        done = signups.confirm(session, signup, ip=_ip(request), now=now)
        welcome = _welcome_issues(request, session, done.lists)
    if done.subscriber_id is None:
        log.info("sign-up %s refused at confirmation: the address may not be mailed", signup_id)
        return _confirm_page(request, "refused")
    log.info(
        "sign-up %s confirmed: subscriber %s on %s",
        signup_id,
        done.subscriber_id,
        ", ".join(done.lists),
    )
    if welcome:
        background.add_task(service.welcome, done.subscriber_id, welcome)
    return RedirectResponse(f"/subscribe/confirm/{token}", status_code=303)


def _welcome_issues(request: Request, session: Session, slugs: tuple[str, ...]) -> list[Welcome]:
    """The welcome issues of the lists just joined (each once), with the newest campaign
    that sent each, so the email's "view in browser" link leads to its web copy."""
    issues_dir = web(request).root.settings.resolved_issues_dir
    found: list[Welcome] = []
    for slug in slugs:
        key = mailing_lists.get_list(session, slug).welcome_issue
        path = library.find_path(issues_dir, session, key) if key else None
        if path is None or any(w.path == path for w in found):
            continue
        sent = session.scalar(
            select(Campaign.id)
            .where(Campaign.issue_path == str(path), Campaign.state.in_(STARTED))
            .order_by(Campaign.id.desc())
            .limit(1)
        )
        found.append(Welcome(path, sent or 0))
    return found
