"""Editor pages: the issues (list, upload, preview at two widths, send me a test).

Editors and admins may use every page here; posts need the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer import urls
from mailer.authoring.checks import check_issue
from mailer.authoring.content import load_issue_text
from mailer.authoring.loader import MAX_FILE_BYTES, TOO_LARGE, ContentError, Problem, decode_text
from mailer.authoring.render import Slot, fill
from mailer.delivery.testsend import send_test
from mailer.drafts.store import list_drafts
from mailer.errors import MailerError
from mailer.people.accounts import User
from mailer.web import csrf, library
from mailer.web.auth import current_user
from mailer.web.context import WebContext, web
from mailer.web.forms import DB, back, upload_name
from mailer.web.pages import EMAIL_CSP, flash

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])

Editor = Annotated[User, Depends(current_user)]

MAX_UPLOAD_BYTES = MAX_FILE_BYTES  # the CLI reads no larger file either


# --- issues -----------------------------------------------------------------------------


@router.get("/issues")
def issues_page(request: Request, session: DB) -> Response:
    context = web(request)
    return context.pages.render(
        request,
        "issues.html",
        issues=library.list_issues(context.root.settings.resolved_issues_dir, session),
        drafts=list_drafts(session),
        problems=None,
        filename=None,
    )


@router.post("/issues/upload", max_body_size=MAX_UPLOAD_BYTES + 64 * 1024)
def upload_issue(request: Request, session: DB, file: UploadFile) -> Response:
    """A sync handler (run in the thread pool): validation and the database would block
    the event loop otherwise; the upload is already spooled by the form parser."""
    context = web(request)
    name = upload_name(file, "upload.yaml")
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    problems: list[Problem] = []
    try:
        if len(data) > MAX_UPLOAD_BYTES:
            raise ContentError([Problem(name, None, "", TOO_LARGE)])
        text = decode_text(data, name)
        issue = load_issue_text(text, name)
    except ContentError as exc:
        problems = exc.problems
    if problems:
        return context.pages.render(  # 200: the page itself is fine (browsers log 4xx as errors)
            request,
            "issues.html",
            issues=library.list_issues(context.root.settings.resolved_issues_dir, session),
            problems=problems,
            filename=name,
        )
    issues_dir = context.root.settings.resolved_issues_dir
    replaced = (issues_dir / f"{issue.slug}.yaml").exists()
    path = library.store_upload(issues_dir, issue, text)
    note = " It replaces the earlier file (campaigns already frozen keep what they froze)."
    flash(
        request,
        f"Uploaded {name}: issue {issue.number}, {issue.year} is valid."
        + (note if replaced else ""),
    )
    return back(f"/issues/{path.stem}")


def _sample_values(base: str, user: User) -> dict[Slot, str]:
    """What an editor sees in the slots: their own name and address, harmless links."""
    return {
        Slot.UNSUBSCRIBE_URL: f"{base}/unsubscribe",
        Slot.PREFERENCES_URL: f"{base}/unsubscribe",
        Slot.VIEW_URL: urls.archive(base),
        Slot.NAME: user.name or user.email,
        Slot.EMAIL: user.email,
    }


def _issue_or_404(context: WebContext, session: Session, key: str) -> library.IssueFile:
    found = library.find_issue(context.root.settings.resolved_issues_dir, session, key)
    if found is None:
        raise HTTPException(
            404, f"No issue {key!r} in {context.root.settings.resolved_issues_dir}."
        )
    return found


@router.get("/issues/{key}")
def issue_page(request: Request, session: DB, user: Editor, key: str) -> Response:
    context = web(request)
    found = _issue_or_404(context, session, key)
    rendered, render_error = None, None
    if found.issue is not None:
        try:
            rendered = context.renderer().render(found.issue)
        except MailerError as exc:
            render_error = str(exc)
    values = _sample_values(context.root.settings.public_base_url, user)
    return context.pages.render(
        request,
        "issue.html",
        found=found,
        issue=found.issue,
        problems=found.error.problems if found.error else [],
        render_error=render_error,
        rendered=rendered,
        text=fill(rendered.text, values, html=False) if rendered else "",
        html_kb=len(rendered.html.encode()) / 1024 if rendered else 0,
        findings=check_issue(found.issue, context.renderer()) if found.issue else [],
        stamp=library.stamp(found.path, context.root.settings.templates_dir),
    )


@router.get("/issues/{key}/stamp")
def issue_stamp(request: Request, session: DB, key: str) -> Response:
    """Changes whenever the content file or a template changes; the preview page polls it
    every 2 s, so it looks at file stamps only and parses nothing."""
    context = web(request)
    path = library.find_path(context.root.settings.resolved_issues_dir, session, key)
    if path is None:
        raise HTTPException(404, f"No issue {key!r}.")
    stamp = library.stamp(path, context.root.settings.templates_dir)
    return JSONResponse({"stamp": stamp}, headers={"Cache-Control": "no-store"})


@router.get("/issues/{key}/preview.html")
def issue_preview_html(request: Request, session: DB, user: Editor, key: str) -> Response:
    """The rendered email alone, for the preview iframes (sandboxed, no scripts)."""
    context = web(request)
    found = _issue_or_404(context, session, key)
    if found.issue is None:
        raise HTTPException(422, "This content file has errors; fix them to see a preview.")
    rendered = context.renderer().render(found.issue)
    values = _sample_values(context.root.settings.public_base_url, user)
    return HTMLResponse(
        fill(rendered.html, values, html=True), headers={"Content-Security-Policy": EMAIL_CSP}
    )


@router.post("/issues/{key}/test")
def test_send(request: Request, session: DB, user: Editor, key: str) -> Response:
    """A copy to the signed-in editor's own address, subject marked [TEST]."""
    context = web(request)
    found = _issue_or_404(context, session, key)
    if found.issue is None:
        flash(request, "Fix the content errors before sending a test.", "error")
        return back(f"/issues/{key}")
    try:
        root = context.root
        [(_address, reply)] = send_test(
            root.identity(),
            root.profile,
            root.transport,
            context.renderer().render(found.issue),
            [(user.email, user.name)],
        )
    except MailerError as exc:
        flash(request, f"The test was not sent: {exc}", "error")
    else:
        flash(request, f"Test sent to {user.email} (server: {reply}).")
    return back(f"/issues/{key}")
