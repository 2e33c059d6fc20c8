"""Page rendering: one autoescaping Jinja2 environment over templates/web/.

Every page gets the signed-in user, this session's CSRF token and any flash
messages, so templates never reach into the request themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from mailer.languages import ENGLISH, translations
from mailer.web import csrf

FLASH = "flash"

# The email's own HTML (the editor's preview, the public web copy): inline styles,
# images from the media URL; no scripts at all.
EMAIL_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src * data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


class Pages:
    def __init__(self, directory: Path, globals_: dict[str, Any] | None = None) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=True,  # everything from a person or a file is text
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        # Public pages' words in the page's `lang` (mailer.web.language); staff pages set
        # none and stay English. Per render, not per environment: pages render at once.
        self.env.policies["ext.i18n.trimmed"] = True
        self.env.install_gettext_callables(  # type: ignore[attr-defined]
            _gettext, _ngettext, newstyle=True
        )
        self.env.globals.update(globals_ or {})
        self.env.filters["in_zone"] = in_zone

    def render(
        self, request: Request, template: str, status_code: int = 200, /, **context: Any
    ) -> HTMLResponse:
        values: dict[str, Any] = {
            "request": request,
            "user": getattr(request.state, "user", None),
            "csrf_token": csrf.token(request),
            "flashes": pop_flashes(request),
            "path": request.url.path,
        }
        values.update(context)
        html = self.env.get_template(template).render(values)
        return HTMLResponse(html, status_code=status_code)


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(str(context.get("lang") or ENGLISH)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return translations(str(context.get("lang") or ENGLISH)).ngettext(singular, plural, count)


def in_zone(moment: datetime, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC instant as wall time in `zone` (naive values from SQLite are UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(zone)).strftime(fmt)


def mask(email: str) -> str:
    """`l***@example.org`: enough for a person to recognise their own address (public
    pages show no more of it)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A message shown once on the next page (after a redirect)."""
    messages = list(request.session.get(FLASH, []))
    messages.append([kind, message])
    request.session[FLASH] = messages


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    if FLASH not in request.session:
        return []
    return [(str(kind), str(text)) for kind, text in request.session.pop(FLASH)]
