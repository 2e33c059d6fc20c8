"""Admin pages: subscribers, partners, lists, suppression, CSV import/export, users.

Every route here needs a signed-in admin and, for posts, the session's CSRF token.
Changes are made through the subscriber store's own functions (the same ones the CLI
uses), so the rules (validation, consent records, suppression) are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer.delivery import ledger
from mailer.delivery.campaigns import Campaign
from mailer.people import accounts, removals
from mailer.people.accounts import User
from mailer.people.privacy import erase_person
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.confirm import ask, confirmed
from mailer.web.context import db, web
from mailer.web.pages import flash
from subscribers import repository, suppression
from subscribers.countries import REGION, country_names
from subscribers.csvio import import_csv, iter_csv
from subscribers.errors import ImportRejected, Problem, StoreError, about
from subscribers.models import Subscriber, SubscriberStatus

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])

Admin = Annotated[User, Depends(require_admin)]
DB = Annotated[Session, Depends(db)]
PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # keeps the OFFSET inside the databases' integers
MAX_IMPORT_BYTES = 50_000_000
INVALID = 400  # a form that failed validation comes back with this status
BOM = "\ufeff"  # spreadsheets read UTF-8 CSV as UTF-8 only after a byte-order mark

Errors = dict[str, str]


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _errors(exc: StoreError | accounts.AccountError, default: str = "") -> Errors:
    """The message keyed by the field it is about ("" for the form as a whole), shown
    beside that field when the form comes back with what was typed."""
    return {getattr(exc, "field", None) or default: str(exc)}


def _suppressed_note(session: Session, email: str) -> str:
    """What to add to "Added"/"Saved" when the address is suppressed (an erased person
    added again, an old bounce): it will not be mailed, whatever its lists say."""
    entry = suppression.find_suppression(session, email)
    if entry is None:
        return ""
    why = "it was erased earlier" if entry.email is None else f"reason: {entry.reason}"
    return (
        f" It stays on the suppression list ({why}), so it will not be mailed;"
        " remove it there only if the person asked to receive mail again."
    )


def country_choices() -> list[tuple[str, str]]:
    """The region's six countries first, then every other code by name."""
    names = country_names()
    rest = sorted((c for c in names if c not in REGION), key=lambda c: names[c])
    return [(c, names[c]) for c in (*REGION, *rest)]


# --- subscribers ------------------------------------------------------------------------


def _filters(q: str, country: str, partner: str, list_: str, status: str) -> dict[str, str]:
    return {"q": q, "country": country, "partner": partner, "list": list_, "status": status}


def _subscribers_view(
    request: Request,
    session: Session,
    filters: dict[str, str],
    page: int = 1,
    *,
    form: dict[str, Any] | None = None,
    errors: Errors | None = None,
) -> Response:
    page = min(max(page, 1), MAX_PAGE)
    error, total = None, 0
    rows: list[Subscriber] = []
    try:
        criteria: dict[str, Any] = {
            "country": filters["country"] or None,
            "partner": filters["partner"] or None,
            "list_slug": filters["list"] or None,
            "status": SubscriberStatus(filters["status"]) if filters["status"] else None,
        }
        rows = list(
            repository.search_subscribers(
                session,
                filters["q"],
                **criteria,
                limit=PAGE_SIZE + 1,
                offset=(page - 1) * PAGE_SIZE,
            )
        )
        total = repository.count_subscribers(session, filters["q"], **criteria)
    except (StoreError, ValueError) as exc:
        rows, error = [], str(exc)
    return web(request).pages.render(
        request,
        "subscribers.html",
        INVALID if errors else 200,
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        total=total,
        first=(page - 1) * PAGE_SIZE + 1,
        filters=filters,
        error=error,
        countries=country_choices(),
        names=country_names(),
        partners=repository.list_partners(session),
        lists=repository.list_lists(session),
        statuses=[s.value for s in SubscriberStatus],
        form=form or {"email": "", "name": "", "country": "", "partner": "", "lists": []},
        errors=errors or {},
    )


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
    return _subscribers_view(request, session, _filters(q, country, partner, list, status), page)


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
        typed = {"email": email, "name": name, "country": country, "partner": partner}
        return _subscribers_view(
            request,
            session,
            _filters("", "", "", "", ""),
            form={**typed, "lists": lists or []},
            errors=_errors(exc),
        )
    note = _suppressed_note(session, subscriber.email)
    flash(request, f"Added {subscriber.email}.{note}", "warn" if note else "ok")
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
        form={},
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
    typed = {
        "list_slug": list_slug,
        "encoding": encoding,
        "dry_run": dry_run,
        "skip_invalid": skip_invalid,
        "create_partners": create_partners,
    }
    return web(request).pages.render(
        request,
        "import.html",
        INVALID if problems else 200,
        lists=repository.list_lists(session),
        report=report,
        problems=problems,
        filename=name,
        form=typed if problems else {},  # after a rejection, the options as they were chosen
    )


