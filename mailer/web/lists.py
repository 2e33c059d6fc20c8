"""Admin page: mailing lists (add, edit, make public or private, remove or archive)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from mailer.app.errors import RecordError, store_errors
from mailer.people import removals
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.confirm import ask, confirmed
from mailer.web.context import web
from mailer.web.forms import DB, INVALID, Errors, back, field_errors
from mailer.web.pages import flash
from subscribers import mailing_lists
from subscribers.errors import about

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])


def _lists_view(
    request: Request,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    errors: Errors | None = None,
    row: str | None = None,
) -> Response:
    """`form` and `errors` are the add form's, or with `row` (a slug) that row's."""
    lists = mailing_lists.list_lists(session)
    counts = {c.slug: c for c in mailing_lists.list_counts(session)}
    empty = {"slug": "", "name": "", "description": "", "public": False}
    return web(request).pages.render(
        request,
        "lists.html",
        INVALID if errors else 200,
        lists=lists,
        counts=counts,
        archived=mailing_lists.list_lists(session, archived=True),
        form=(form or empty) if row is None else empty,
        errors=(errors or {}) if row is None else {},
        row=row,
        row_form=(form or {}) if row is not None else {},
        row_errors=(errors or {}) if row is not None else {},
    )


@router.get("/lists")
def lists_page(request: Request, session: DB) -> Response:
    return _lists_view(request, session)


@router.post("/lists")
def add_list(
    request: Request,
    session: DB,
    slug: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    public: Annotated[bool, Form()] = False,
) -> Response:
    try:
        with store_errors():
            mailing_lists.add_list(session, slug, name or None, description, public=public)
        session.commit()
    except RecordError as exc:
        session.rollback()
        typed = {"slug": slug, "name": name, "description": description, "public": public}
        return _lists_view(request, session, form=typed, errors=field_errors(exc, "slug"))
    flash(request, f"Added {'public' if public else 'private'} list {slug}.")
    return back("/lists")


@router.post("/lists/{slug}")
def update_list(
    request: Request,
    session: DB,
    slug: str,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    public: Annotated[bool, Form()] = False,
) -> Response:
    """The row's form: an unticked "public" box is simply absent, so it makes the list
    private (the form always shows the box)."""
    mailing_lists.get_list(session, slug)  # 404 before anything else
    try:
        with store_errors(), about("name"):
            mailing_lists.update_list(
                session, slug, name=name, description=description, public=public
            )
        session.commit()
    except RecordError as exc:
        session.rollback()
        typed = {"name": name, "description": description, "public": public}
        return _lists_view(request, session, form=typed, errors=field_errors(exc), row=slug)
    flash(request, f"Saved {'public' if public else 'private'} list {slug}.")
    return back("/lists")


@router.get("/lists/{slug}/delete")
@router.post("/lists/{slug}/delete")
def remove_list(
    request: Request, session: DB, slug: str, confirm: Annotated[str, Form()] = ""
) -> Response:
    """Archive a list campaigns used, delete one none used: after saying which, and what
    will be lost (see `mailer.people.removals`)."""
    if request.method != "POST" or not confirmed(confirm):
        removal = removals.list_removal(session, slug)
        verb = "Archive" if removal.archives else "Delete"
        return ask(
            request,
            title=f"Remove list {removal.name} ({removal.slug})?",
            consequences=removals.list_consequences(removal),
            action=f"/lists/{removal.slug}/delete",
            button=f"{verb} the list",
            back="/lists",
        )
    done = removals.remove_list(session, slug)
    session.commit()
    if done.archives:
        flash(
            request,
            f"Archived list {done.slug}: {removals.plural(done.active, 'active subscription')}"
            f" ended; kept for the {removals.plural(done.campaigns, 'campaign')} that used it.",
        )
    else:
        flash(request, f"Deleted list {done.slug} and its subscriptions.")
    return back("/lists")
