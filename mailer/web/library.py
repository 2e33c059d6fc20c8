"""The issues the web app knows: content files in the issues folder, plus any file a
campaign was made from, each with its campaign status.

Issues are addressed in URLs by file stem (`2022-13`); a file in the issues folder wins
over a campaign's file of the same stem elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.campaigns import Campaign
from mailer.content import ContentError, Issue, load_issue

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


def _load(key: str, path: Path, campaigns: list[Campaign]) -> IssueFile:
    try:
        return IssueFile(key, path, load_issue(path), None, campaigns)
    except ContentError as exc:
        return IssueFile(key, path, None, exc, campaigns)


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


def find_issue(issues_dir: Path, session: Session, key: str) -> IssueFile | None:
    if not KEY.match(key):
        return None
    path = _files(issues_dir, session).get(key)
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
    """A fingerprint of the content file and every template: the newest change time."""
    times = [path.stat().st_mtime_ns if path.exists() else 0]
    if templates_dir.is_dir():
        times.extend(p.stat().st_mtime_ns for p in templates_dir.rglob("*") if p.is_file())
    return str(max(times))
