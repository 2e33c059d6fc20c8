"""Photos: upload (JSON for the block editor, a form for the library page), the media
library page with where each photo is used, deletion of unused ones, and /media/ itself.

`POST /media` (multipart field `file`, the session's CSRF token as a form field or the
X-CSRF-Token header; editors and admins) answers JSON: {"url", "hash", "width",
"height", ...} or a 4xx {"error": "..."} naming the file and the problem. `GET
/media.json` lists the uploads. Both are what the block editor uses; keep them stable.

The public /media/ URL serves an upload only once a document the public may see uses it
(`mailer.app.media.is_public`); staff see every upload. Files the renderer made for
emails (photos of content files, resized copies of uploads) are public as before: their
URLs are in the emails.
"""

from __future__ import annotations

import mimetypes
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer.app import media as usage
from mailer.authoring import media_library
from mailer.authoring.media import MediaStore, UploadError, UploadLimits
from mailer.authoring.media_library import MediaItem
from mailer.people.accounts import User
from mailer.settings import Settings
from mailer.web import confirm, csrf
from mailer.web.auth import EnrolmentRequired, LoginRequired, current_user
from mailer.web.context import web
from mailer.web.forms import DB, back, upload_name
from mailer.web.pages import flash

Editor = Annotated[User, Depends(current_user)]
HASH = re.compile(r"^[0-9a-f]{8,64}$")
SERVED = re.compile(r"^[A-Za-z0-9_-]{1,100}\.(jpg|jpeg|png|webp)$")
FORM_ROOM = 64 * 1024  # the multipart framing and the CSRF field around the file
PUBLIC_SECONDS = 60.0  # how long a "the public may see it" answer is kept

staff = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])
files = APIRouter()


@dataclass
class PublicMemo:
    """Uploads found in public documents, kept a minute: every mail client that opens an
    email asks for its photos, and each answer would otherwise read every content file."""

    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self, hash_: str) -> bool:
        with self.lock:
            found = self.seen.get(hash_)
            return found is not None and time.monotonic() - found < PUBLIC_SECONDS

    def remember(self, hash_: str) -> None:
        with self.lock:
            self.seen[hash_] = time.monotonic()

    def forget(self, hash_: str) -> None:
        with self.lock:
            self.seen.pop(hash_, None)


def install(app: FastAPI) -> None:
    """Add the media routes; the upload routes take bodies up to MAILER_MEDIA_MAX_BYTES."""
    settings: Settings = app.state.web.root.settings
    app.state.media_public = PublicMemo()
    uploads = APIRouter(dependencies=[Depends(current_user), Depends(csrf.verify)])
    limit = settings.media_max_bytes + FORM_ROOM
    uploads.add_api_route("/media", upload_json, methods=["POST"], max_body_size=limit)
    uploads.add_api_route(
        "/media/library/upload", upload_form, methods=["POST"], max_body_size=limit
    )
    app.include_router(uploads)
    app.include_router(staff)
    app.include_router(files)  # last: /media/{filename} must not hide /media/library


def _store(request: Request) -> MediaStore:
    settings = web(request).root.settings
    return MediaStore(settings.resolved_media_dir, settings.public_base_url)


def _limits(settings: Settings) -> UploadLimits:
    return UploadLimits(settings.media_max_bytes, settings.media_max_pixels)


def _issues_dir(request: Request) -> Path:
    return web(request).root.settings.resolved_issues_dir


def _status(exc: UploadError) -> int:
    return {"too-large": 413, "type": 415}.get(exc.code, 422)  # 422: empty or damaged


def _add(request: Request, session: Session, user: User, file: UploadFile) -> media_library.Added:
    settings = web(request).root.settings
    data = file.file.read(settings.media_max_bytes + 1)  # one byte more: "too large"
    added = media_library.add_upload(
        session,
        _store(request),
        data,
        upload_name(file, "photo"),
        file.content_type,
        _limits(settings),
        user_id=user.id,
    )
    session.commit()
    return added


def upload_json(request: Request, session: DB, user: Editor, file: UploadFile) -> Response:
    """The block editor's upload: 201 with the photo (200 when it was there already)."""
    try:
        added = _add(request, session, user, file)
    except UploadError as exc:
        return JSONResponse({"error": str(exc)}, status_code=_status(exc))
    body = _item_json(request, added.item, None, None)
    return JSONResponse(body, status_code=201 if added.created else 200)


def upload_form(request: Request, session: DB, user: Editor, file: UploadFile) -> Response:
    """The library page's upload form: back to the page, with what happened."""
    try:
        added = _add(request, session, user, file)
    except UploadError as exc:
        flash(request, f"Not uploaded: {exc}", "error")
        return back("/media/library")
    item = added.item
    if added.created:
        flash(request, f"Uploaded {item.original_filename} ({item.width} x {item.height} px).")
    else:
        flash(request, f"{upload_name(file, 'photo')} is already in the library.")
    return back(f"/media/library#photo-{item.hash}")


