"""Admin page: the suppression list (addresses never to be mailed again)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from mailer.app.errors import RecordError, store_errors
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.context import web
from mailer.web.forms import DB, INVALID, PAGE_SIZE, Errors, back, field_errors, page_number
from mailer.web.pages import flash
from subscribers import suppression
from subscribers.errors import about

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])


def _suppression_view(
    request: Request,
    session: Session,
    page: int = 1,
    *,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    page = page_number(page)
    rows = suppression.list_suppressions(
        session, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    return web(request).pages.render(
        request,
        "suppression.html",
        INVALID if errors else 200,
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        form=form or {"email": "", "reason": "added by an operator"},
        errors=errors or {},
    )


@router.get("/suppression")
def suppression_page(request: Request, session: DB, page: int = 1) -> Response:
    return _suppression_view(request, session, page)


@router.post("/suppression")
def add_suppression(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "added by an operator",
) -> Response:
    try:
        with store_errors(), about("email"):
            suppression.suppress(session, email, reason)
        session.commit()
    except RecordError as exc:
        session.rollback()
        return _suppression_view(
            request, session, form={"email": email, "reason": reason}, errors=field_errors(exc)
        )
    flash(request, f"{email.strip()} will never be mailed again.")
    return back("/suppression")


@router.post("/suppression/remove")
def remove_suppression(request: Request, session: DB, email: Annotated[str, Form()]) -> Response:
    try:
        with store_errors():
            suppression.unsuppress(session, email)
        session.commit()
        flash(request, f"{email.strip()} removed from the suppression list.")
    except RecordError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return back("/suppression")
