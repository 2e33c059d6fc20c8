"""Login, logout and the dependencies that guard every editor and admin page.

Sessions are Starlette's signed cookies (HttpOnly, SameSite=Lax, Secure when the
public URL is https, limited to `session_max_age_seconds`) holding the user id, a
fingerprint of the password hash and the token of a server-side session
(`mailer.people.websessions`). Signing out deletes that session, so a copied cookie stops
working; changing a password or removing a user ends their sessions everywhere, and
"Sign out everywhere" ends all but the current one.

A user with two-factor sign-in gets, after the right password, only a *half-signed-in*
cookie: the user id under other keys, the password fingerprint and the time, good
for nothing but the code form at `/login/code`, and for `PENDING_SECONDS`. Wrong codes
count towards the same block as wrong passwords (`Accounts.record_failure`).
With `MAILER_REQUIRE_2FA_FOR_ADMINS`, an admin without a second factor reaches only the
enrolment pages (`mailer.web.twofactor`) until it is on.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from mailer.people import twofactor, websessions
from mailer.people.accounts import (
    AccountError,
    InvalidCredentials,
    LoginThrottled,
    User,
    get_user_by_id,
)
from mailer.web import csrf
from mailer.web.context import db, web
from mailer.web.pages import FLASH, flash

router = APIRouter(dependencies=[Depends(csrf.verify)])
log = logging.getLogger("mailer.web.auth")

USER_ID = "uid"
FINGERPRINT = "pwf"
SESSION_TOKEN = "sid"  # noqa: S105 - the cookie key, not a secret
PENDING_USER = "2fa_uid"  # half signed in: the password was right, the code is to come
PENDING_FINGERPRINT = "2fa_pwf"
PENDING_SINCE = "2fa_at"
PENDING_NEXT = "2fa_next"
PENDING_SECONDS = 300
ENROL_PATH = "/account/2fa"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, other requests get 401."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this (an editor on an admin page)."""


class EnrolmentRequired(Exception):
    """An admin without a second factor while MAILER_REQUIRE_2FA_FOR_ADMINS is on: pages
    redirect to the enrolment page, other requests get 403."""


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def current_user(request: Request, session: Annotated[Session, Depends(db)]) -> User:
    user_id = request.session.get(USER_ID)
    max_age = web(request).root.settings.session_max_age_seconds
    if (
        not isinstance(user_id, int)
        or websessions.user_of(session, request.session.get(SESSION_TOKEN), max_age) != user_id
    ):
        raise LoginRequired()  # never signed in, signed out, or the session was ended
    user = get_user_by_id(session, user_id)
    if user is None or not user.active or request.session.get(FINGERPRINT) != _fingerprint(user):
        raise LoginRequired()
    request.state.user = user
    if (
        user.is_admin
        and web(request).root.settings.require_2fa_for_admins
        and not request.url.path.startswith(ENROL_PATH)
        and not twofactor.is_enabled(session, user.id)
    ):
        raise EnrolmentRequired()
    return user


def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden()
    return user


