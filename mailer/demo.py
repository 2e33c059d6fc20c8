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

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer, with_sample_values
from mailer.compose import Root
from mailer.delivery import campaigns
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.capture import list_captured
from mailer.people.accounts import Accounts, Role, list_users
from mailer.settings import REPO_DIR
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


def prepare(
    root: Root,
    examples: Path = EXAMPLES_DIR,
    *,
    send: Callable[[Root], None],
    say: Callable[[str], None] = lambda _line: None,
) -> DemoReport:
    """Database, demo data, admin, rendered files and one campaign per seed issue.

    `send` runs a worker until nothing is due; the caller provides it so the
    capture server (or a test's SMTP server) is up while it runs.
    """
    report = DemoReport()
    say("upgrading the database")
    root.upgrade_database()
    with root.sessions.begin() as session:
        imported = seed_demo(session, examples / "subscribers.csv")
        report.subscribers_added = imported.created
        if not list_users(session):
            report.admin_password = secrets.token_urlsafe(12)
            Accounts().create_user(
                session, DEMO_ADMIN, report.admin_password, role=Role.ADMIN, name="Demo admin"
            )
    say(f"demo subscribers: {report.subscribers_added} added")

    renderer = Renderer.from_settings(root.settings)
    out_dir = root.settings.data_dir / "rendered"
    out_dir.mkdir(parents=True, exist_ok=True)
    issue_paths = sorted((examples / "issues").glob("*.yaml"))
    for path in issue_paths:
        html_uri = (out_dir / f"{path.stem}.html").resolve().as_uri()
        rendered = with_sample_values(
            renderer.render(load_issue(path)), root.settings.public_base_url, html_uri
        )
        for suffix, body in ((".html", rendered.html), (".txt", rendered.text)):
            target = out_dir / f"{path.stem}{suffix}"
            target.write_text(body, encoding="utf-8")
            report.rendered.append(target)
    say(f"rendered {len(issue_paths)} issues into {out_dir}")

    for path in issue_paths:
        campaign_id, state = _campaign_for(root, path)
        if state in (CampaignState.DRAFT, CampaignState.SENDING, CampaignState.PAUSED):
            campaigns.start_sending(root.sessions, campaign_id, renderer=renderer)
    say("sending to the capture server")
    send(root)

    with root.sessions() as session:
        for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
            report.campaigns.append((campaign.id, campaign.name, campaign.state))
    report.captured = len(list_captured(root.settings.resolved_capture_dir))
    return report


def _campaign_for(root: Root, path: Path) -> tuple[int, CampaignState]:
    """The demo campaign of this issue and its state: the existing one, or a new draft."""
    issue = load_issue(path)
    with root.sessions.begin() as session:
        existing = session.scalars(
            select(Campaign).where(Campaign.issue_slug == issue.slug).order_by(Campaign.id)
        ).first()
        if existing is not None and existing.state != CampaignState.CANCELLED:
            return existing.id, CampaignState(existing.state)
        sender = Renderer.from_settings(root.settings).profile.sender
        campaign = campaigns.create_campaign(
            session,
            name=f"Issue {issue.number}, {issue.year}",
            issue_path=path,
            issue=issue,
            sender=f"{sender.name} <{sender.address}>",
            reply_to=sender.reply_to,
            audience=Audience(lists=(DEMO_LIST,)),
        )
        return campaign.id, CampaignState.DRAFT
