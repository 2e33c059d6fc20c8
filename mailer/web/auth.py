"""Login, logout and the dependencies that guard every editor and admin page.

Sessions are Starlette's signed cookies (HttpOnly, SameSite=Lax, Secure when the
public URL is https, limited to `session_max_age_seconds`) holding the user id, a
fingerprint of the password hash and the token of a server-side session
(`mailer.people.websessions`). Signing out deletes that session, so a copied cookie stops
working; changing a password or removing a user ends their sessions everywhere, and
"Sign out everywhere" ends all but the current one.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from mailer.people import websessions
from mailer.people.accounts import (
    AccountError,
    InvalidCredentials,
    LoginThrottled,
    User,
    get_user_by_id,
)
from mailer.web import csrf
from mailer.web.context import db, web
from mailer.web.pages import flash

router = APIRouter(dependencies=[Depends(csrf.verify)])
log = logging.getLogger("mailer.web.auth")

USER_ID = "uid"
FINGERPRINT = "pwf"
SESSION_TOKEN = "sid"  # noqa: S105 - the cookie key, not a secret


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, other requests get 401."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this (an editor on an admin page)."""


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


@router.post("/login")
def login(
    request: Request,
    session: Annotated[Session, Depends(db)],
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    context = web(request)
    ip = request.client.host if request.client else "unknown"
    failure: LoginThrottled | InvalidCredentials | None = None
    with context.login_lock:
        try:
            user = context.accounts.authenticate(session, email, password, ip=ip)
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
    log.info("login: %s (%s) from %s", user.email, user.role, ip)
    token = websessions.start(session, user.id, context.root.settings.session_max_age_seconds)
    session.commit()
    request.session.clear()  # no fixation: a new session starts at login
    request.session[USER_ID] = user.id
    request.session[FINGERPRINT] = _fingerprint(user)
    request.session[SESSION_TOKEN] = token
    csrf.rotate(request)
    return RedirectResponse(safe_next(next), status_code=303)


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
    return web(request).pages.render(request, "account.html", error=error, sessions=sessions)


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
    ip = request.client.host if request.client else "unknown"
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
