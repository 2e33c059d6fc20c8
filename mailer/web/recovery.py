"""Password reset by email: "Forgot password?" on the sign-in page, and the link's pages.

The request page answers the same whatever was typed (an address with an account, one
without, an inactive one), and the mail is sent after the answer has gone out, so
neither the page nor its timing tells who has an account. Requests are counted per
address asked about and per client address (`Accounts.count_reset_request`). The link's
GET only shows a form (mail scanners open links); the POST sets the password, spends
the link and ends every session of the user, including any in this browser.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from mailer.authoring.profile import Profile
from mailer.compose import Root
from mailer.errors import MailerError
from mailer.people import resets, websessions
from mailer.people.accounts import (
    AccountError,
    LoginThrottled,
    find_user,
    get_user_by_id,
    normalise_email,
)
from mailer.web import csrf
from mailer.web.context import db, web
from mailer.web.pages import flash

router = APIRouter(dependencies=[Depends(csrf.verify)])
log = logging.getLogger("mailer.web.auth")

DB = Annotated[Session, Depends(db)]


def _minutes(root: Root) -> int:
    return max(1, root.settings.password_reset_max_age_seconds // 60)


@router.get("/login/forgot")
def forgot_form(request: Request) -> Response:
    return web(request).pages.render(request, "forgot.html", error=None, email="")


@router.post("/login/forgot")
def forgot(
    request: Request,
    session: DB,
    background: BackgroundTasks,
    email: Annotated[str, Form()] = "",
) -> Response:
    context = web(request)
    root = context.root
    ip = request.client.host if request.client else "unknown"
    try:
        address = normalise_email(email)
    except AccountError:
        return context.pages.render(
            request,
            "forgot.html",
            400,
            error="email address: this is not an email address",
            email=email,
        )
    with context.login_lock:
        try:
            context.accounts.count_reset_request(session, address, ip)
        except LoginThrottled as exc:
            session.commit()
            log.warning("password reset refused (throttled) for %r from %s", address, ip)
            response = context.pages.render(
                request, "forgot.html", 429, error=str(exc), email=email
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        session.commit()
    user = find_user(session, address)
    if user is not None and user.active:
        token = resets.issue(session, user.id, root.settings.password_reset_max_age_seconds)
        session.commit()
        log.info("password reset link asked for %s from %s", user.email, ip)
        background.add_task(
            _send,
            root,
            context.profile,
            to=user.email,
            name=user.name,
            site=str(context.pages.env.globals.get("brand") or "the newsletter"),
            url=resets.link(root.settings.public_base_url, token),
        )
    else:
        log.info("password reset asked for %r (no account) from %s", address, ip)
    return context.pages.render(request, "forgot_sent.html", email=address, minutes=_minutes(root))


def _send(root: Root, profile: Profile, *, to: str, name: str, site: str, url: str) -> None:
    """The reset email through the configured SMTP relay; a failure is logged (the page
    has answered already, the same for everyone)."""
    data, smtputf8 = resets.message(
        to=to,
        name=name,
        sender_name=profile.sender.name,
        sender_address=profile.sender.address,
        site=site,
        url=url,
        minutes=_minutes(root),
        domain=root.settings.sender_domain,
    )
    transport = root.transport()
    try:
        transport.send(profile.sender.address, [to], data, smtputf8=smtputf8)
    except MailerError as exc:
        log.error("password reset mail to %s not sent: %s", to, exc)
    finally:
        transport.close()


def _invalid(request: Request) -> Response:
    return web(request).pages.render(request, "reset_invalid.html", 400)


@router.get("/login/reset/{token}")
def reset_form(request: Request, session: DB, token: str) -> Response:
    """Shows the form only; a GET changes nothing (mail scanners open links)."""
    if resets.user_of(session, token) is None:
        return _invalid(request)
    return web(request).pages.render(request, "reset.html", token=token, error=None)


@router.post("/login/reset/{token}")
def reset(
    request: Request,
    session: DB,
    token: str,
    new: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    context = web(request)
    user_id = resets.user_of(session, token)
    user = get_user_by_id(session, user_id) if user_id is not None else None
    if user is None or not user.active:
        return _invalid(request)
    error = None
    if new != confirm:
        error = "the two new passwords differ"
    else:
        try:
            context.accounts.set_password(session, user.email, new)
        except AccountError as exc:
            error = str(exc)
    if error is None and resets.consume(session, token) is None:
        session.rollback()
        return _invalid(request)  # spent meanwhile by another post
    if error is not None:
        session.rollback()
        return context.pages.render(request, "reset.html", 400, token=token, error=error)
    ended = websessions.end_others(session, user.id, None)
    session.commit()
    log.warning("password reset by link for %s; %d sessions ended", user.email, ended)
    request.session.clear()
    flash(request, "Your new password is set and every session has ended; sign in with it.")
    return RedirectResponse("/login", status_code=303)
