"""Two-factor sign-in pages: enrolment and recovery codes under Account, and an admin's
reset of another user's second factor.

Enrolment is two steps: the page shows a new secret as a QR code (inline SVG made on
the server: the Content-Security-Policy allows no script and nothing from elsewhere)
and as text; the factor is on only once a code from the app is typed back. The ten
recovery codes are then shown on that one response and never again (only their hashes
are kept). The sign-in step itself is in `mailer.web.auth`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer.people import twofactor, websessions
from mailer.people.accounts import LoginThrottled, User, get_user_by_id
from mailer.web import csrf
from mailer.web.auth import ENROL_PATH, current_user, require_admin, two_factor
from mailer.web.confirm import ask, confirmed
from mailer.web.context import db, web
from mailer.web.pages import flash

router = APIRouter(dependencies=[Depends(csrf.verify)])
log = logging.getLogger("mailer.web.auth")

DB = Annotated[Session, Depends(db)]
Me = Annotated[User, Depends(current_user)]


def _required(request: Request, user: User) -> bool:
    return user.is_admin and web(request).root.settings.require_2fa_for_admins


def _enrol_page(
    request: Request, session: Session, user: User, error: str | None = None
) -> Response:
    enrolment = two_factor(request).begin(session, user.id, user.email)
    session.commit()
    return web(request).pages.render(
        request,
        "twofactor_enrol.html",
        400 if error else 200,
        error=error,
        required=_required(request, user),
        secret=enrolment.grouped_secret,
        qr=Markup(enrolment.qr_svg()),  # noqa: S704 - segno's own SVG, no user text in it
    )


def _codes_page(request: Request, codes: list[str], first: bool) -> Response:
    return web(request).pages.render(request, "twofactor_codes.html", codes=codes, first=first)


@router.get(ENROL_PATH)
def enrol_form(request: Request, session: DB, user: Me) -> Response:
    if twofactor.is_enabled(session, user.id):
        return RedirectResponse("/account", status_code=303)
    return _enrol_page(request, session, user)


@router.post(ENROL_PATH)
def enrol(request: Request, session: DB, user: Me, code: Annotated[str, Form()] = "") -> Response:
    """Turn the factor on with the first code from the app, and show the recovery codes."""
    if twofactor.is_enabled(session, user.id):
        return RedirectResponse("/account", status_code=303)
    try:
        codes = two_factor(request).confirm(session, user.id, code.strip()[:100])
    except twofactor.TwoFactorError as exc:
        session.rollback()
        return _enrol_page(request, session, user, str(exc))
    session.commit()
    log.info("two-factor sign-in turned on by %s", user.email)
    return _codes_page(request, codes, first=True)


def _check_code(request: Request, session: Session, user: User, code: str) -> str | None:
    """Whether `code` is right (counted like a sign-in code when wrong); the error if not."""
    context = web(request)
    ip = request.client.host if request.client else "unknown"
    error = None
    with context.login_lock:
        try:
            context.accounts.check_throttle(session, user.email, ip)
            if two_factor(request).check(session, user.id, code.strip()[:100]) is None:
                context.accounts.record_failure(session, user.email, ip)
                error = "that code is not right, or it was used already; wait for the next one"
        except LoginThrottled as exc:
            error = str(exc)
        session.commit()
    return error


@router.post(f"{ENROL_PATH}/recovery-codes")
def renew_codes(
    request: Request, session: DB, user: Me, code: Annotated[str, Form()] = ""
) -> Response:
    """Ten new recovery codes (the old ones stop working), after a current code."""
    if not twofactor.is_enabled(session, user.id):
        return RedirectResponse(ENROL_PATH, status_code=303)
    error = _check_code(request, session, user, code)
    if error is not None:
        flash(request, error[:1].upper() + error[1:] + ".", "error")
        return RedirectResponse("/account#two-factor", status_code=303)
    codes = twofactor.new_recovery_codes(session, user.id)
    session.commit()
    log.info("new recovery codes made by %s", user.email)
    return _codes_page(request, codes, first=False)


@router.post(f"{ENROL_PATH}/off")
def turn_off(
    request: Request, session: DB, user: Me, code: Annotated[str, Form()] = ""
) -> Response:
    """Turn one's own second factor off, after a current code (or a recovery code);
    refused to admins while the setting requires it."""
    if _required(request, user):
        flash(request, "Admins must keep two-factor sign-in on here.", "error")
        return RedirectResponse("/account#two-factor", status_code=303)
    if not twofactor.is_enabled(session, user.id):
        return RedirectResponse("/account", status_code=303)
    error = _check_code(request, session, user, code)
    if error is not None:
        flash(request, error[:1].upper() + error[1:] + ".", "error")
        return RedirectResponse("/account#two-factor", status_code=303)
    twofactor.reset(session, user.id)
    session.commit()
    log.info("two-factor sign-in turned off by %s", user.email)
    flash(request, "Two-factor sign-in is off; you sign in with your password alone.")
    return RedirectResponse("/account", status_code=303)


@router.get("/users/{user_id:int}/2fa/reset")
@router.post("/users/{user_id:int}/2fa/reset")
def reset_other(
    request: Request,
    session: DB,
    me: Annotated[User, Depends(require_admin)],
    user_id: int,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """An admin turns off another user's second factor (a lost or replaced phone); asks
    first, saying what it does. Their sessions end, so a stolen device is signed out."""
    user = get_user_by_id(session, user_id)
    if user is None:
        raise HTTPException(404, "Not found.")
    if user.id == me.id:
        flash(request, "Your own second factor is on your Account page.", "error")
        return RedirectResponse("/users", status_code=303)
    if not twofactor.is_enabled(session, user.id):
        flash(request, f"{user.email} has no two-factor sign-in; there is nothing to reset.")
        return RedirectResponse("/users", status_code=303)
    if request.method != "POST" or not confirmed(confirm):
        left = twofactor.recovery_codes_left(session, user.id)
        sessions = websessions.count(session, user.id)
        again = (
            "they are asked to set it up again at their next sign-in (admins must have it)"
            if _required(request, user)
            else "they can set it up again from their Account page"
        )
        return ask(
            request,
            title=f"Reset two-factor sign-in for {user.email}?",
            consequences=[
                f"The codes of their authenticator app and their {left} unused recovery"
                f" code{'s' if left != 1 else ''} stop working.",
                f"They sign in with their password alone; {again}.",
                f"Their {sessions} open session{'s' if sessions != 1 else ''} end.",
            ],
            action=f"/users/{user_id}/2fa/reset",
            button="Reset two-factor sign-in",
            back="/users",
        )
    twofactor.reset(session, user.id)
    websessions.end_others(session, user.id, None)
    session.commit()
    log.warning("two-factor sign-in of %s reset by %s", user.email, me.email)
    flash(request, f"Two-factor sign-in reset for {user.email}; their sessions have ended.")
    return RedirectResponse("/users", status_code=303)
