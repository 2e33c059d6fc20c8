"""Public pages, no login: unsubscribe (RFC 8058 one-click and the confirm page),
preferences, "view in browser" (the web copy), the archive of sent issues and its Atom
feed. (The sign-up pages at /subscribe are mailer.web.signup.)

The token in an unsubscribe URL (mailer.delivery.tokens) names one subscriber and proves the
link came from us; a page reached with it shows and changes only that subscriber,
and never says whether any other address is subscribed. GET requests never change
anything (mail scanners follow links); changes are POSTs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailer import urls
from mailer.app.errors import RecordNotFound, store_errors
from mailer.delivery import tokens
from mailer.delivery.tokens import InvalidToken
from mailer.web import csrf
from mailer.web.archive import ArchiveEntry, atom_feed, public_html, sent_issues
from mailer.web.context import WebContext, db, web
from mailer.web.pages import EMAIL_CSP, mask
from subscribers import repository
from subscribers.models import Subscriber, SubscriptionStatus

router = APIRouter()

DB = Annotated[Session, Depends(db)]
ONE_CLICK = "One-Click"


def _subscriber_id(request: Request, token: str) -> int:
    return tokens.read_token(web(request).root.settings.secret_key.get_secret_value(), token)


def _find(session: Session, subscriber_id: int) -> Subscriber | None:
    try:
        with store_errors():
            return repository.get_subscriber(session, subscriber_id)
    except RecordNotFound:
        return None  # erased: treat as already unsubscribed, say nothing more


def _invalid(request: Request) -> Response:
    return web(request).pages.render(
        request, "public/invalid.html", 400, title="This link is not valid"
    )


@router.get("/unsubscribe")
def unsubscribe_help(request: Request) -> Response:
    """Where "view in browser" copies point: unsubscribing needs one's own email's link."""
    return web(request).pages.render(request, "public/unsubscribe_help.html", title="Unsubscribe")


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, session: DB, token: str) -> Response:
    try:
        subscriber_id = _subscriber_id(request, token)
    except InvalidToken:
        return _invalid(request)
    subscriber = _find(session, subscriber_id)
    return web(request).pages.render(
        request,
        "public/unsubscribe.html",
        title="Unsubscribe",
        token=token,
        address=mask(subscriber.email) if subscriber else None,
        done=subscriber is None or subscriber.status.value != "active",
        preferences_url=urls.preferences("", token),
    )


@router.post("/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str) -> Response:
    """RFC 8058 one-click (no cookie, login or CSRF token), or the confirm page's button."""
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == ONE_CLICK
    if not one_click:
        await csrf.verify(request)
    try:
        subscriber_id = _subscriber_id(request, token)
    except InvalidToken:
        if one_click:
            return PlainTextResponse("invalid unsubscribe link\n", status_code=400)
        return _invalid(request)
    await run_in_threadpool(
        _unsubscribe, web(request), subscriber_id, "one-click" if one_click else "unsubscribe-page"
    )
    if one_click:
        return PlainTextResponse("unsubscribed\n")
    return RedirectResponse(f"/unsubscribe/{token}", status_code=303)


def _preferences(
    request: Request,
    session: Session,
    token: str,
    subscriber_id: int,
    *,
    saved: bool = False,
    error: str | None = None,
) -> Response:
    """The preferences page: the public lists and the private lists the person is on."""
    subscriber = _find(session, subscriber_id)
    active: set[str] = set()
    if subscriber is not None and subscriber.status.value == "active":
        active = {
            s.list.slug
            for s in repository.subscriptions_of(session, subscriber_id)
            if s.status == SubscriptionStatus.ACTIVE
        }
    blocked = subscriber is not None and subscriber.status.value in ("bounced", "complained")
    return web(request).pages.render(
        request,
        "public/preferences.html",
        400 if error else 200,
        title="Your subscription",
        token=token,
        address=mask(subscriber.email) if subscriber else None,
        lists=repository.preference_lists(session, subscriber_id) if subscriber else [],
        active=active,
        blocked=blocked,
        saved=saved,
        error=error,
    )


