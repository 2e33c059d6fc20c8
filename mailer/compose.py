"""The composition root: the one place that builds the parts and hands them out.

Commands, the web app, the scheduler and workers all start from `build()`; no
other module reads settings from the environment or keeps global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from mailer.settings import Settings, load_settings

if TYPE_CHECKING:
    from mailer.scheduler import CampaignScheduler


@dataclass
class Root:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    def upgrade_database(self) -> None:
        db.upgrade(self.engine)

    def scheduler(self) -> CampaignScheduler:
        """The campaign scheduler; its `start()` takes the one-per-database lock."""
        from mailer.scheduler import CampaignScheduler

        return CampaignScheduler(
            self.engine,
            self.sessions,
            default_grace_seconds=self.settings.misfire_grace_seconds,
            poll_seconds=self.settings.scheduler_poll_seconds,
        )

    def close(self) -> None:
        self.engine.dispose()


def build(settings: Settings | None = None) -> Root:
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(settings.resolved_database_url)
    return Root(settings=settings, engine=engine, sessions=db.session_factory(engine))
