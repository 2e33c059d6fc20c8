"""The composition root: the one place that builds the parts and hands them out.

Commands, the web app, the scheduler and workers all start from `build()`; no
other module reads settings from the environment or keeps global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from mailer.settings import Settings, load_settings

if TYPE_CHECKING:
    from mailer.delivery.dispatch import Worker
    from mailer.delivery.message import Identity
    from mailer.delivery.ratelimit import RateLimiter
    from mailer.delivery.transport import SMTPTransport
    from mailer.schedule.scheduler import CampaignScheduler


@dataclass
class Root:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    def upgrade_database(self) -> None:
        db.upgrade(self.engine)

    def scheduler(self) -> CampaignScheduler:
        """The campaign scheduler; its `start()` takes the one-per-database lock."""
        from mailer.authoring.render import Renderer
        from mailer.people.signups import PurgeChore
        from mailer.schedule.scheduler import CampaignScheduler

        return CampaignScheduler(
            self.engine,
            self.sessions,
            default_grace_seconds=self.settings.misfire_grace_seconds,
            poll_seconds=self.settings.scheduler_poll_seconds,
            make_renderer=lambda: Renderer.from_settings(self.settings),
            chores=[PurgeChore(self.sessions, self.settings.signup_expiry_days)],
        )

    def transport(self, limiter: RateLimiter | None = None) -> SMTPTransport:
        """A new SMTP connection; `limiter` rate-limits its `send` (the worker has its own)."""
        from mailer.delivery.transport import SMTPTransport

        return SMTPTransport.from_settings(self.settings, limiter)

    def identity(self) -> Identity:
        """What every message of this installation shares (links, list id, domains)."""
        from mailer.authoring.profile import load_profile
        from mailer.delivery.message import Identity

        profile = load_profile(self.settings.profile_path)
        settings = self.settings
        return Identity(
            public_base_url=settings.public_base_url,
            secret=settings.secret_key.get_secret_value(),
            sender_domain=settings.sender_domain,
            list_id=profile.list_id,
            list_name=profile.sender.name,
            unsubscribe_mailto=settings.list_unsubscribe_mailto,
            bounce_verp=settings.bounce_verp,
        )

    def worker(self, **options: Any) -> Worker:
        """A delivery worker with its own connections and rate limiter."""
        from mailer.delivery.dispatch import Worker
        from mailer.delivery.ratelimit import RateLimiter

        settings = self.settings
        limiter = RateLimiter(settings.smtp_rate_per_second, settings.smtp_rate_per_hour)
        sign = None
        if settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key_path:
            from mailer.delivery.dkim import make_signer

            sign = make_signer(
                settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key_path
            )
        return Worker(
            self.sessions,
            settings,
            self.transport,  # rate limits are the worker's, taken before each message
            self.identity(),
            sign=sign,
            limiter=limiter,
            **options,
        )

    def close(self) -> None:
        self.engine.dispose()


def build(settings: Settings | None = None) -> Root:
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(settings.resolved_database_url)
    return Root(settings=settings, engine=engine, sessions=db.session_factory(engine))
