"""The FastAPI application: `create_app(root)` wires routers, sessions and headers.

Built from the composition root's parts (settings, database sessions); `mailer web`
and `mailer serve` run it with uvicorn, tests run it in a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from mailer.app.errors import RecordConflict, RecordNotFound, translate
from mailer.compose import Root
from mailer.delivery.campaigns import CampaignNotFound
from mailer.errors import MailerError
from mailer.people.accounts import Accounts
from mailer.web import (
    auth,
    draft_editor,
    editor,
    media_page,
    operator,
    public,
    recovery,
    signup,
    slashes,
    twofactor,
)
from mailer.web.context import WebContext, web
from mailer.web.csrf import CSRFError
from mailer.web.pages import Pages
from subscribers.errors import StoreError

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "mailer_session"
# Ids are the databases' 32-bit INTEGER columns; a larger one in a URL names nothing.
MAX_ID = 2**31 - 1
# Every form is small; the two upload routes set their own, larger limits. Bodies over
# the limit are refused with 413 as they arrive, before login or CSRF are checked.
MAX_BODY_BYTES = 256 * 1024

# Our own pages load nothing from elsewhere: no CDN, no remote images, no inline code.
APP_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def _derived_key(secret: str, purpose: str) -> str:
    """A key per purpose, so a session cookie can never pass for an unsubscribe token."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def ids_in_range(request: Request) -> None:
    """An id beyond the database's integers is "not found" (the driver would raise a 500)."""
    for value in request.path_params.values():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise HTTPException(404, "Not found.")


# Control characters no form or query field needs: C0 controls and DEL. Tab, line feed
# and carriage return stay allowed (textareas send them). PostgreSQL cannot store NUL at
# all, and the others break headers, CSV files and terminals: refused for every field
# here, once, before any handler sees the value.
REFUSED_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def no_control_characters(request: Request) -> None:
    """Refuse a query or form field (name or value) holding a control character, with a
    400 naming the field. Uploaded files are not fields: their contents are validated
    by what reads them."""
    fields: list[tuple[str, str]] = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").lower()
    if request.method in BODY_METHODS and content_type.startswith(FORM_TYPES):
        form = await request.form()  # parsed once: handlers get the same parsed form
        fields.extend((name, value) for name, value in form.multi_items() if isinstance(value, str))
    for name, value in fields:
        found = REFUSED_CHARACTERS.search(name) or REFUSED_CHARACTERS.search(value)
        if found:
            shown = REFUSED_CHARACTERS.sub("\N{REPLACEMENT CHARACTER}", name)
            code = f"U+{ord(found.group()):04X}"
            raise HTTPException(
                400,
                f"Refused: the field {shown!r} contains a control character ({code});"
                " remove it and try again.",
            )


def create_app(root: Root, accounts: Accounts | None = None) -> FastAPI:
    settings = root.settings
    app = FastAPI(
        title="Newsletter",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(ids_in_range), Depends(no_control_characters)],
        max_body_size=MAX_BODY_BYTES,
    )
    profile = root.profile
    brand = profile.masthead.short_name or profile.masthead.name
    app.state.web = WebContext(
        root=root,
        accounts=accounts or Accounts(),
        pages=Pages(
            settings.templates_dir / "web",
            {"brand": f"{brand} {profile.masthead.label}".strip(), "profile": profile},
        ),
        profile=profile,
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", APP_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.session.get(auth.USER_ID) is not None:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=_derived_key(settings.secret_key.get_secret_value(), "web-session"),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    settings.resolved_media_dir.mkdir(parents=True, exist_ok=True)  # /media/: media_page

    slashes.install(app.router)  # `/archive/` -> `/archive`, never to the Host header's site
    app.include_router(auth.router)
    app.include_router(twofactor.router)
    app.include_router(recovery.router)
    app.include_router(public.router)
    app.include_router(editor.router)
    app.include_router(operator.router)
    signup.install(app)  # public sign-up pages and the service behind them
    draft_editor.install(app)  # the block editor of drafts, its preview and saves
    media_page.install(app)  # photo uploads, the media library, /media/ files

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/issues", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """For a reverse proxy or a monitor: 200 when the database answers, else 503."""
        try:
            with root.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})

    favicon = (STATIC_DIR / "favicon.svg").read_bytes()

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon_ico() -> Response:
        """Browsers ask for it on every page, including the email's web copy."""
        return Response(
            favicon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
        )

    theme = _theme_css(profile.colours.primary, profile.colours.background)

    @app.get("/theme.css", include_in_schema=False)
    def theme_css() -> Response:
        """The newsletter's colours for the public pages (CSP allows no inline styles)."""
        return Response(theme, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @app.exception_handler(auth.LoginRequired)
    async def login_required(request: Request, _exc: Exception) -> Response:
        if request.method in ("GET", "HEAD"):
            return auth.login_redirect(request)
        return _error(request, 401, "Please sign in again.")

    @app.exception_handler(auth.EnrolmentRequired)
    async def enrolment_required(request: Request, _exc: Exception) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(auth.ENROL_PATH, status_code=303)
        return _error(request, 403, "Set up two-factor sign-in first (Account).")

    @app.exception_handler(auth.Forbidden)
    async def forbidden(request: Request, _exc: Exception) -> Response:
        return _error(request, 403, "This page is for administrators.")

    @app.exception_handler(CSRFError)
    async def csrf_failed(request: Request, exc: Exception) -> Response:
        return _error(request, 403, f"Refused: {exc}.")

    @app.exception_handler(MailerError)
    async def mailer_error(request: Request, exc: Exception) -> Response:
        return _error(request, _status(exc), str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: Exception) -> Response:
        """The subscriber store's own errors, read as ours by the one adapter."""
        assert isinstance(exc, StoreError)
        return await mailer_error(request, translate(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: Exception) -> Response:
        """A form or query field missing or of the wrong type: a page naming it, not JSON."""
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{error['loc'][-1]}: {str(error['msg']).lower()}" for error in exc.errors()
        )
        return _error(request, 400, f"Refused: {problems}.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(request, exc.status_code, str(exc.detail))

    return app


def _status(exc: Exception) -> int:
    """The status code of one of our errors: not found, a conflict, or a bad request."""
    if isinstance(exc, CampaignNotFound | RecordNotFound):
        return 404
    return 409 if isinstance(exc, RecordConflict) else 400


def _theme_css(primary: str, background: str) -> str:
    return f"body.public {{ --accent: {primary}; background: {background}; }}\n"


# Endpoints whose errors are JSON {"error": "..."} (the block editor's photo uploads).
JSON_ERROR_PATHS = frozenset({"/media", "/media.json"})


def _wants_json(request: Request) -> bool:
    """The JSON endpoints above and clients asking only for JSON get their errors as
    {"error": "..."}, not as a page."""
    accept = request.headers.get("accept", "")
    return request.url.path in JSON_ERROR_PATHS or (
        "application/json" in accept and "text/html" not in accept
    )


def _error(request: Request, status_code: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status_code)
    return web(request).pages.render(
        request, "error.html", status_code, status=status_code, message=message
    )
