"""Public pages, no login: unsubscribe (RFC 8058 one-click and the confirm page),
preferences, "view in browser" (the web copy), the archive of sent issues and its Atom
feed. (The sign-up pages at /subscribe are mailer.web.signup.)

The token in an unsubscribe URL (mailer.delivery.tokens) names one subscriber and proves the
link came from us; a page reached with it shows and changes only that subscriber,
and never says whether any other address is subscribed. GET requests never change
anything (mail scanners follow links); changes are POSTs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailer import urls
from mailer.app.errors import RecordNotFound, store_errors
from mailer.delivery import tokens
from mailer.delivery.tokens import InvalidToken
from mailer.languages import N_, translations
from mailer.web import csrf
from mailer.web.archive import (
    ArchiveEntry,
    atom_feed,
    issue_label,
    long_date,
    public_html,
    sent_issues,
)
from mailer.web.context import WebContext, db, web
from mailer.web.language import keep, language_context
from mailer.web.pages import EMAIL_CSP, mask
from subscribers import mailing_lists, repository
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


def _page(
    request: Request,
    template: str,
    title: str,
    status_code: int = 200,
    /,
    subscriber: Subscriber | None = None,
    **context: Any,
) -> Response:
    """A public page in its reader's language (mailer.web.language); `title` is the
    English message id (marked N_), translated here."""
    words = language_context(request, subscriber.language if subscriber else None)
    title = translations(words["lang"]).gettext(title)
    return web(request).pages.render(
        request, template, status_code, title=title, **words, **context
    )


def _invalid(request: Request) -> Response:
    return _page(request, "public/invalid.html", N_("This link is not valid"), 400)


@router.get("/unsubscribe")
def unsubscribe_help(request: Request) -> Response:
    """Where "view in browser" copies point: unsubscribing needs one's own email's link."""
    return _page(request, "public/unsubscribe_help.html", N_("Unsubscribe"))


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, session: DB, token: str) -> Response:
    try:
        subscriber_id = _subscriber_id(request, token)
    except InvalidToken:
        return _invalid(request)
    subscriber = _find(session, subscriber_id)
    return _page(
        request,
        "public/unsubscribe.html",
        N_("Unsubscribe"),
        subscriber=subscriber,
        token=token,
        address=mask(subscriber.email) if subscriber else None,
        done=subscriber is None or subscriber.status.value != "active",
        preferences_url=keep(urls.preferences("", token), request),
        action=keep(f"/unsubscribe/{token}", request),
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
    return RedirectResponse(keep(f"/unsubscribe/{token}", request), status_code=303)


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
    return _page(
        request,
        "public/preferences.html",
        N_("Your subscription"),
        400 if error else 200,
        subscriber=subscriber,
        token=token,
        action=keep(f"/preferences/{token}", request),
        address=mask(subscriber.email) if subscriber else None,
        lists=mailing_lists.preference_lists(session, subscriber_id) if subscriber else [],
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
            keep(f"/preferences/{token}{'?saved=1' if outcome else ''}", request), status_code=303
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
        offered = {lst.slug for lst in mailing_lists.preference_lists(session, subscriber_id)}
        unoffered = sorted({slug for slug in wanted if slug not in offered})
        if unoffered:
            return _unoffered(unoffered)
        repository.set_preferences(session, subscriber_id, wanted, source="preferences", ip=ip)
    return True


def _web_parts(request: Request, entry: ArchiveEntry) -> dict[str, str]:
    """The web copy's own top line and footer, in place of the email's (see
    `mailer.authoring.render.web_copy`): no recipient, no per-recipient links, no link to
    itself; in the reader's language (the issue's own words stay the issue's)."""
    env = web(request).pages.env
    words = language_context(request)
    label = issue_label(entry, words["lang"])
    return {
        part: env.get_template(f"public/web_copy_{part}.html").render(
            entry=entry, label=label, **words
        )
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
        return _page(request, "public/invalid.html", N_("This issue is not available"), 404)
    return HTMLResponse(html, headers={"Content-Security-Policy": EMAIL_CSP})


@router.get("/archive")
def archive_page(request: Request, session: DB) -> Response:
    return _page(
        request,
        "public/archive.html",
        N_("Archive"),
        entries=sent_issues(session),
        feed_url="/archive/feed.atom",
        issue_label=issue_label,
        long_date=long_date,
    )


@router.get("/archive/feed.atom")
def archive_feed(request: Request, session: DB) -> Response:
    settings = web(request).root.settings
    body = atom_feed(sent_issues(session), settings.public_base_url, web(request).profile.masthead)
    return Response(body, media_type="application/atom+xml; charset=utf-8")
