"""The ledger as the delivery worker's store: everything the send loop asks of the
database, so the worker itself holds no SQL (`mailer.delivery.dispatch.Store` is the
interface it uses; this is its one implementation).

Claims, renewals, releases and skips each run in a short transaction of their own.
Outcomes are recorded on one connection kept for the purpose, so a commit costs no
pool round trip; every commit is durable (PostgreSQL's default synchronous commit):
a sent message's record is never lost, not even to a database crash. On PostgreSQL
the send loop does not wait for it (`recorder.PostgresRecorder`); the store lets a
group in flight finish before any other write of its own.
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
from mailer.delivery.ledger.recorder import PostgresRecorder
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
        self._connection: Connection | None = None  # the recorder's
        self._recorder: PostgresRecorder | None = None
        self._failure: Exception | None = None  # of a group in flight, not yet reported
        self._lists: dict[int, tuple[str, ...]] = {}  # campaign id -> its audience's lists

    def claim(self, limit: int, now: datetime, lease_until: datetime) -> tuple[list[Job], int]:
        """Take up to `limit` due rows of sending campaigns and skip those whose person
        left since they were queued: (the jobs to send, how many were skipped)."""
        self._settle()
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
        self._settle()
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

    def renew(self, ids: Collection[int], until: datetime) -> set[int]:
        self._settle()
        with self.sessions.begin() as session:
            return claims.renew(session, self.worker, ids, until)

    def rename(self, worker: str) -> None:
        self.worker = worker

    def release(self, ids: Collection[int], now: datetime) -> None:
        if not ids:
            return
        self._settle()
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
        """Start committing `done` in one transaction (after the group before it); on
        SQLite, and with suppressions, it is committed on return. `unrecorded` says
        when it is durable. On any error the connection is dropped (the rows are
        still `sending`, leased: the caller decides what next)."""
        self._raise_failure()
        connection = self._recording_connection()
        try:
            recorder = self._recorder
            if recorder is not None and not any(outcome.suppress for outcome in done):
                recorder.wait()
                recorder.send(outcomes.as_rows(done, now, self._stamp))
                return
            if recorder is not None:
                recorder.wait()
            with connection.begin():  # with the suppressions, in one transaction
                outcomes.record(connection, done, now, self._stamp)
        except BaseException:
            self._drop_connection()
            raise

    def unrecorded(self) -> int | None:
        """None once every group recorded is committed; else the socket to wait for.
        Raises the error if one was not written."""
        self._raise_failure()
        if self._recorder is None:
            return None
        try:
            return self._recorder.pending()
        except BaseException:
            self._drop_connection()
            raise

    def _settle(self) -> None:
        """Let the group in flight finish before another write of ours, whose row locks
        it could otherwise wait for (and they for it). A failure is kept for
        `unrecorded` to report: it is the send loop's to handle."""
        if self._recorder is not None and self._failure is None:
            try:
                self._recorder.wait()
            except Exception as exc:
                self._failure = exc
                self._drop_connection()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _recording_connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect()
            if self.postgres:
                self._recorder = PostgresRecorder(self._connection)
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection, self._recorder = self._connection, None, None
        if connection is not None:
            connection.invalidate()

    def close(self) -> None:
        connection, recorder = self._connection, self._recorder
        self._connection = self._recorder = None
        if connection is not None:
            try:
                if recorder is not None:
                    recorder.close()
                connection.close()
            except Exception:  # the database is gone: drop the connection instead
                connection.invalidate()