def safe_next(target: str | None) -> str:
    """Only local paths, so the login form cannot be used to redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return web(request).pages.render(request, "login.html", next=safe_next(next), error=None)


def two_factor(request: Request) -> twofactor.TwoFactor:
    """Enrolment and code checks, keyed by MAILER_SECRET_KEY; the brand names the account
    in authenticator apps."""
    context = web(request)
    brand = str(context.pages.env.globals.get("brand") or "Newsletter")
    return twofactor.TwoFactor(context.root.settings.secret_key.get_secret_value(), brand)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _sign_in(request: Request, session: Session, user: User, target: str) -> Response:
    """Every factor was right: a server-side session and a fresh cookie."""
    context = web(request)
    token = websessions.start(session, user.id, context.root.settings.session_max_age_seconds)
    session.commit()
    flashes = request.session.get(FLASH)
    request.session.clear()  # no fixation: a new session starts at login
    if flashes:
        request.session[FLASH] = flashes
    request.session[USER_ID] = user.id
    request.session[FINGERPRINT] = _fingerprint(user)
    request.session[SESSION_TOKEN] = token
    csrf.rotate(request)
    return RedirectResponse(safe_next(target), status_code=303)


@router.post("/login")
def login(
    request: Request,
    session: Annotated[Session, Depends(db)],
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    context = web(request)
    ip = _client(request)
    failure: LoginThrottled | InvalidCredentials | None = None
    second = False
    with context.login_lock:
        try:
            user = context.accounts.authenticate(session, email, password, ip=ip, finish=False)
            second = twofactor.is_enabled(session, user.id)
            if not second:
                context.accounts.finish_login(session, user)
        except (LoginThrottled, InvalidCredentials) as exc:
            failure = exc
        session.commit()
    if isinstance(failure, LoginThrottled):
        log.warning("login refused (throttled) for %r from %s", email.strip()[:200], ip)
        response = context.pages.render(
            request, "login.html", 429, next=safe_next(next), error=str(failure), email=email
        )
        response.headers["Retry-After"] = str(failure.retry_after)
        return response
    if failure is not None:
        log.warning("login failed for %r from %s", email.strip()[:200], ip)
        return context.pages.render(
            request, "login.html", next=safe_next(next), error=str(failure), email=email
        )
    if second:
        log.info("login: password right for %s from %s; code asked", user.email, ip)
        request.session.clear()
        request.session[PENDING_USER] = user.id
        request.session[PENDING_FINGERPRINT] = _fingerprint(user)
        request.session[PENDING_SINCE] = time.time()
        request.session[PENDING_NEXT] = safe_next(next)
        csrf.rotate(request)
        return RedirectResponse("/login/code", status_code=303)
    log.info("login: %s (%s) from %s", user.email, user.role, ip)
    return _sign_in(request, session, user, next)


def _pending_user(request: Request, session: Session) -> User | None:
    """The half-signed-in user, while the password step is recent and still valid."""
    user_id = request.session.get(PENDING_USER)
    since = request.session.get(PENDING_SINCE)
    if not isinstance(user_id, int) or not isinstance(since, int | float):
        return None
    if not 0 <= time.time() - since <= PENDING_SECONDS:
        return None
    user = get_user_by_id(session, user_id)
    if (
        user is None
        or not user.active
        or request.session.get(PENDING_FINGERPRINT) != _fingerprint(user)
    ):
        return None
    return user


def _start_again(request: Request) -> Response:
    for key in (PENDING_USER, PENDING_FINGERPRINT, PENDING_SINCE, PENDING_NEXT):
        request.session.pop(key, None)
    flash(request, "Sign in again: the code was not entered within 5 minutes.", "error")
    return RedirectResponse("/login", status_code=303)


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request, session: Annotated[Session, Depends(db)]) -> Response:
    if _pending_user(request, session) is None:
        return _start_again(request)
    return web(request).pages.render(request, "login_code.html", error=None)


@router.post("/login/code")
def check_code(
    request: Request,
    session: Annotated[Session, Depends(db)],
    code: Annotated[str, Form()] = "",
) -> Response:
    """The second step: a code from the authenticator app or a recovery code. Wrong ones
    count like wrong passwords, for the account and the client's address."""
    context = web(request)
    user = _pending_user(request, session)
    if user is None:
        return _start_again(request)
    ip = _client(request)
    factor = two_factor(request)
    failure: LoginThrottled | None = None
    kind = None
    with context.login_lock:
        try:
            context.accounts.check_throttle(session, user.email, ip)
            kind = factor.check(session, user.id, code.strip()[:100])
            if kind is None:
                context.accounts.record_failure(session, user.email, ip)
            else:
                context.accounts.finish_login(session, user)
        except LoginThrottled as exc:
            failure = exc
        session.commit()
    if failure is not None:
        log.warning("code refused (throttled) for %s from %s", user.email, ip)
        response = context.pages.render(request, "login_code.html", 429, error=str(failure))
        response.headers["Retry-After"] = str(failure.retry_after)
        return response
    if kind is None:
        log.warning("wrong second-factor code for %s from %s", user.email, ip)
        return context.pages.render(
            request,
            "login_code.html",
            error="that code is not right, or it was used already; wait for the next one",
        )
    log.info("login: %s (%s) from %s with a %s code", user.email, user.role, ip, kind)
    if kind == "recovery":
        left = twofactor.recovery_codes_left(session, user.id)
        flash(
            request,
            f"You signed in with a recovery code; {left} left. Each works once: make new ones"
            " on your Account page if you are running short.",
            "ok" if left > 2 else "error",
        )
    target = request.session.get(PENDING_NEXT)
    return _sign_in(request, session, user, target if isinstance(target, str) else "/")


@router.post("/logout")
def logout(request: Request, session: Annotated[Session, Depends(db)]) -> Response:
    websessions.end(session, request.session.get(SESSION_TOKEN))
    session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/account/sessions/end")
def end_other_sessions(
    request: Request,
    session: Annotated[Session, Depends(db)],
    user: Annotated[User, Depends(current_user)],
) -> Response:
    """Sign out everywhere else (a lost phone, a shared computer); this session stays."""
    ended = websessions.end_others(session, user.id, request.session.get(SESSION_TOKEN))
    session.commit()
    flash(
        request, f"Signed out everywhere else ({ended} other session{'s' if ended != 1 else ''})."
    )
    return RedirectResponse("/account", status_code=303)


def _account_page(request: Request, session: Session, user: User, error: str | None) -> Response:
    sessions = websessions.count(session, user.id)
    return web(request).pages.render(
        request,
        "account.html",
        error=error,
        sessions=sessions,
        two_factor_on=twofactor.is_enabled(session, user.id),
        codes_left=twofactor.recovery_codes_left(session, user.id),
        require_2fa_for_admins=web(request).root.settings.require_2fa_for_admins,
    )


@router.get("/account")
def account_page(
    request: Request,
    session: Annotated[Session, Depends(db)],
    user: Annotated[User, Depends(current_user)],
) -> Response:
    return _account_page(request, session, user, None)


@router.post("/account/password")
def change_own_password(
    request: Request,
    session: Annotated[Session, Depends(db)],
    user: Annotated[User, Depends(current_user)],
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Needs the current password, checked like a login (wrong guesses count towards the
    same block), so an unattended session is no password oracle; ends the user's other
    sessions, keeps this one."""
    context = web(request)
    ip = _client(request)
    error = None
    with context.login_lock:
        try:
            context.accounts.authenticate(session, user.email, current, ip=ip)
        except LoginThrottled as exc:
            error = str(exc)
        except InvalidCredentials:
            error = "the current password is not right"
        session.commit()  # the failure count, whatever happens next
    if error is None and new != confirm:
        error = "the two new passwords differ"
    if error is None:
        try:
            context.accounts.set_password(session, user.email, new)
        except AccountError as exc:
            error = str(exc)
    if error is not None:
        session.rollback()
        return _account_page(request, session, user, error)
    websessions.end_others(session, user.id, request.session.get(SESSION_TOKEN))
    session.commit()
    request.session[FINGERPRINT] = _fingerprint(user)
    flash(request, "Password changed; your other sessions have ended.")
    return RedirectResponse("/account", status_code=303)