@router.get("/subscribers/export.csv")
def export_subscribers(
    request: Request,
    session: DB,
    q: str = "",
    list: str = "",
    country: str = "",
    partner: str = "",
    status: str = "",
) -> Response:
    """The subscribers the page shows with these filters, as UTF-8 CSV with a byte-order
    mark (so spreadsheets read Thai and Khmer right) in the columns the import reads,
    formula-like cells neutralised; streamed in batches, never held in memory whole."""
    known = [s.value for s in SubscriberStatus]
    if status and status not in known:
        raise HTTPException(400, f"status: {status!r} is not one of {', '.join(known)}")
    filters: dict[str, Any] = {
        "text": q,
        "list_slug": list or None,
        "country": country or None,
        "partner": partner or None,
        "statuses": [SubscriberStatus(status)] if status else None,
        "active_on_list": True,  # as on the page: the list's active members
    }
    iter_csv(session, **filters)  # a bad filter is a 400 page now, not a broken download
    sessions = web(request).root.sessions

    def chunks() -> Iterator[bytes]:
        # Its own session: the request's is closed once the handler has returned.
        with sessions() as stream_session:
            yield BOM.encode("utf-8")
            for text, _rows in iter_csv(stream_session, **filters):
                yield text.encode("utf-8")

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


def _stored_form(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    partner = (
        repository.get_partner(session, subscriber.partner_id) if subscriber.partner_id else None
    )
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "country": subscriber.country or "",
        "partner": partner.name if partner else "",
        "language": subscriber.language,
        "timezone": subscriber.timezone,
        "status": subscriber.status.value,
        "lists": [
            x.list.slug
            for x in repository.subscriptions_of(session, subscriber.id)
            if x.status.value == "active"
        ],
    }


def _subscriber_view(
    request: Request,
    session: Session,
    subscriber_id: int,
    *,
    form: dict[str, Any] | None = None,
    errors: Errors | None = None,
) -> Response:
    """The subscriber's page; after a failed save, with what was typed and the errors."""
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
        INVALID if errors else 200,
        deliveries=deliveries,
        campaign_names=names,
        s=subscriber,
        partner=partner,
        subscriptions=subscriptions,
        form=form or _stored_form(session, subscriber),
        errors=errors or {},
        suppressed=suppression.is_suppressed(session, subscriber.email),
        countries=country_choices(),
        partners=repository.list_partners(session),
        lists=repository.list_lists(session),
        statuses=[s.value for s in SubscriberStatus],
    )


@router.get("/subscribers/{subscriber_id:int}")
def subscriber_page(request: Request, session: DB, subscriber_id: int) -> Response:
    return _subscriber_view(request, session, subscriber_id)


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
    """Save the form. A failed save comes back with what was typed and the error beside
    its field; a new country moves a default time zone as the CLI does (one library rule)."""
    before = repository.get_subscriber(session, subscriber_id)
    old_email, old_zone = before.email, before.timezone
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
        try:
            for slug in sorted(wanted - current):
                repository.subscribe(session, subscriber_id, slug, source="web-admin")
            for slug in sorted(current - wanted):
                repository.unsubscribe(session, subscriber_id, slug, source="web-admin")
        except StoreError as exc:
            exc.field = exc.field or "lists"
            raise
        session.commit()
    except StoreError as exc:
        session.rollback()
        typed = {
            "email": email,
            "name": name,
            "country": country,
            "partner": partner,
            "language": language,
            "timezone": timezone,
            "status": status,
            "lists": lists or [],
        }
        return _subscriber_view(request, session, subscriber_id, form=typed, errors=_errors(exc))
    message = f"Saved {subscriber.email}."
    if subscriber.timezone != old_zone and timezone.strip() in ("", old_zone):
        message += f" Time zone {old_zone} → {subscriber.timezone}, with the new country."
    note = _suppressed_note(session, subscriber.email) if subscriber.email != old_email else ""
    flash(request, message + note, "warn" if note else "ok")
    return _back(f"/subscribers/{subscriber_id}")


