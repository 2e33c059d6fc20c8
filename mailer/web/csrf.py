"""CSRF protection: a random token per browser session, required on every form post.

The token lives in the signed session cookie and is repeated in a hidden form field
(or an `X-CSRF-Token` header). The only POST exempt is RFC 8058's one-click
unsubscribe, which mail providers send without any cookie (see public.py).
"""

from __future__ import annotations

import secrets

from fastapi import Request

FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CSRFError(Exception):
    """The form did not carry this session's token: refused with 403."""


def token(request: Request) -> str:
    """This session's token, created on first use."""
    value = request.session.get(FIELD)
    if not isinstance(value, str) or not value:
        value = secrets.token_urlsafe(32)
        request.session[FIELD] = value
    return value


def rotate(request: Request) -> str:
    """A fresh token, e.g. at login, so a token seen before login is worthless after."""
    request.session[FIELD] = secrets.token_urlsafe(32)
    return str(request.session[FIELD])


async def verify(request: Request) -> None:
    """Router dependency: refuse an unsafe request without this session's token."""
    if request.method not in UNSAFE:
        return
    expected = request.session.get(FIELD)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(FIELD)
        sent = field if isinstance(field, str) else None
    if not isinstance(expected, str) or not sent or not secrets.compare_digest(expected, sent):
        raise CSRFError("the form has expired or did not come from this site; reload and retry")
