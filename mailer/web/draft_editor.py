"""The block editor page of a draft: the form, live preview, validation as you type,
autosave and the two-editors conflict.

The page (`/drafts/{id}/edit`) is a shell with the draft's document as JSON; the
editor's JavaScript (static/editor/) builds the form from it. Three JSON endpoints
serve it: `check` validates a document with the server's model (the messages of
`mailer check`, keyed by field) and renders it through the same Renderer as sending,
`save` stores it through the drafts store (a version number on every save: a save
based on an older version is a 409 showing both), and the rendered preview itself
(`preview/{token}.html`, under the email CSP, for the sandboxed iframes). The server
validates every save: the browser's checks are only a convenience.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from mailer import urls
from mailer.authoring import checks
from mailer.authoring.content import BLOCK_TYPES
from mailer.authoring.loader import MAX_FILE_BYTES, ContentError
from mailer.authoring.render import fill, sample_values
from mailer.drafts.diff import diff
from mailer.drafts.document import issue_from_document, validate_document
from mailer.drafts.store import (
    DraftConflict,
    DraftNotFound,
    DraftRefused,
    DraftView,
    get_draft,
    save_draft,
)
from mailer.errors import UserInputError
from mailer.people.accounts import User
from mailer.timestamps import utcnow
from mailer.web import csrf
from mailer.web.auth import current_user
from mailer.web.context import web
from mailer.web.forms import DB
from mailer.web.pages import EMAIL_CSP
from subscribers.countries import country_name

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])

Editor = Annotated[User, Depends(current_user)]
Payload = Annotated[dict[str, Any], Body()]

# A draft is as large as a content file may be (1 MB), plus the request's own fields.
MAX_SAVE_BYTES = MAX_FILE_BYTES + 64 * 1024
# The countries of the newsletter's partners, offered first on statement cards.
COUNTRIES = ("CN", "KH", "LA", "MM", "TH", "VN")
NO_STORE = {"Cache-Control": "no-store"}


def install(app: FastAPI) -> None:
    """Add the editor's routes and its preview store to the app."""
    app.state.draft_previews = Previews()
    app.include_router(router)


# --- rendered previews ---------------------------------------------------------------


class Previews:
    """The latest rendered previews, by a random token, for the iframes to load.

    The email cannot be put into the page itself (the app's CSP forbids its inline
    styles), so `check` renders it once and both iframes fetch it under the email CSP.
    Bounded: an editor typing makes one entry per pause, old ones fall out.
    """

    SIZE = 64

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[int, int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, user_id: int, draft_id: int, html: str) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._entries[token] = (user_id, draft_id, html)
            while len(self._entries) > self.SIZE:
                self._entries.popitem(last=False)
        return token

    def get(self, user_id: int, draft_id: int, token: str) -> str | None:
        with self._lock:
            entry = self._entries.get(token)
        if entry is None or entry[:2] != (user_id, draft_id):
            return None
        return entry[2]


def _previews(request: Request) -> Previews:
    previews: Previews = request.app.state.draft_previews
    return previews


# --- field paths ---------------------------------------------------------------------

_INDEX = re.compile(r"\[(\d+)\]")


def field_key(path: str, document: dict[str, Any]) -> str:
    """One spelling of a field path for the page: `blocks.3.statement.text`.

    The store names fields `blocks.3.text`, the checks `blocks[3].statement.text`; the
    page marks each input with the dotted path through the document, block type
    included, so both are brought to that form.
    """
    parts = _INDEX.sub(r".\1", path).strip(".").split(".")
    if len(parts) >= 3 and parts[0] == "blocks" and parts[1].isdigit():
        blocks = document.get("blocks")
        index = int(parts[1])
        if parts[2] not in BLOCK_TYPES and isinstance(blocks, list) and index < len(blocks):
            block = blocks[index]
            if isinstance(block, dict) and len(block) == 1:
                kind = next(iter(block))
                if kind not in ("paragraph", "heading"):
                    parts.insert(2, str(kind))
    return ".".join(parts)


@dataclass(frozen=True)
class Message:
    field: str
    level: str
    message: str

    def json(self) -> dict[str, str]:
        return {"field": self.field, "level": self.level, "message": self.message}


def _problems(document: dict[str, Any], request: Request) -> list[Message]:
    profile = web(request).profile
    return [
        Message(field_key(p.field, document), p.level, p.message)
        for p in validate_document(document, profile)
    ]


# --- the page ------------------------------------------------------------------------


def _draft(session: DB, draft_id: int) -> DraftView:
    try:
        return get_draft(session, draft_id)
    except DraftNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _view_json(view: DraftView) -> dict[str, Any]:
    return {
        "id": view.id,
        "version": view.version,
        "document": view.document,
        "updated_at": view.updated_at.isoformat(),
        "head": view.head,
    }


@router.get("/drafts/{draft_id:int}/edit")
def edit_page(request: Request, session: DB, draft_id: int) -> Response:
    context = web(request)
    view = _draft(session, draft_id)
    countries = [(code, country_name(code)) for code in COUNTRIES]
    return context.pages.render(
        request,
        "draft_edit.html",
        draft=view,
        state=_view_json(view),
        countries=countries,
        newsletter=context.profile.id,
    )


