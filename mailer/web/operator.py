"""Admin pages: subscribers, partners, lists, suppression, CSV import/export, users.

Every route here needs a signed-in admin and, for posts, the session's CSRF token.
Changes are made through the subscriber store's own functions (the same ones the CLI
uses), so the rules (validation, consent records, suppression) are the same.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer import accounts, ledger
from mailer.accounts import User
from mailer.campaigns import Campaign
from mailer.privacy import erase_person
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.context import db, web
from mailer.web.pages import flash
from subscribers import repository, suppression
from subscribers.countries import REGION, country_names
from subscribers.csvio import export_csv, import_csv
from subscribers.errors import ImportRejected, Problem, StoreError
from subscribers.models import SubscriberStatus

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])

Admin = Annotated[User, Depends(require_admin)]
DB = Annotated[Session, Depends(db)]
PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # keeps the OFFSET inside the databases' integers
MAX_IMPORT_BYTES = 50_000_000


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def country_choices() -> list[tuple[str, str]]:
    """The region's six countries first, then every other code by name."""
    names = country_names()
    rest = sorted((c for c in names if c not in REGION), key=lambda c: names[c])
    return [(c, names[c]) for c in (*REGION, *rest)]


# --- subscribers ------------------------------------------------------------------------


@router.get("/subscribers")
def subscribers_page(
    request: Request,
    session: DB,
    q: str = "",
    country: str = "",
    partner: str = "",
    list: str = "",
    status: str = "",
    page: int = 1,
) -> Response:
    page = min(max(page, 1), MAX_PAGE)
    error = None
    try:
        rows = repository.search_subscribers(
            session,
            q,
            country=country or None,
            partner=partner or None,
            list_slug=list or None,
            status=SubscriberStatus(status) if status else None,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
    except (StoreError, ValueError) as exc:
        rows, error = [], str(exc)
    return web(request).pages.render(
        request,
        "subscribers.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        filters={"q": q, "country": country, "partner": partner, "list": list, "status": status},
        error=error,
        countries=country_choices(),
        names=country_names(),
        partners=repository.list_partners(session),
        lists=repository.list_lists(session),
        statuses=[s.value for s in SubscriberStatus],
    )


@router.post("/subscribers")
def add_subscriber(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    partner: Annotated[str, Form()] = "",
    lists: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        subscriber = repository.add_subscriber(
            session,
            email,
            name=name,
            country=country or None,
            partner=partner or None,
            lists=lists or [],
            consent_source="web-admin",
        )
        session.commit()
    except StoreError as exc:
        session.rollback()
        flash(request, f"Not added: {exc}", "error")
        return _back("/subscribers")
    flash(request, f"Added {subscriber.email}.")
    return _back(f"/subscribers/{subscriber.id}")


@router.get("/subscribers/import")
def import_page(request: Request, session: DB) -> Response:
    return web(request).pages.render(
        request,
        "import.html",
        lists=repository.list_lists(session),
        report=None,
        problems=[],
        filename=None,
    )


@router.post("/subscribers/import", max_body_size=MAX_IMPORT_BYTES + 64 * 1024)
def import_subscribers(
    request: Request,
    session: DB,
    file: UploadFile,
    list_slug: Annotated[str, Form()] = "",
    encoding: Annotated[str, Form()] = "",
    dry_run: Annotated[bool, Form()] = False,
    skip_invalid: Annotated[bool, Form()] = False,
    create_partners: Annotated[bool, Form()] = False,
) -> Response:
    """The CLI's import, with the same per-line report; all or nothing unless told otherwise."""
    name = (file.filename or "upload.csv").replace("\\", "/").rsplit("/", 1)[-1]
    data = file.file.read(MAX_IMPORT_BYTES + 1)  # sync handler: a big import runs in a thread
    report, problems = None, []
    if len(data) > MAX_IMPORT_BYTES:
        problems = [
            Problem(name, 0, "", "the file is larger than 50 MB; use `mailer subscribers import`")
        ]
    else:
        try:
            report = import_csv(
                session,
                data,
                name=name,
                list_slug=list_slug or None,
                encoding=encoding.strip() or None,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
                create_partners=create_partners,
                consent_source="web-import",
            )
            if dry_run:
                session.rollback()
            else:
                session.commit()
        except ImportRejected as exc:
            session.rollback()
            problems = exc.problems
        except StoreError as exc:
            session.rollback()
            problems = [Problem(name, 0, "", str(exc))]
    return web(request).pages.render(
        request,
        "import.html",
        lists=repository.list_lists(session),
        report=report,
        problems=problems,
        filename=name,
    )


@router.get("/subscribers/export.csv")
def export_subscribers(
    session: DB,
    list: str = "",
    country: str = "",
    partner: str = "",
    status: str = "",
) -> Response:
    """Everything the import reads, as UTF-8 CSV (cells that look like formulas neutralised)."""
    known = [s.value for s in SubscriberStatus]
    if status and status not in known:
        raise HTTPException(400, f"status: {status!r} is not one of {', '.join(known)}")
    buffer = io.StringIO()
    export_csv(
        session,
        buffer,
        list_slug=list or None,
        country=country or None,
        partner=partner or None,
        statuses=[SubscriberStatus(status)] if status else None,
    )
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@router.get("/subscribers/{subscriber_id:int}")
def subscriber_page(request: Request, session: DB, subscriber_id: int) -> Response:
    subscriber = repository.get_subscriber(session, subscriber_id)
    subscriptions = repository.subscriptions_of(session, subscriber_id)
    partner = (
        repository.get_partner(session, subscriber.partner_id) if subscriber.partner_id else None
    )
    deliveries = ledger.deliveries_to(session, subscriber.email)
    names = {
        c.id: c.name
        for c in session.scalars(
            select(Campaign).where(Campaign.id.in_({d.campaign_id for d in deliveries}))
        )
    }
    return web(request).pages.render(
        request,
        "subscriber.html",
        deliveries=deliveries,
        campaign_names=names,
        s=subscriber,
        partner=partner,
        subscriptions=subscriptions,
        active_lists={x.list.slug for x in subscriptions if x.status.value == "active"},
        countries=country_choices(),
        partners=repository.list_partners(session),
        lists=repository.list_lists(session),
        statuses=[s.value for s in SubscriberStatus],
    )


@router.post("/subscribers/{subscriber_id:int}")
def update_subscriber(
    request: Request,
    session: DB,
    subscriber_id: int,
    email: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    partner: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "en",
    timezone: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "active",
    lists: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        subscriber = repository.update_subscriber(
            session,
            subscriber_id,
            email=email,
            name=name,
            country=country or None,
            partner=partner or None,
            language=language,
            timezone=timezone or None,
            status=status,
        )
        wanted = set(lists or [])
        current = {
            x.list.slug
            for x in repository.subscriptions_of(session, subscriber_id)
            if x.status.value == "active"
        }
        for slug in sorted(wanted - current):
            repository.subscribe(session, subscriber_id, slug, source="web-admin")
        for slug in sorted(current - wanted):
            repository.unsubscribe(session, subscriber_id, slug, source="web-admin")
        session.commit()
    except StoreError as exc:
        session.rollback()
        flash(request, f"Not saved: {exc}", "error")
        return _back(f"/subscribers/{subscriber_id}")
    flash(request, f"Saved {subscriber.email}.")
    return _back(f"/subscribers/{subscriber_id}")


@router.post("/subscribers/{subscriber_id:int}/unsubscribe")
def unsubscribe_subscriber(request: Request, session: DB, subscriber_id: int) -> Response:
    subscriber = repository.get_subscriber(session, subscriber_id)
    repository.unsubscribe(session, subscriber_id, source="web-admin")
    session.commit()
    flash(request, f"Unsubscribed {subscriber.email} from every list.")
    return _back(f"/subscribers/{subscriber_id}")


@router.post("/subscribers/{subscriber_id:int}/erase")
def erase_subscriber(
    request: Request, session: DB, subscriber_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    subscriber = repository.get_subscriber(session, subscriber_id)
    if confirm.strip().lower() != subscriber.email.lower():
        flash(request, "Not erased: type the address to confirm.", "error")
        return _back(f"/subscribers/{subscriber_id}")
    erase_person(session, subscriber.email, reason="erased by an operator on request")
    session.commit()
    flash(request, "Erased. Only a hash stays on the suppression list.")
    return _back("/subscribers")


# --- partners -------------------------------------------------------------------------


@router.get("/partners")
def partners_page(request: Request, session: DB) -> Response:
    return web(request).pages.render(
        request,
        "partners.html",
        partners=repository.list_partners(session),
        countries=country_choices(),
        names=country_names(),
    )


@router.post("/partners")
def add_partner(
    request: Request,
    session: DB,
    name: Annotated[str, Form()],
    country: Annotated[str, Form()] = "",
) -> Response:
    try:
        partner = repository.add_partner(session, name, country or None)
        session.commit()
        flash(request, f"Added partner {partner.name}.")
    except StoreError as exc:
        session.rollback()
        flash(request, f"Not added: {exc}", "error")
    return _back("/partners")


@router.post("/partners/{partner_id:int}")
def update_partner(
    request: Request,
    session: DB,
    partner_id: int,
    name: Annotated[str, Form()],
    country: Annotated[str, Form()] = "",
) -> Response:
    try:
        repository.update_partner(session, partner_id, name=name, country=country or None)
        session.commit()
        flash(request, "Partner saved.")
    except StoreError as exc:
        session.rollback()
        flash(request, f"Not saved: {exc}", "error")
    return _back("/partners")


@router.post("/partners/{partner_id:int}/delete")
def remove_partner(request: Request, session: DB, partner_id: int) -> Response:
    repository.remove_partner(session, partner_id)
    session.commit()
    flash(request, "Partner removed; its contacts stay, without a partner.")
    return _back("/partners")


# --- lists ------------------------------------------------------------------------------


@router.get("/lists")
def lists_page(request: Request, session: DB) -> Response:
    lists = repository.list_lists(session)
    counts = {c.slug: c for c in repository.list_counts(session)}
    return web(request).pages.render(request, "lists.html", lists=lists, counts=counts)


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
        repository.add_list(session, slug, name or None, description, public=public)
        session.commit()
        flash(request, f"Added {'public' if public else 'private'} list {slug}.")
    except StoreError as exc:
        session.rollback()
        flash(request, f"Not added: {exc}", "error")
    return _back("/lists")


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
    repository.update_list(session, slug, name=name, description=description, public=public)
    session.commit()
    flash(request, f"Saved {'public' if public else 'private'} list {slug}.")
    return _back("/lists")


@router.post("/lists/{slug}/delete")
def remove_list(request: Request, session: DB, slug: str) -> Response:
    repository.remove_list(session, slug)
    session.commit()
    flash(request, f"Removed list {slug} and its subscriptions.")
    return _back("/lists")


# --- suppression ------------------------------------------------------------------------


@router.get("/suppression")
def suppression_page(request: Request, session: DB, page: int = 1) -> Response:
    page = min(max(page, 1), MAX_PAGE)
    rows = suppression.list_suppressions(
        session, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    return web(request).pages.render(
        request, "suppression.html", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page
    )


@router.post("/suppression")
def add_suppression(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "added by an operator",
) -> Response:
    try:
        suppression.suppress(session, email, reason)
        session.commit()
        flash(request, f"{email.strip()} will never be mailed again.")
    except StoreError as exc:
        session.rollback()
        flash(request, f"Not added: {exc}", "error")
    return _back("/suppression")


@router.post("/suppression/remove")
def remove_suppression(request: Request, session: DB, email: Annotated[str, Form()]) -> Response:
    try:
        suppression.unsuppress(session, email)
        session.commit()
        flash(request, f"{email.strip()} removed from the suppression list.")
    except StoreError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return _back("/suppression")


# --- users ---------------------------------------------------------------------------------


@router.get("/users")
def users_page(request: Request, session: DB) -> Response:
    return web(request).pages.render(
        request,
        "users.html",
        users=accounts.list_users(session),
        roles=[r.value for r in accounts.Role],
    )


@router.post("/users")
def create_user(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()] = "editor",
    name: Annotated[str, Form()] = "",
) -> Response:
    try:
        user = web(request).accounts.create_user(session, email, password, role=role, name=name)
        session.commit()
        flash(request, f"Created {user.role} {user.email}.")
    except accounts.AccountError as exc:
        session.rollback()
        flash(request, f"Not created: {exc}", "error")
    return _back("/users")


@router.post("/users/{user_id:int}")
def change_user(
    request: Request,
    session: DB,
    me: Admin,
    user_id: int,
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    user = accounts.get_user_by_id(session, user_id)
    if user is None:
        flash(request, "No such user.", "error")
        return _back("/users")
    try:
        if role:
            accounts.set_role(session, user.email, role)
        if password:
            web(request).accounts.set_password(session, user.email, password)
        session.commit()
        flash(request, f"Saved {user.email}.")
    except accounts.AccountError as exc:
        session.rollback()
        flash(request, f"Not saved: {exc}", "error")
    return _back("/users")


@router.post("/users/{user_id:int}/delete")
def delete_user(request: Request, session: DB, me: Admin, user_id: int) -> Response:
    user = accounts.get_user_by_id(session, user_id)
    if user is None or user.id == me.id:
        flash(request, "You cannot remove yourself here; another admin can.", "error")
        return _back("/users")
    try:
        accounts.remove_user(session, user.email)
        session.commit()
        flash(request, f"Removed {user.email}.")
    except accounts.AccountError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return _back("/users")


# --- settings ---------------------------------------------------------------------------


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
