"""Admin page: partner organisations (add, rename, change country, remove)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer.app.audiences import country_choices
from mailer.app.errors import RecordError, store_errors
from mailer.people import removals
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.confirm import ask, confirmed
from mailer.web.context import web
from mailer.web.forms import DB, INVALID, Errors, back, field_errors
from mailer.web.pages import flash
from subscribers import partners as partner_store
from subscribers.countries import country_names

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])


def _partners_view(
    request: Request,
    session: Session,
    *,
    edit: int | None = None,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    """One table with one header; the row being edited (`edit`) is the only one with
    fields, so the page stays small however many partners there are."""
    partners = partner_store.list_partners(session)
    editing = next((p for p in partners if p.id == edit), None)
    if edit is not None and editing is None:
        raise HTTPException(404, "Not found.")
    return web(request).pages.render(
        request,
        "partners.html",
        INVALID if errors else 200,
        partners=partners,
        contacts=partner_store.partner_contact_counts(session),
        countries=country_choices(),
        names=country_names(),
        editing=editing,
        form=form or {},
        errors=errors or {},
    )


@router.get("/partners")
def partners_page(request: Request, session: DB, edit: int | None = None) -> Response:
    return _partners_view(request, session, edit=edit)


@router.post("/partners")
def add_partner(
    request: Request,
    session: DB,
    name: Annotated[str, Form()],
    country: Annotated[str, Form()] = "",
) -> Response:
    try:
        with store_errors():
            partner = partner_store.add_partner(session, name, country or None)
        session.commit()
    except RecordError as exc:
        session.rollback()
        return _partners_view(
            request,
            session,
            form={"name": name, "country": country},
            errors={f"add-{k}": v for k, v in field_errors(exc, "name").items()},
        )
    flash(request, f"Added partner {partner.name}.")
    return back("/partners")


@router.post("/partners/{partner_id:int}")
def update_partner(
    request: Request,
    session: DB,
    partner_id: int,
    name: Annotated[str, Form()],
    country: Annotated[str, Form()] = "",
) -> Response:
    partner_store.get_partner(session, partner_id)  # 404 before anything else
    try:
        with store_errors():
            partner_store.update_partner(session, partner_id, name=name, country=country or None)
        session.commit()
    except RecordError as exc:
        session.rollback()
        return _partners_view(
            request,
            session,
            edit=partner_id,
            form={"name": name, "country": country},
            errors=field_errors(exc, "name"),
        )
    flash(request, "Partner saved.")
    return back("/partners")


@router.get("/partners/{partner_id:int}/delete")
@router.post("/partners/{partner_id:int}/delete")
def remove_partner(
    request: Request, session: DB, partner_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    partner = partner_store.get_partner(session, partner_id)
    if request.method != "POST" or not confirmed(confirm):
        return ask(
            request,
            title=f"Remove partner {partner.name}?",
            consequences=removals.partner_consequences(session, partner_id),
            action=f"/partners/{partner_id}/delete",
            button="Remove partner",
            back="/partners",
        )
    partner_store.remove_partner(session, partner_id)
    session.commit()
    flash(request, f"Removed partner {partner.name}; its contacts stay, without a partner.")
    return back("/partners")
