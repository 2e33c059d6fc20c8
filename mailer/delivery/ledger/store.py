"""The ledger as the delivery worker's store: everything the send loop asks of the
database, so the worker itself holds no SQL (`mailer.delivery.dispatch.Store` is the
interface it uses; this is its one implementation).

Claims, renewals, releases and skips each run in a short transaction of their own.
Outcomes are recorded on one connection kept for the purpose, so a commit costs no
pool round trip; every commit is durable (PostgreSQL's default synchronous commit):
a sent message's record is never lost, not even to a database crash.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.ledger import claims, outcomes
from mailer.delivery.ledger.claims import Job
from mailer.delivery.ledger.outcomes import Outcome
from mailer.delivery.ledger.withdrawn import audience_lists, withdrawn


class SqlLedger:
    """The ledger rows of one worker (`worker`, the name its claims are marked with)."""

    def __init__(self, sessions: sessionmaker[Session], worker: str) -> None:
        self.sessions = sessions
        self.worker = worker
        self.engine: Engine = sessions.kw["bind"]
        self.postgres = self.engine.dialect.name == "postgresql"
        self._claim = claims.claim_postgresql if self.postgres else claims.claim_sqlite
        # Timestamps for the recorder's raw SQL, in the form the ORM stores them.
        self._stamp = outcomes.timestamp_binder(self.engine.dialect)
        self._recorder: Connection | None = None
        self._lists: dict[int, tuple[str, ...]] = {}  # campaign id -> its audience's lists

    def claim(self, limit: int, now: datetime, lease_until: datetime) -> tuple[list[Job], int]:
        """Take up to `limit` due rows of sending campaigns and skip those whose person
        left since they were queued: (the jobs to send, how many were skipped)."""
        with self.sessions.begin() as session:
            active = list(
                session.scalars(select(Campaign.id).where(Campaign.state == CampaignState.SENDING))
            )
            if not active:
                return [], 0
            jobs = self._claim(session, active, self.worker, limit, now, lease_until)
            return self._drop_withdrawn(session, jobs)

    def drop_withdrawn(self, jobs: Sequence[Job]) -> tuple[list[Job], int]:
        """Record `skipped` the jobs whose person left (one query): (the others, how many
        were skipped)."""
        with self.sessions.begin() as session:
            return self._drop_withdrawn(session, jobs)

    def _drop_withdrawn(self, session: Session, jobs: Sequence[Job]) -> tuple[list[Job], int]:
        if not jobs:
            return list(jobs), 0
        campaign_ids = {job.campaign_id for job in jobs}
        missing = sorted(campaign_ids - self._lists.keys())
        if missing:
            for campaign_id, audience in session.execute(
                select(Campaign.id, Campaign.audience).where(Campaign.id.in_(missing))
            ):
                self._lists[campaign_id] = audience_lists(audience or {})
        lists = {cid: self._lists.get(cid, ()) for cid in campaign_ids}
        reasons = withdrawn(session, (job.row_id for job in jobs), lists)
        if not reasons:
            return list(jobs), 0
        claims.skip(session, self.worker, reasons)
        return [job for job in jobs if job.row_id not in reasons], len(reasons)

    def renew(self, ids: Collection[int], until: datetime) -> None:
        with self.sessions.begin() as session:
            claims.renew(session, self.worker, ids, until)

    def release(self, ids: Collection[int], now: datetime) -> None:
        if not ids:
            return
        with self.sessions.begin() as session:
            claims.release(session, self.worker, ids, now)

    def stopped(self, campaign_ids: Collection[int]) -> set[int]:
        """Those of the campaigns no longer sending (paused or cancelled meanwhile)."""
        with self.sessions() as session:
            states = session.execute(
                select(Campaign.id, Campaign.state).where(Campaign.id.in_(sorted(campaign_ids)))
            ).all()
        return {cid for cid, state in states if state != CampaignState.SENDING}

    def record(self, done: Sequence[Outcome], now: datetime) -> None:
        """Commit `done` in one transaction; on any error the connection is dropped (the
        caller decides what next: the rows are still `sending`, leased)."""
        connection = self._recording_connection()
        try:
            with connection.begin():
                outcomes.record(connection, done, now, self._stamp)
        except BaseException:
            self._recorder = None
            connection.invalidate()
            raise

    def _recording_connection(self) -> Connection:
        if self._recorder is None:
            self._recorder = self.engine.connect()
        return self._recorder

    def close(self) -> None:
        connection, self._recorder = self._recorder, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # the database is gone: drop the connection instead
                connection.invalidate()
