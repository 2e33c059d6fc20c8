"""The demo: the whole path from a draft to an inbox on one machine.

`mailer demo` (and the README's first command) prepares a database with the demo
subscribers and an admin account, renders both seed issues, sends them as
campaigns through the local capture server, and then serves the web app. Every
step is idempotent, so running the demo again sends nothing twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailer.app.campaigns import create_from_issue
from mailer.authoring.content import load_issue
from mailer.authoring.profile import Profile
from mailer.authoring.render import Renderer, with_sample_values
from mailer.delivery import lifecycle
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.capture import list_captured
from mailer.people.accounts import Accounts, Role, list_users
from mailer.settings import REPO_DIR, Settings
from subscribers.audience import Audience
from subscribers.demo import seed_demo

EXAMPLES_DIR = REPO_DIR / "examples"
DEMO_ADMIN = "admin@example.org"
DEMO_LIST = "newsletter"


@dataclass
class DemoReport:
    """What the demo did, for the command to print."""

    subscribers_added: int = 0
    admin_password: str | None = None  # set only when the admin was created now
    rendered: list[Path] = field(default_factory=list)
    campaigns: list[tuple[int, str, str]] = field(default_factory=list)  # id, name, state
    captured: int = 0


@dataclass(frozen=True)
class DemoPlace:
    """Where the demo writes its files and what its links point at."""

    rendered_dir: Path  # the seed issues as HTML and text files
    capture_dir: Path  # where the capture server stores what was sent
    public_base_url: str

    @classmethod
    def of(cls, settings: Settings) -> DemoPlace:
        return cls(
            rendered_dir=settings.data_dir / "rendered",
            capture_dir=settings.resolved_capture_dir,
            public_base_url=settings.public_base_url,
        )


def prepare(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    place: DemoPlace,
    *,
    upgrade: Callable[[], None],
    send: Callable[[], None],
    examples: Path = EXAMPLES_DIR,
    say: Callable[[str], None] = lambda _line: None,
) -> DemoReport:
    """Database (`upgrade` brings its schema up to date), demo data, admin, rendered
    files and one campaign per seed issue.

    `send` runs a worker until nothing is due; the caller provides it so the
    capture server (or a test's SMTP server) is up while it runs.
    """
    report = DemoReport()
    say("upgrading the database")
    upgrade()
    with sessions.begin() as session:
        imported = seed_demo(session, examples / "subscribers.csv")
        report.subscribers_added = imported.created
        if not list_users(session):
            report.admin_password = secrets.token_urlsafe(12)
            Accounts().create_user(
                session, DEMO_ADMIN, report.admin_password, role=Role.ADMIN, name="Demo admin"
            )
    say(f"demo subscribers: {report.subscribers_added} added")

    out_dir = place.rendered_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    issue_paths = sorted((examples / "issues").glob("*.yaml"))
    for path in issue_paths:
        html_uri = (out_dir / f"{path.stem}.html").resolve().as_uri()
        rendered = with_sample_values(
            renderer.render(load_issue(path)), place.public_base_url, html_uri
        )
        for suffix, body in ((".html", rendered.html), (".txt", rendered.text)):
            target = out_dir / f"{path.stem}{suffix}"
            target.write_text(body, encoding="utf-8")
            report.rendered.append(target)
    say(f"rendered {len(issue_paths)} issues into {out_dir}")

    # One campaign per issue, made from its main file; `2022-13.zh.yaml` and the other
    # language variants beside it are rendered above, not campaigns of their own.
    for path in (path for path in issue_paths if "." not in path.stem):
        with sessions.begin() as session:
            campaign_id, state = _campaign_for(session, renderer.profile, path)
        if state in (CampaignState.DRAFT, CampaignState.SENDING, CampaignState.PAUSED):
            lifecycle.start_sending(sessions, campaign_id, renderer=renderer)
    say("sending to the capture server")
    send()

    with sessions() as session:
        for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
            report.campaigns.append((campaign.id, campaign.name, campaign.state))
    report.captured = len(list_captured(place.capture_dir))
    return report


def _campaign_for(session: Session, profile: Profile, path: Path) -> tuple[int, CampaignState]:
    """The demo campaign of this issue and its state: the existing one, or a new draft
    with the defaults every campaign made from an issue gets."""
    issue = load_issue(path)
    existing = session.scalars(
        select(Campaign).where(Campaign.issue_slug == issue.slug).order_by(Campaign.id)
    ).first()
    if existing is not None and existing.state != CampaignState.CANCELLED:
        return existing.id, CampaignState(existing.state)
    campaign = create_from_issue(session, profile, path, issue, Audience(lists=(DEMO_LIST,)))
    return campaign.id, CampaignState.DRAFT
