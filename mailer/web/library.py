"""The issues the web app knows: content files in the issues folder, plus any file a
campaign was made from, each with its campaign status.

Issues are addressed in URLs by file stem (`2022-13`); a file in the issues folder wins
over a campaign's file of the same stem elsewhere. Parsed files are kept in memory by
file stamp (see `ParsedIssues`), so pages and the preview's poll do not parse a large
issue again on every request.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.authoring.content import Issue, load_issue_text
from mailer.authoring.loader import ContentError, read_text
from mailer.delivery.campaigns import Campaign

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class IssueFile:
    key: str
    path: Path
    issue: Issue | None
    error: ContentError | None
    campaigns: list[Campaign] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The furthest any campaign of this issue got: what an editor wants to know."""
        if self.error is not None:
            return "invalid"
        states = {c.state for c in self.campaigns}
        for state in ("sent", "sending", "paused", "scheduled", "missed", "draft", "failed"):
            if state in states:
                return state
        return "not sent"


def _files(issues_dir: Path, session: Session) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(session.scalars(select(Campaign.issue_path).distinct())):
        candidate = Path(path)
        if candidate.suffix in (".yaml", ".yml") and KEY.match(candidate.stem):
            found[candidate.stem] = candidate
    if issues_dir.is_dir():
        for candidate in sorted(issues_dir.glob("*.y*ml")):
            if candidate.suffix in (".yaml", ".yml") and KEY.match(candidate.stem):
                found[candidate.stem] = candidate.resolve()
    return found


@dataclass(frozen=True)
class _Parsed:
    stamp: tuple[int, int]  # (mtime_ns, size)
    digest: bytes
    parsed_at_ns: int
    issue: Issue | None
    error: ContentError | None


class ParsedIssues:
    """Parsed content files by path, valid while the file's stamp (mtime_ns, size) is.

    Parsing is a pure function of the file's bytes, so a copy is as good as a parse.
    A file written within `RACY_NS` of its parse may have changed again in the same
    clock tick with the same size (file times are coarse): such an entry is checked
    against a hash of the bytes, as git does for "racily clean" files.
    """

    RACY_NS = 2_000_000_000
    SIZE = 64

    def __init__(self) -> None:
        self._entries: OrderedDict[Path, _Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path) -> tuple[Issue | None, ContentError | None]:
        """(issue, None) or (None, its errors), parsing only when the file changed."""
        try:
            status = path.stat()
        except OSError:
            return self._parse(path, None)
        stamp = (status.st_mtime_ns, status.st_size)
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                self._entries.move_to_end(path)
        if entry is not None and entry.stamp == stamp:
            if entry.parsed_at_ns - stamp[0] > self.RACY_NS:
                return entry.issue, entry.error
            try:
                same = hashlib.sha256(path.read_bytes()).digest() == entry.digest
            except OSError:
                same = False
            if same:
                return entry.issue, entry.error
        return self._parse(path, stamp)

    def _parse(
        self, path: Path, stamp: tuple[int, int] | None
    ) -> tuple[Issue | None, ContentError | None]:
        parsed_at = time.time_ns()  # before reading: a later write is then "racy"
        issue: Issue | None = None
        error: ContentError | None = None
        digest = b""
        try:
            text = read_text(path)
            digest = hashlib.sha256(text.encode("utf-8")).digest()
            issue = load_issue_text(text, str(path), source=path.resolve())
        except ContentError as exc:
            error = exc
        if stamp is not None and digest:
            with self._lock:
                self._entries[path] = _Parsed(stamp, digest, parsed_at, issue, error)
                self._entries.move_to_end(path)
                while len(self._entries) > self.SIZE:
                    self._entries.popitem(last=False)
        return issue, error


# One memo for the process: entries are keyed by path and stamp, so they are right for
# every app and request that asks (the web app, tests that build several apps).
PARSED = ParsedIssues()


def _load(key: str, path: Path, campaigns: list[Campaign]) -> IssueFile:
    issue, error = PARSED.load(path)
    return IssueFile(key, path, issue, error, campaigns)


def list_issues(issues_dir: Path, session: Session) -> list[IssueFile]:
    """Every known issue, newest first; invalid files last (noticed, but not in the way)."""
    by_path: dict[str, list[Campaign]] = {}
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id.desc())):
        by_path.setdefault(campaign.issue_path, []).append(campaign)
    items = [
        _load(key, path, by_path.get(str(path), []))
        for key, path in _files(issues_dir, session).items()
    ]
    return sorted(
        items,
        key=lambda i: (i.issue is not None, i.issue.date if i.issue else None, i.key),
        reverse=True,
    )


def find_path(issues_dir: Path, session: Session, key: str) -> Path | None:
    """The file behind `key`, without parsing it (what the preview's poll needs)."""
    if not KEY.match(key):
        return None
    return _files(issues_dir, session).get(key)


def find_issue(issues_dir: Path, session: Session, key: str) -> IssueFile | None:
    path = find_path(issues_dir, session, key)
    if path is None:
        return None
    campaigns = list(
        session.scalars(
            select(Campaign).where(Campaign.issue_path == str(path)).order_by(Campaign.id.desc())
        )
    )
    return _load(key, path, campaigns)


def store_upload(issues_dir: Path, issue: Issue, text: str) -> Path:
    """Save a validated upload as `<slug>.yaml`; returns the path (replacing an older copy)."""
    issues_dir.mkdir(parents=True, exist_ok=True)
    path = issues_dir / f"{issue.slug}.yaml"
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def stamp(path: Path, templates_dir: Path) -> str:
    """A fingerprint of the content file (change time and size) and every template (the
    newest change time): cheap enough for the preview to poll, no parsing."""
    try:
        status = path.stat()
        own = f"{status.st_mtime_ns}-{status.st_size}"
    except OSError:
        own = "missing"
    times = [0]
    if templates_dir.is_dir():
        times.extend(p.stat().st_mtime_ns for p in templates_dir.rglob("*") if p.is_file())
    return f"{own}-{max(times)}"
