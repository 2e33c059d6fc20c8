"""Admin pages: the subscribers (search, add, one subscriber's page, edit, unsubscribe,
erase).

Changes are made through the subscriber store's own functions (the same ones the CLI
uses), so the rules (validation, consent records, suppression) are the same; the
search filters are the application layer's (`mailer.app.subscribers`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from mailer.app import campaigns as app_campaigns
from mailer.app import subscribers as finder
from mailer.app.audiences import country_choices
from mailer.app.errors import RecordError, store_errors
from mailer.people import removals
from mailer.people.privacy import erase_person
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.confirm import ask, confirmed
from mailer.web.context import web
from mailer.web.forms import DB, INVALID, PAGE_SIZE, Errors, back, field_errors, page_number
from mailer.web.pages import flash
from subscribers import mailing_lists, repository, suppression
from subscribers import partners as partner_store
from subscribers.countries import country_names
from subscribers.errors import about
from subscribers.models import Subscriber, SubscriberStatus

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])


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
    page = page_number(page)
    error, total = None, 0
    rows: list[Subscriber] = []
    try:
        found = finder.SubscriberFilter.parse(
            filters["q"],
            country=filters["country"],
            partner=filters["partner"],
            list_slug=filters["list"],
            status=filters["status"],
        )
        rows = list(
            finder.search(session, found, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        )
        total = finder.count(session, found)
    except RecordError as exc:
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
        partners=partner_store.list_partners(session),
        lists=mailing_lists.list_lists(session),
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
        with store_errors():
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
    except RecordError as exc:
        session.rollback()
        typed = {"email": email, "name": name, "country": country, "partner": partner}
        return _subscribers_view(
            request,
            session,
            _filters("", "", "", "", ""),
            form={**typed, "lists": lists or []},
            errors=field_errors(exc),
        )
    note = _suppressed_note(session, subscriber.email)
    flash(request, f"Added {subscriber.email}.{note}", "warn" if note else "ok")
    return back(f"/subscribers/{subscriber.id}")


def _stored_form(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    partner = (
        partner_store.get_partner(session, subscriber.partner_id) if subscriber.partner_id else None
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
        partner_store.get_partner(session, subscriber.partner_id) if subscriber.partner_id else None
    )
    history = app_campaigns.history(session, subscriber.email)
    return web(request).pages.render(
        request,
        "subscriber.html",
        INVALID if errors else 200,
        deliveries=[row for row, _campaign in history],
        campaign_names={campaign.id: campaign.name for _row, campaign in history},
        s=subscriber,
        partner=partner,
        subscriptions=subscriptions,
        form=form or _stored_form(session, subscriber),
        errors=errors or {},
        suppressed=suppression.is_suppressed(session, subscriber.email),
        countries=country_choices(),
        partners=partner_store.list_partners(session),
        lists=mailing_lists.list_lists(session),
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
        with store_errors():
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
            with about("lists"):
                for slug in sorted(wanted - current):
                    repository.subscribe(session, subscriber_id, slug, source="web-admin")
                for slug in sorted(current - wanted):
                    repository.unsubscribe(session, subscriber_id, slug, source="web-admin")
        session.commit()
    except RecordError as exc:
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
        return _subscriber_view(
            request, session, subscriber_id, form=typed, errors=field_errors(exc)
        )
    message = f"Saved {subscriber.email}."
    if subscriber.timezone != old_zone and timezone.strip() in ("", old_zone):
        message += f" Time zone {old_zone} → {subscriber.timezone}, with the new country."
    note = _suppressed_note(session, subscriber.email) if subscriber.email != old_email else ""
    flash(request, message + note, "warn" if note else "ok")
    return back(f"/subscribers/{subscriber_id}")


@router.post("/subscribers/{subscriber_id:int}/unsubscribe")
def unsubscribe_subscriber(request: Request, session: DB, subscriber_id: int) -> Response:
    subscriber = repository.get_subscriber(session, subscriber_id)
    repository.unsubscribe(session, subscriber_id, source="web-admin")
    session.commit()
    flash(request, f"Unsubscribed {subscriber.email} from every list.")
    return back(f"/subscribers/{subscriber_id}")


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
    return back("/subscribers")
