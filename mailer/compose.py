"""The composition root: the one place that builds the parts and hands them out.

Commands, the web app, the scheduler and workers all start from `build()`; no
other module reads settings from the environment or keeps global state. The parts
(the renderer, the newsletter profile, the clock, SMTP connections, the message
identity) come from here and are handed to the functions that use them: library
functions take the part they need, never the root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailer.settings import Settings, load_settings
from subscribers.clock import utcnow  # the one clock (mailer.timestamps re-exports it)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from mailer.authoring.profile import Profile
    from mailer.authoring.render import Renderer
    from mailer.delivery.dispatch import Worker
    from mailer.delivery.message import Identity
    from mailer.delivery.ratelimit import RateLimiter
    from mailer.delivery.smtp import SMTPTransport
    from mailer.schedule.process import CampaignScheduler


@dataclass
class Root:
    settings: Settings
    clock: Callable[[], datetime] = field(default=utcnow, repr=False)
    _engine: Engine | None = field(default=None, repr=False, init=False)
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False, init=False)
    _renderer: Renderer | None = field(default=None, repr=False, init=False)
    _profile: Profile | None = field(default=None, repr=False, init=False)

    # Each part is built on first use, its module imported then: a command that needs no
    # database (`mailer check`, `mailer render`) never imports SQLAlchemy.
    @property
    def engine(self) -> Engine:
        """The database engine (SQLite or PostgreSQL, from the settings' URL)."""
        if self._engine is None:
            from mailer import db

            self._engine = db.make_engine(self.settings.resolved_database_url)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            from mailer import db

            self._sessions = db.session_factory(self.engine)
        return self._sessions

    def upgrade_database(self) -> None:
        from mailer import db

        db.upgrade(self.engine)

    @property
    def profile(self) -> Profile:
        """The newsletter profile (sender, masthead, list id), read once."""
        if self._profile is None:
            if self._renderer is not None:
                self._profile = self._renderer.profile
            else:
                from mailer.authoring.profile import load_profile

                self._profile = load_profile(self.settings.profile_path)
        return self._profile

    def renderer(self) -> Renderer:
        """The issue renderer, built on first use (it loads templates and the profile),
        then shared: Jinja2 reloads a changed template by itself."""
        if self._renderer is None:
            from mailer.authoring.media import MediaStore
            from mailer.authoring.render import Renderer

            settings = self.settings
            self._renderer = Renderer(
                settings.templates_dir,
                self.profile,
                MediaStore(settings.resolved_media_dir, settings.public_base_url),
            )
        return self._renderer

    def scheduler(self) -> CampaignScheduler:
        """The campaign scheduler; its `start()` takes the one-per-database lock."""
        from mailer.people.signup_purge import PurgeChore
        from mailer.schedule.process import CampaignScheduler

        return CampaignScheduler(
            self.engine,
            self.sessions,
            default_grace_seconds=self.settings.misfire_grace_seconds,
            poll_seconds=self.settings.scheduler_poll_seconds,
            make_renderer=self.renderer,
            clock=self.clock,
            chores=[PurgeChore(self.sessions, self.settings.signup_expiry_days)],
        )

    def transport(self, limiter: RateLimiter | None = None) -> SMTPTransport:
        """A new SMTP connection; `limiter` rate-limits its `send` (the worker has its own)."""
        from mailer.delivery.smtp import SMTPTransport

        return SMTPTransport.from_settings(self.settings, limiter)

    def identity(self) -> Identity:
        """What every message of this installation shares (links, list id, domains)."""
        from mailer.delivery.message import Identity

        profile = self.profile
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
        options.setdefault("clock", self.clock)
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
        if self._engine is not None:
            self._engine.dispose()


def build(settings: Settings | None = None) -> Root:
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Root(settings=settings)