def _item_json(
    request: Request,
    item: MediaItem,
    used_in: list[usage.Usage] | None,
    uploader: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": _store(request).url_of(item.name),
        "hash": item.hash,
        "name": item.name,
        "width": item.width,
        "height": item.height,
        "bytes": item.bytes,
        "content_type": item.content_type,
        "filename": item.original_filename,
        "uploaded_at": item.uploaded_at.isoformat(),
    }
    if used_in is not None:
        body["used_in"] = [u.as_json() for u in used_in]
        body["uploaded_by"] = uploader
    return body


def _uploaders(session: Session, items: list[MediaItem]) -> dict[int, str]:
    ids = {item.uploaded_by for item in items if item.uploaded_by is not None}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.email).where(User.id.in_(ids)))
    return {user_id: email for user_id, email in rows}


@staff.get("/media.json")
def media_json(request: Request, session: DB) -> Response:
    """Every upload, newest first, with where it is used (the block editor's chooser)."""
    items = media_library.list_media(session)
    used = usage.where_used(session, _issues_dir(request), [i.hash for i in items])
    who = _uploaders(session, items)
    body = [
        _item_json(request, i, used[i.hash], who.get(i.uploaded_by) if i.uploaded_by else None)
        for i in items
    ]
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@staff.get("/media/library")
def library_page(request: Request, session: DB) -> Response:
    context = web(request)
    settings = context.root.settings
    items = media_library.list_media(session)
    return context.pages.render(
        request,
        "media_library.html",
        items=items,
        used=usage.where_used(session, _issues_dir(request), [i.hash for i in items]),
        uploaders=_uploaders(session, items),
        store=_store(request),
        max_bytes=settings.media_max_bytes,
        max_mb=f"{settings.media_max_bytes / (1024 * 1024):g}",
        max_megapixels=f"{settings.media_max_pixels / 1_000_000:g}",
        zone=settings.timezone,
    )


def _item_or_404(session: Session, hash_: str) -> MediaItem:
    item = media_library.find_media(session, hash_) if HASH.match(hash_) else None
    if item is None:
        raise HTTPException(404, f"No photo {hash_!r} in the library.")
    return item


@staff.post("/media/library/{hash_}/delete")
def delete_photo(
    request: Request, session: DB, hash_: str, confirm_: Annotated[str, Form(alias="confirm")] = ""
) -> Response:
    """Asks first; refuses while any document uses the photo."""
    item = _item_or_404(session, hash_)
    used = usage.where_used(session, _issues_dir(request), [item.hash])[item.hash]
    if used:
        places = "; ".join(f"{u.kind} {u.label}" for u in used)
        flash(request, f"{item.original_filename} is used ({places}): it was not deleted.", "error")
        return back(f"/media/library#photo-{item.hash}")
    if not confirm.confirmed(confirm_):
        return confirm.ask(
            request,
            title=f"Delete the photo {item.original_filename}?",
            consequences=[
                f"The photo {item.original_filename} ({item.width} x {item.height} px) is"
                " removed from the library and its file deleted.",
                f"Its address {_store(request).url_of(item.name)} stops working. No content"
                " file, campaign or draft uses it now.",
            ],
            action=f"/media/library/{item.hash}/delete",
            button="Delete the photo",
            back=f"/media/library#photo-{item.hash}",
            back_label="Keep the photo",
        )
    name = item.original_filename
    media_library.delete_media(session, _store(request), item)
    request.app.state.media_public.forget(hash_)
    flash(request, f"Deleted the photo {name}.")
    return back("/media/library")


def _viewer(request: Request, session: Session) -> User | None:
    """The signed-in staff member, or None for the public (no redirect to sign in)."""
    try:
        return current_user(request, session)
    except (LoginRequired, EnrolmentRequired):
        return None


@files.api_route("/media/{filename}", methods=["GET", "HEAD"])
def media_file(request: Request, session: DB, filename: str) -> Response:
    """A stored photo. An upload nobody uses yet is for staff only (404 to others)."""
    path = _store(request).path_of(filename) if SERVED.match(filename) else None
    if path is None:
        raise HTTPException(404, "Not found.")
    item = media_library.find_by_filename(session, filename)
    cache = "public, max-age=86400"
    if item is not None:
        memo: PublicMemo = request.app.state.media_public
        if memo.fresh(item.hash):
            pass
        elif usage.is_public(session, _issues_dir(request), item.hash):
            memo.remember(item.hash)
        elif _viewer(request, session) is not None:
            cache = "private, no-cache"
        else:
            raise HTTPException(404, "Not found.")
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": cache})