@router.post("/subscribers/{subscriber_id:int}/unsubscribe")
def unsubscribe_subscriber(request: Request, session: DB, subscriber_id: int) -> Response:
    subscriber = repository.get_subscriber(session, subscriber_id)
    repository.unsubscribe(session, subscriber_id, source="web-admin")
    session.commit()
    flash(request, f"Unsubscribed {subscriber.email} from every list.")
    return _back(f"/subscribers/{subscriber_id}")


@router.get("/subscribers/{subscriber_id:int}/erase")
@router.post("/subscribers/{subscriber_id:int}/erase")
def erase_subscriber(
    request: Request, session: DB, subscriber_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    subscriber = repository.get_subscriber(session, subscriber_id)
    if request.method != "POST" or not confirmed(confirm):
        return ask(
            request,
            title=f"Erase {subscriber.email}?",
            consequences=removals.erase_consequences(session, subscriber_id),
            action=f"/subscribers/{subscriber_id}/erase",
            button="Erase for good",
            back=f"/subscribers/{subscriber_id}",
        )
    erase_person(session, subscriber.email, reason="erased by an operator on request")
    session.commit()
    flash(request, "Erased. Only a hash stays on the suppression list.")
    return _back("/subscribers")


# --- partners -------------------------------------------------------------------------


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
    partners = repository.list_partners(session)
    editing = next((p for p in partners if p.id == edit), None)
    if edit is not None and editing is None:
        raise HTTPException(404, "Not found.")
    return web(request).pages.render(
        request,
        "partners.html",
        INVALID if errors else 200,
        partners=partners,
        contacts=repository.partner_contact_counts(session),
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
        partner = repository.add_partner(session, name, country or None)
        session.commit()
    except StoreError as exc:
        session.rollback()
        return _partners_view(
            request,
            session,
            form={"name": name, "country": country},
            errors={f"add-{k}": v for k, v in _errors(exc, "name").items()},
        )
    flash(request, f"Added partner {partner.name}.")
    return _back("/partners")


@router.post("/partners/{partner_id:int}")
def update_partner(
    request: Request,
    session: DB,
    partner_id: int,
    name: Annotated[str, Form()],
    country: Annotated[str, Form()] = "",
) -> Response:
    repository.get_partner(session, partner_id)  # 404 before anything else
    try:
        repository.update_partner(session, partner_id, name=name, country=country or None)
        session.commit()
    except StoreError as exc:
        session.rollback()
        return _partners_view(
            request,
            session,
            edit=partner_id,
            form={"name": name, "country": country},
            errors=_errors(exc, "name"),
        )
    flash(request, "Partner saved.")
    return _back("/partners")


@router.get("/partners/{partner_id:int}/delete")
@router.post("/partners/{partner_id:int}/delete")
def remove_partner(
    request: Request, session: DB, partner_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    partner = repository.get_partner(session, partner_id)
    if request.method != "POST" or not confirmed(confirm):
        return ask(
            request,
            title=f"Remove partner {partner.name}?",
            consequences=removals.partner_consequences(session, partner_id),
            action=f"/partners/{partner_id}/delete",
            button="Remove partner",
            back="/partners",
        )
    repository.remove_partner(session, partner_id)
    session.commit()
    flash(request, f"Removed partner {partner.name}; its contacts stay, without a partner.")
    return _back("/partners")


# --- lists ------------------------------------------------------------------------------


def _lists_view(
    request: Request,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    errors: Errors | None = None,
    row: str | None = None,
) -> Response:
    """`form` and `errors` are the add form's, or with `row` (a slug) that row's."""
    lists = repository.list_lists(session)
    counts = {c.slug: c for c in repository.list_counts(session)}
    empty = {"slug": "", "name": "", "description": "", "public": False}
    return web(request).pages.render(
        request,
        "lists.html",
        INVALID if errors else 200,
        lists=lists,
        counts=counts,
        archived=repository.list_lists(session, archived=True),
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
        repository.add_list(session, slug, name or None, description, public=public)
        session.commit()
    except StoreError as exc:
        session.rollback()
        typed = {"slug": slug, "name": name, "description": description, "public": public}
        return _lists_view(request, session, form=typed, errors=_errors(exc, "slug"))
    flash(request, f"Added {'public' if public else 'private'} list {slug}.")
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
    repository.get_list(session, slug)  # 404 before anything else
    try:
        with about("name"):
            repository.update_list(session, slug, name=name, description=description, public=public)
        session.commit()
    except StoreError as exc:
        session.rollback()
        typed = {"name": name, "description": description, "public": public}
        return _lists_view(request, session, form=typed, errors=_errors(exc), row=slug)
    flash(request, f"Saved {'public' if public else 'private'} list {slug}.")
    return _back("/lists")


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
    return _back("/lists")


# --- suppression ------------------------------------------------------------------------


def _suppression_view(
    request: Request,
    session: Session,
    page: int = 1,
    *,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> Response:
    page = min(max(page, 1), MAX_PAGE)
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
        with about("email"):
            suppression.suppress(session, email, reason)
        session.commit()
    except StoreError as exc:
        session.rollback()
        return _suppression_view(
            request, session, form={"email": email, "reason": reason}, errors=_errors(exc)
        )
    flash(request, f"{email.strip()} will never be mailed again.")
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


def _users_view(
    request: Request,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
    row: int | None = None,
) -> Response:
    """`errors` belong to the add form, or with `row` to that user's row."""
    return web(request).pages.render(
        request,
        "users.html",
        INVALID if errors else 200,
        users=accounts.list_users(session),
        roles=[r.value for r in accounts.Role],
        form=form or {"email": "", "name": "", "role": "editor"},
        errors=(errors or {}) if row is None else {},
        row=row,
        row_errors=(errors or {}) if row is not None else {},
    )


@router.get("/users")
def users_page(request: Request, session: DB) -> Response:
    return _users_view(request, session)


def _check(field: str, check: Any, value: str) -> None:
    try:
        check(value)
    except accounts.AccountError as exc:
        raise _FieldError(field, str(exc)) from None


class _FieldError(Exception):
    """An account field refused before the account is created, with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@router.post("/users")
def create_user(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()] = "editor",
    name: Annotated[str, Form()] = "",
) -> Response:
    typed = {"email": email, "name": name, "role": role}
    try:
        _check("email", accounts.normalise_email, email)
        _check("name", accounts.check_name, name)
        _check("password", accounts.check_password, password)
        _check("role", accounts.parse_role, role)
        try:
            user = web(request).accounts.create_user(session, email, password, role=role, name=name)
            session.commit()
        except accounts.AccountError as exc:
            session.rollback()
            raise _FieldError("email", str(exc)) from None
    except _FieldError as exc:
        return _users_view(request, session, form=typed, errors={exc.field: str(exc)})
    flash(request, f"Created {user.role} {user.email}.")
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
        raise HTTPException(404, "Not found.")
    try:
        if role:
            _check("role", accounts.parse_role, role)
        if password:
            _check("password", accounts.check_password, password)
        try:
            if role:
                accounts.set_role(session, user.email, role)
            if password:
                web(request).accounts.set_password(session, user.email, password)
            session.commit()
        except accounts.AccountError as exc:
            session.rollback()
            raise _FieldError("role", str(exc)) from None
    except _FieldError as exc:
        return _users_view(request, session, errors={exc.field: str(exc)}, row=user_id)
    flash(request, f"Saved {user.email}.")
    return _back("/users")


@router.get("/users/{user_id:int}/delete")
@router.post("/users/{user_id:int}/delete")
def delete_user(
    request: Request,
    session: DB,
    me: Admin,
    user_id: int,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    user = accounts.get_user_by_id(session, user_id)
    if user is None:
        raise HTTPException(404, "Not found.")
    if user.id == me.id:
        flash(request, "You cannot remove yourself here; another admin can.", "error")
        return _back("/users")
    if request.method != "POST" or not confirmed(confirm):
        return ask(
            request,
            title=f"Remove user {user.email}?",
            consequences=removals.user_consequences(session, user),
            action=f"/users/{user_id}/delete",
            button="Remove user",
            back="/users",
        )
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
