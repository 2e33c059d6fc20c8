"""Editor pages of drafts, besides the editor itself: a new draft, the import of a
file into a draft, a draft's history (revisions, the changes between any two,
restoring one) and a revision's own read-only page with its rendered email.

Editors and admins only (the router's `current_user`); posts need the session's CSRF
token. The block editor (`/drafts/N/edit`) is another page module's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer import urls
from mailer.authoring.loader import MAX_FILE_BYTES, ContentError, Problem
from mailer.authoring.render import RenderedIssue, Slot, fill
from mailer.delivery.campaigns import Campaign
from mailer.drafts import store
from mailer.drafts.diff import diff
from mailer.drafts.document import FieldProblem, issue_from_document, validate_document
from mailer.errors import MailerError
from mailer.people.accounts import User
from mailer.web import confirm as confirm_page
from mailer.web import csrf, library
from mailer.web.auth import current_user
from mailer.web.context import WebContext, web
from mailer.web.forms import DB, back, upload_name
from mailer.web.pages import EMAIL_CSP, flash

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])

Editor = Annotated[User, Depends(current_user)]

# .docx files are zip archives of XML: a long issue with its styles stays far below this.
MAX_IMPORT_BYTES = 5 * MAX_FILE_BYTES


def edit_url(draft_id: int) -> str:
    return f"/drafts/{draft_id}/edit"


def _draft_or_404(session: Session, draft_id: int) -> store.DraftView:
    try:
        return store.get_draft(session, draft_id)
    except store.DraftNotFound:
        raise HTTPException(404, f"No draft {draft_id}.") from None


def _revision_or_404(session: Session, draft_id: int, number: int) -> store.RevisionView:
    try:
        return store.get_revision(session, draft_id, number)
    except store.DraftNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _emails(session: Session) -> dict[int, str]:
    return {uid: email for uid, email in session.execute(select(User.id, User.email))}


@router.post("/drafts/new")
def new_draft(request: Request, session: DB, user: Editor) -> Response:
    """An empty draft (the profile's newsletter and language filled in), then its editor."""
    context = web(request)
    document: dict[str, Any] = {
        "newsletter": context.profile.id,
        "language": context.profile.language,
        "blocks": [],
    }
    draft = store.create_draft(session, document, author_id=user.id, now=context.root.clock())
    session.commit()
    return back(edit_url(draft.id))


@router.post("/drafts/import", max_body_size=MAX_IMPORT_BYTES + 64 * 1024)
def import_draft(request: Request, session: DB, user: Editor, file: UploadFile) -> Response:
    """A .yaml, .txt or .docx file into a new draft; the page that answers shows what the
    importer could not place with certainty. A file it cannot read comes back on the
    Issues page with each problem (line and field), and no draft is made."""
    from mailer.authoring.importer import import_bytes

    context = web(request)
    name = upload_name(file, "upload")
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    try:
        imported = import_bytes(data, name, context.profile)
        draft = store.create_draft(
            session, imported.document, author_id=user.id, now=context.root.clock(), kind="import"
        )
        session.commit()
    except ContentError as exc:
        session.rollback()
        return _issues_with_problems(request, session, context, exc.problems, name)
    except store.DraftRefused as exc:
        session.rollback()
        problems = [Problem(name, None, e.field, e.message) for e in exc.errors]
        return _issues_with_problems(request, session, context, problems, name)
    return _revision_page(
        request,
        session,
        user,
        draft.id,
        draft.head,
        imported_from=name,
        warnings=imported.warnings,
    )


def _issues_with_problems(
    request: Request,
    session: Session,
    context: WebContext,
    problems: list[Problem],
    name: str,
) -> Response:
    return context.pages.render(  # 200: the page itself is fine (browsers log 4xx as errors)
        request,
        "issues.html",
        issues=library.list_issues(context.root.settings.resolved_issues_dir, session),
        drafts=store.list_drafts(session),
        emails=_emails(session),
        problems=problems,
        filename=name,
    )


@router.get("/drafts/{draft_id:int}/history")
def history_page(
    request: Request,
    session: DB,
    draft_id: int,
    old: int | None = None,
    new: int | None = None,
) -> Response:
    """The revisions, newest first; with `old` and `new`, the changes between the two."""
    draft = _draft_or_404(session, draft_id)
    revisions = store.history(session, draft_id)
    numbers = {r.number for r in revisions}
    changes = None
    if old is not None or new is not None:
        old = old if old in numbers else (draft.head - 1 if draft.head > 1 else draft.head)
        new = new if new in numbers else draft.head
        changes = diff(
            store.get_revision(session, draft_id, old).document,
            store.get_revision(session, draft_id, new).document,
        )
    return web(request).pages.render(
        request,
        "draft_history.html",
        draft=draft,
        revisions=revisions,
        emails=_emails(session),
        campaigns=_campaigns_by_revision(session, [r.id for r in revisions]),
        old=old if old is not None else (draft.head - 1 if draft.head > 1 else draft.head),
        new=new if new is not None else draft.head,
        changes=changes,
        edit_url=edit_url(draft_id),
        zone=web(request).root.settings.timezone,
    )


def _campaigns_by_revision(session: Session, revision_ids: list[int]) -> dict[int, list[Campaign]]:
    found: dict[int, list[Campaign]] = {}
    if not revision_ids:
        return found
    query = (
        select(Campaign)
        .where(Campaign.draft_revision_id.in_(revision_ids))
        .order_by(Campaign.id.desc())
    )
    for campaign in session.scalars(query):
        if campaign.draft_revision_id is not None:
            found.setdefault(campaign.draft_revision_id, []).append(campaign)
    return found


@router.post("/drafts/{draft_id:int}/restore")
def restore_revision(
    request: Request,
    session: DB,
    user: Editor,
    draft_id: int,
    revision: Annotated[int, Form()],
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Restore a revision as a new one, after asking (what the draft holds now stays in
    the history)."""
    draft = _draft_or_404(session, draft_id)
    old = _revision_or_404(session, draft_id, revision)
    if not confirm_page.confirmed(confirm):
        changed = len(diff(draft.document, old.document))
        return confirm_page.ask(
            request,
            title=f"Restore revision {old.number} of “{draft.title}”?",
            consequences=[
                f"The draft's content becomes revision {old.number}'s (“{old.title}”), saved"
                f" as a new revision {draft.head + 1}: {changed} change"
                f"{'s' if changed != 1 else ''} from what it holds now.",
                f"What the draft holds now (revision {draft.head}) is not deleted: it stays in"
                " the history and can be restored in turn.",
                "Anyone editing the draft in another window is told that it changed"
                " before they save.",
            ],
            action=f"/drafts/{draft_id}/restore",
            button=f"Restore revision {old.number}",
            back=f"/drafts/{draft_id}/history",
            back_label="Keep the draft as it is",
            fields={"revision": str(old.number)},
        )
    restored = store.restore(
        session, draft_id, old.number, author_id=user.id, now=web(request).root.clock()
    )
    session.commit()
    flash(request, f"Restored revision {old.number} as revision {restored.head}.")
    return back(f"/drafts/{draft_id}/history")


@router.get("/drafts/{draft_id:int}/revisions/{number:int}")
def revision_page(
    request: Request, session: DB, user: Editor, draft_id: int, number: int
) -> Response:
    """One revision, read-only: its fields, what `mailer check` says and its email."""
    return _revision_page(request, session, user, draft_id, number)


def _revision_page(
    request: Request,
    session: Session,
    user: User,
    draft_id: int,
    number: int,
    *,
    imported_from: str | None = None,
    warnings: list[str] | None = None,
) -> Response:
    context = web(request)
    draft = _draft_or_404(session, draft_id)
    revision = _revision_or_404(session, draft_id, number)
    problems: list[FieldProblem] = validate_document(
        revision.document, context.profile, context.renderer()
    )
    rendered, render_error = _render(context, revision, draft_id)
    values = _sample_values(context.root.settings.public_base_url, user)
    return context.pages.render(
        request,
        "draft_revision.html",
        draft=draft,
        revision=revision,
        author=_emails(session).get(revision.author_id or 0),
        problems=problems,
        rendered=rendered,
        render_error=render_error,
        text=fill(rendered.text, values, html=False) if rendered else "",
        campaigns=_campaigns_by_revision(session, [revision.id]).get(revision.id, []),
        edit_url=edit_url(draft_id),
        imported_from=imported_from,
        warnings=warnings or [],
        zone=context.root.settings.timezone,
    )


def _render(
    context: WebContext, revision: store.RevisionView, draft_id: int
) -> tuple[RenderedIssue | None, str | None]:
    try:
        issue = issue_from_document(revision.document, context.profile, f"draft {draft_id}")
        return context.renderer().render(issue), None
    except ContentError:
        return None, None  # the problems are listed on the page
    except MailerError as exc:
        return None, str(exc)


@router.get("/drafts/{draft_id:int}/revisions/{number:int}/preview.html")
def revision_preview_html(
    request: Request, session: DB, user: Editor, draft_id: int, number: int
) -> Response:
    """The revision's rendered email alone, for the preview iframes (no scripts)."""
    context = web(request)
    revision = _revision_or_404(session, draft_id, number)
    rendered, render_error = _render(context, revision, draft_id)
    if rendered is None:
        raise HTTPException(422, render_error or "This revision has errors; see its page.")
    values = _sample_values(context.root.settings.public_base_url, user)
    return HTMLResponse(
        fill(rendered.html, values, html=True), headers={"Content-Security-Policy": EMAIL_CSP}
    )


def _sample_values(base: str, user: User) -> dict[Slot, str]:
    """What an editor sees in the slots: their own name and address, harmless links."""
    return {
        Slot.UNSUBSCRIBE_URL: f"{base}/unsubscribe",
        Slot.PREFERENCES_URL: f"{base}/unsubscribe",
        Slot.VIEW_URL: urls.archive(base),
        Slot.NAME: user.name or user.email,
        Slot.EMAIL: user.email,
    }