@router.get("/preferences/{token}")
def preferences_page(request: Request, session: DB, token: str, saved: int = 0) -> Response:
    try:
        subscriber_id = _subscriber_id(request, token)
    except InvalidToken:
        return _invalid(request)
    return _preferences(request, session, token, subscriber_id, saved=bool(saved))


@router.post("/preferences/{token}", dependencies=[Depends(csrf.verify)])
async def save_preferences(request: Request, token: str) -> Response:
    """Exactly the ticked lists, chosen among those the page offers. A list it does not
    offer (a private list the person is not on, or no list at all) refuses the whole
    post with the page and a message: nothing is granted, and nothing else changes."""
    try:
        subscriber_id = _subscriber_id(request, token)
    except InvalidToken:
        return _invalid(request)
    form = await request.form()
    wanted = [str(v) for v in form.getlist("lists")]
    ip = request.client.host if request.client else None
    context = web(request)
    outcome = await run_in_threadpool(_set_preferences, context, subscriber_id, wanted, ip)
    if isinstance(outcome, bool):
        return RedirectResponse(
            f"/preferences/{token}{'?saved=1' if outcome else ''}", status_code=303
        )

    def refused_page() -> Response:
        with context.root.sessions() as session:
            return _preferences(request, session, token, subscriber_id, error=outcome)

    return await run_in_threadpool(refused_page)


def _unoffered(slugs: list[str]) -> str:
    """The message for lists the page does not offer; the same whether such a list
    exists (private) or not, so the answer says nothing about private lists."""
    shown = ", ".join(repr(slug[:64]) for slug in slugs[:3])
    more = f" and {len(slugs) - 3} more" if len(slugs) > 3 else ""
    return f"lists: {shown}{more} cannot be chosen here. Nothing was changed."


def _unsubscribe(context: WebContext, subscriber_id: int, source: str) -> None:
    with context.root.sessions.begin() as session:
        if _find(session, subscriber_id) is not None:
            repository.unsubscribe(session, subscriber_id, source=source)


def _set_preferences(
    context: WebContext, subscriber_id: int, wanted: list[str], ip: str | None
) -> bool | str:
    """True when saved, False when the person cannot be changed here (erased, bounced,
    complained), or the message refusing lists the page does not offer them."""
    with context.root.sessions.begin() as session:
        subscriber = _find(session, subscriber_id)
        if subscriber is None or subscriber.status.value in ("bounced", "complained"):
            return False
        offered = {lst.slug for lst in repository.preference_lists(session, subscriber_id)}
        unoffered = sorted({slug for slug in wanted if slug not in offered})
        if unoffered:
            return _unoffered(unoffered)
        repository.set_preferences(session, subscriber_id, wanted, source="preferences", ip=ip)
    return True


def _web_parts(request: Request, entry: ArchiveEntry) -> dict[str, str]:
    """The web copy's own top line and footer, in place of the email's (see
    `mailer.authoring.render.web_copy`): no recipient, no per-recipient links, no link to itself."""
    env = web(request).pages.env
    return {
        part: env.get_template(f"public/web_copy_{part}.html").render(entry=entry)
        for part in ("top", "footer")
    }


@router.get("/view/{campaign_id:int}")
def view_in_browser(
    request: Request, session: DB, campaign_id: int, lang: str | None = None
) -> Response:
    """The web copy; `?lang=` (in each subscriber's link) picks their variant."""
    html = public_html(
        session,
        web(request).root.settings,
        campaign_id,
        lambda entry: _web_parts(request, entry),
        language=lang,
    )
    if html is None:
        return web(request).pages.render(
            request, "public/invalid.html", 404, title="This issue is not available"
        )
    return HTMLResponse(html, headers={"Content-Security-Policy": EMAIL_CSP})


@router.get("/archive")
def archive_page(request: Request, session: DB) -> Response:
    return web(request).pages.render(
        request,
        "public/archive.html",
        title="Archive",
        entries=sent_issues(session),
        feed_url="/archive/feed.atom",
    )


@router.get("/archive/feed.atom")
def archive_feed(request: Request, session: DB) -> Response:
    settings = web(request).root.settings
    body = atom_feed(sent_issues(session), settings.public_base_url, web(request).profile.masthead)
    return Response(body, media_type="application/atom+xml; charset=utf-8")