@router.get("/drafts/{draft_id:int}.json")
def draft_json(session: DB, draft_id: int) -> Response:
    """The stored draft: what another editor saved, for the page to compare with."""
    return JSONResponse(_view_json(_draft(session, draft_id)), headers=NO_STORE)


# --- validation and preview ----------------------------------------------------------


def _document(payload: dict[str, Any]) -> dict[str, Any]:
    document = payload.get("document")
    if not isinstance(document, dict):
        raise HTTPException(422, "document: expected the issue as a JSON object")
    return document


@router.post("/drafts/{draft_id:int}/check", max_body_size=MAX_SAVE_BYTES)
def check(request: Request, session: DB, user: Editor, draft_id: int, payload: Payload) -> Response:
    """Validate a document as typed and render it: field messages, page-level checks,
    the plain-text part and a preview URL (none while the document cannot render)."""
    _draft(session, draft_id)
    document = _document(payload)
    return JSONResponse(check_document(request, user, draft_id, document), headers=NO_STORE)


def check_document(
    request: Request, user: User, draft_id: int, document: dict[str, Any]
) -> dict[str, Any]:
    """What `mailer check` says of the document (beside each field), and once it is an
    issue, the email rendered once for the preview, the text part and the checks of the
    rendered email (size against Gmail's clip, alt text, links)."""
    context = web(request)
    messages = _problems(document, request)  # the model's errors, or the fields' advice
    result: dict[str, Any] = {"problems": [], "findings": [], "preview": None, "text": None}
    errors = [m for m in messages if m.level == "error"]
    if errors:
        result["problems"] = [m.json() for m in errors]
        return result
    try:
        issue = issue_from_document(document, context.profile)
    except ContentError as exc:  # validate_document said nothing, but be sure
        result["problems"] = [
            Message(field_key(p.field, document), "error", p.message).json() for p in exc.problems
        ]
        return result
    renderer = context.renderer()
    findings = checks.check_images(issue)
    try:
        rendered = renderer.render(issue)
    except UserInputError as exc:
        findings.append(checks.Finding(checks.Level.ERROR, "render", str(exc)))
        result["findings"] = [m.json() for m in messages] + [
            _finding(f, document) for f in findings
        ]
        return result
    findings += checks.check_rendered(rendered)
    base = context.root.settings.public_base_url
    values = sample_values(base, urls.archive(base))
    html = fill(rendered.html, values, html=True)
    token = _previews(request).put(user.id, draft_id, html)
    result.update(
        findings=[m.json() for m in messages] + [_finding(f, document) for f in findings],
        preview=f"/drafts/{draft_id}/preview/{token}.html",
        text=fill(rendered.text, values, html=False),
        html_bytes=len(rendered.html.encode("utf-8")),
        limit_bytes=checks.MAX_HTML_BYTES,
    )
    return result


def _finding(finding: checks.Finding, document: dict[str, Any]) -> dict[str, str]:
    return Message(
        field_key(finding.field, document) if finding.field else "",
        str(finding.level),
        finding.message,
    ).json()


@router.get("/drafts/{draft_id:int}/preview/{token}.html")
def preview(request: Request, user: Editor, draft_id: int, token: str) -> Response:
    """A rendered preview for the sandboxed iframes: the email's own CSP, no scripts."""
    html = _previews(request).get(user.id, draft_id, token)
    if html is None:
        raise HTTPException(404, "This preview has expired; type on to make a new one.")
    return HTMLResponse(html, headers={"Content-Security-Policy": EMAIL_CSP, **NO_STORE})


# --- saving --------------------------------------------------------------------------


@router.post("/drafts/{draft_id:int}/save", max_body_size=MAX_SAVE_BYTES)
def save(request: Request, session: DB, user: Editor, draft_id: int, payload: Payload) -> Response:
    """Store the document as a new revision (or the current autosave), if it is based on
    the draft's current version: else 409 with theirs and the differences."""
    document = _document(payload)
    base_version = payload.get("base_version")
    autosave = payload.get("autosave", True)
    if not isinstance(base_version, int) or isinstance(base_version, bool):
        raise HTTPException(422, "base_version: expected the version the edits started from")
    if not isinstance(autosave, bool):
        raise HTTPException(422, "autosave: expected true or false")
    try:
        view = save_draft(
            session,
            draft_id,
            document,
            base_version=base_version,
            author_id=user.id,
            now=utcnow(),
            autosave=autosave,
        )
    except DraftNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except DraftConflict as exc:
        session.rollback()
        theirs = exc.current
        return JSONResponse(
            {
                "error": "Someone else saved this draft while you were editing it.",
                "current": _view_json(theirs),
                "changes": [str(change) for change in diff(theirs.document, document)],
            },
            status_code=409,
            headers=NO_STORE,
        )
    except DraftRefused as exc:
        session.rollback()
        return JSONResponse(
            {
                "error": "The server refused this document.",
                "problems": [
                    Message(field_key(p.field, document), "error", p.message).json()
                    for p in exc.errors
                ],
            },
            status_code=422,
            headers=NO_STORE,
        )
    session.commit()
    return JSONResponse(_view_json(view), headers=NO_STORE)
