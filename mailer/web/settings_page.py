"""Admin page: the settings in effect, read-only (secrets never shown)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.context import web

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])


@router.get("/settings")
def settings_page(request: Request) -> Response:
    """The settings in effect, read-only: they come from `.env` and the environment, which
    only the operator of the machine should change; secrets are never shown."""
    context = web(request)
    settings = context.root.settings
    rows = []
    for name, value in sorted(settings.model_dump().items()):
        if isinstance(value, SecretStr):
            shown = "(set)" if value.get_secret_value() else "(empty)"
        elif name == "database_url" and value:
            shown = make_url(str(value)).render_as_string(hide_password=True)
        else:
            shown = "" if value is None else str(value)
        rows.append((f"MAILER_{name.upper()}", shown))
    return context.pages.render(
        request,
        "settings.html",
        rows=rows,
        insecure=settings.insecure,
        database=make_url(settings.resolved_database_url).render_as_string(hide_password=True),
        profile_path=str(settings.profile_path),
    )
