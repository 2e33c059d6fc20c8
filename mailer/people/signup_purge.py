"""Deleting sign-ups nobody confirmed in time: `mailer subscribers purge-unconfirmed` and
the scheduler's hourly chore share this.

A module of its own, apart from `mailer.people.signups` (which renders confirmation
emails), so that a store command loads no renderer to purge."""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from subscribers import signups

log = logging.getLogger(__name__)


def purge(sessions: sessionmaker[Session], keep_days: int) -> signups.Purged:
    with sessions.begin() as session:
        return signups.purge_unconfirmed(session, keep_days=keep_days)


class PurgeChore:
    """Run by the scheduler at each re-read: purges unconfirmed sign-ups once an hour."""

    def __init__(self, sessions: sessionmaker[Session], keep_days: int) -> None:
        self.sessions, self.keep_days = sessions, keep_days
        self._last = float("-inf")

    def __call__(self) -> None:
        if time.monotonic() - self._last < 3600:
            return
        self._last = time.monotonic()
        done = purge(self.sessions, self.keep_days)
        if done.signups:
            log.info("purged %s unconfirmed sign-ups", done.signups)
