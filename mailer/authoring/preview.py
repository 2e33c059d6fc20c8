"""The editor's local preview: the email at desktop and phone width beside its text part.

`mailer preview ISSUE` serves one page on 127.0.0.1. The page asks `/status` once a
second; the status carries a version made of the modification times of the issue
file, the images it uses, the templates and the profile, so saving any of them re-renders
and the page reloads its frames by itself. A broken file shows its problems on the
page instead of the email, and the preview picks up again once it is fixed.
"""

from __future__ import annotations

import hashlib
import html
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from mailer.authoring.checks import Finding, check_issue
from mailer.authoring.content import ImageBlock, Issue, load_issue
from mailer.authoring.loader import ContentError
from mailer.authoring.media import MediaStore
from mailer.authoring.profile import load_profile
from mailer.authoring.render import RenderedIssue, Renderer, Slot, fill, sample_values
from mailer.errors import UserInputError
from mailer.settings import Settings


@dataclass(frozen=True)
class Snapshot:
    """One rendering of the issue, or the problems that prevented it."""

    version: str
    rendered: RenderedIssue | None
    problems: list[str]
    findings: list[Finding]


class Preview:
    """Re-renders the issue whenever one of its inputs changed since the last look."""

    def __init__(self, issue_path: Path, settings: Settings) -> None:
        self.issue_path = issue_path
        self.settings = settings
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._images: list[Path] = []  # local photos and images of the last good load

    def inputs(self) -> list[Path]:
        paths = [self.issue_path, self.settings.profile_path]
        paths += sorted(p for p in self.settings.templates_dir.rglob("*.j2"))
        return paths + self._images

    def version(self) -> str:
        digest = hashlib.sha256()
        for path in self.inputs():
            try:
                stat = path.stat()
            except OSError:
                digest.update(f"{path}:missing".encode())
                continue
            digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
        return digest.hexdigest()[:16]

    def snapshot(self) -> Snapshot:
        with self._lock:
            version = self.version()
            if self._snapshot is None or self._snapshot.version != version:
                inputs = self.inputs()
                snapshot = self._render(version)
                if self.inputs() != inputs:  # the issue now uses other images: track them
                    snapshot = replace(snapshot, version=self.version())
                self._snapshot = snapshot
            return self._snapshot

    def _render(self, version: str) -> Snapshot:
        try:
            renderer = Renderer(
                self.settings.templates_dir,
                load_profile(self.settings.profile_path),
                MediaStore(self.settings.resolved_media_dir, self.settings.public_base_url),
            )
            issue = load_issue(self.issue_path)
            self._images = _local_images(issue)
            findings = check_issue(issue, renderer)
            rendered = renderer.render(issue)
        except ContentError as exc:
            return Snapshot(version, None, [str(p) for p in exc.problems], [])
        except UserInputError as exc:
            return Snapshot(version, None, [str(exc)], [])
        except Exception as exc:  # a template being edited may be broken in any way
            return Snapshot(version, None, [f"{type(exc).__name__}: {exc}"], [])
        return Snapshot(version, rendered, [], findings)


def _local_images(issue: Issue) -> list[Path]:
    sources = [s.photo for s in issue.statements if s.photo]
    sources += [b.image.src for b in issue.blocks if isinstance(b, ImageBlock)]
    local = (issue.resolve(src) for src in sources)
    return sorted({path for path in local if path is not None})


def create_app(issue_path: Path, settings: Settings) -> Starlette:
    """The preview web app for one issue file."""
    preview = Preview(issue_path, settings)

    def values(request: Request) -> Mapping[Slot, str]:
        return sample_values(settings.public_base_url, str(request.url_for("email_html")))

    async def page(request: Request) -> Response:
        page = (settings.templates_dir / "preview.html").read_text(encoding="utf-8")
        return HTMLResponse(page.replace("__FILE__", html.escape(str(issue_path))))

    async def status(request: Request) -> Response:
        snap = preview.snapshot()
        rendered = snap.rendered
        file = str(issue_path)
        return JSONResponse(
            {
                "version": snap.version,
                "ok": rendered is not None,
                "problems": snap.problems,
                "findings": [f.format(file) for f in snap.findings],
                "subject": rendered.subject if rendered else "",
                "preheader": rendered.preheader if rendered else "",
                "html_bytes": len(rendered.html.encode()) if rendered else 0,
            }
        )

    async def email_html(request: Request) -> Response:
        rendered = preview.snapshot().rendered
        if rendered is None:
            return HTMLResponse("<!doctype html><p>The issue has problems; see above.</p>", 409)
        return HTMLResponse(fill(rendered.html, values(request), html=True))

    async def email_txt(request: Request) -> Response:
        rendered = preview.snapshot().rendered
        if rendered is None:
            return PlainTextResponse("The issue has problems; see above.", 409)
        return PlainTextResponse(fill(rendered.text, values(request), html=False))

    async def media(request: Request) -> Response:
        store = MediaStore(settings.resolved_media_dir, settings.public_base_url)
        path = store.path_of(request.path_params["name"])
        if path is None:
            return PlainTextResponse("not found", 404)
        return FileResponse(path)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/status", status),
            Route("/email.html", email_html, name="email_html"),
            Route("/email.txt", email_txt),
            Route("/media/{name}", media),
        ]
    )


def serve(issue_path: Path, settings: Settings, host: str, port: int) -> None:
    """Run the preview until interrupted (photos are served from this server too)."""
    import uvicorn

    local = settings.model_copy(update={"public_base_url": f"http://{host}:{port}"})
    uvicorn.run(create_app(issue_path, local), host=host, port=port, log_level="warning")
