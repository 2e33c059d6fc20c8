"""The send loop: claim due ledger rows, personalise, send, record each outcome durably.

A `Worker` claims a batch of due rows (queued; retry whose time has come; sending
whose lease expired because a worker died) in one UPDATE … WHERE id IN (SELECT …
FOR UPDATE SKIP LOCKED) on PostgreSQL, so any number of workers on any number of
machines never take the same row; on SQLite the same single statement runs inside
SQLite's one write lock.

It sends over `smtp_connections` connections from one thread. Each connection moves
its own message along (envelope written, replies read, message and final dot
written, verdict read) whenever its server answers, found with poll(2): a slow
reply holds up only its own connection, and there are no threads to hand work
between (a thread per connection cost three times the CPU per message: the GIL
changing hands on every reply).

Rate limits hold at the wire: an envelope is written only when the limiter has a
slot for it (and for every message already begun), and the slot is taken just
before the message itself is written, never while a connection is being opened.

Exactly once as far as SMTP allows: outcomes are committed in groups, at the latest
when a connection is about to send its next message, so a worker killed at any
instant leaves at most one accepted-but-unrecorded message per open connection;
its other rows are still `sending` and are taken back at once when it is known to be
dead (`mailer.delivery.owners`), else after the lease expires.

Rows whose person left after they were queued (unsubscribed, suppressed, erased)
are recorded `skipped` with the reason, found with one query (`mailer.delivery.withdrawn`)
when a batch is claimed and about once a second for its rows not yet begun.

Outcomes: 2xx sent; 4xx and dropped connections retry with exponential backoff up
to `retry_max_attempts`, then failed; 5xx failed, and 5.1.x also suppresses the
address. After `pause_after_consecutive_failures` temporary failures in a row the
worker pauses the campaigns it is sending (reason recorded, `auto_resume`), probes
the server while idle and resumes them when it answers again.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Engine, Table, exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns as campaign_store
from mailer.delivery import owners
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.ledger import OPEN_STATUSES, LedgerRow, LedgerStatus, progress
from mailer.delivery.message import (
    BadAddress,
    HeaderInjection,
    Identity,
    MessageTemplate,
    Outgoing,
    Recipient,
)
from mailer.delivery.ratelimit import RateLimiter
from mailer.delivery.transport import (
    AuthenticationError,
    Interrupted,
    PermanentSMTPError,
    TemporarySMTPError,
    Transport,
)
from mailer.delivery.withdrawn import audience_lists, withdrawn
from mailer.errors import MailerError, TemporaryError
from mailer.settings import Settings
from mailer.timestamps import UTCDateTime, utcnow

log = logging.getLogger(__name__)
LEDGER = cast(Table, LedgerRow.__table__)
_SQLITE_UPDATE = (
    "UPDATE ledger SET status = ?, last_reply = ?, message_id = ?, sent_at = ?,"
    " next_attempt_at = ?, lease_until = NULL WHERE id = ?"
)


@dataclass(frozen=True)
class Job:
    row_id: int
    campaign_id: int
    subscriber_id: int
    email: str
    name: str | None
    attempts: int


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: LedgerStatus
    reply: str
    message_id: str | None = None
    suppress: bool = False


# (id, status, reply, message_id, sent_at, retry_at), timestamps as the driver takes them
Row = tuple[int, str, str, str | None, Any, Any]

_POSTGRES_ROW = "(%s::bigint, %s, %s, %s, %s::timestamp, %s::timestamp)"
_POSTGRES_UPDATE = (
    "UPDATE ledger SET status = v.status, last_reply = v.reply, message_id = v.message_id,"
    " sent_at = v.sent_at, next_attempt_at = v.retry_at, lease_until = NULL"
)


def _record_postgres(connection: Connection, rows: list[Row]) -> None:
    """All outcomes in one UPDATE … FROM (VALUES …): one round trip instead of one per row."""
    values = ", ".join([_POSTGRES_ROW] * len(rows))  # placeholders only; values are bound
    columns = "(id, status, reply, message_id, sent_at, retry_at)"
    statement = f"{_POSTGRES_UPDATE} FROM (VALUES {values}) AS v {columns} WHERE ledger.id = v.id"
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:  # psycopg's own: no SQLAlchemy layer per commit
        cursor.execute(statement, [value for row in rows for value in row])


def _record_sqlite(connection: Connection, rows: list[Row]) -> None:
    """The driver's own executemany: SQLAlchemy's per-statement work cost more than
    SQLite's for these few rows per commit (inside the caller's transaction)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.executemany(_SQLITE_UPDATE, [(*row[1:], row[0]) for row in rows])


def _timestamp_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    """An aware datetime as `UTCDateTime` binds it on this dialect (SQLite: its text form)."""
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None  # a TypeDecorator with process_bind_param always has one
    return bind


class RecordingFailed(TemporaryError):
    """The ledger could not be written: the worker stops; its rows return after the lease."""


class Worker:
    """Sends due ledger rows; `run_once()` handles one batch, `run(stop)` loops."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        transport_factory: Callable[[], Transport],
        identity: Identity,
        *,
        name: str | None = None,
        sign: Callable[[bytes], bytes] | None = None,
        limiter: RateLimiter | None = None,
        probe_seconds: float = 15.0,
        idle_seconds: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.transport_factory = transport_factory
        self.identity = identity
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.sign = sign
        self.limiter = limiter or RateLimiter()  # a slot per message, as it is transferred
        self._stop: threading.Event | None = None
        self.probe_seconds = probe_seconds
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.engine: Engine = sessions.kw["bind"]
        self.postgres = self.engine.dialect.name == "postgresql"
        # Timestamps for the recorder's raw SQL, in the form the ORM stores them.
        self._stamp = _timestamp_binder(self.engine.dialect)
        self._recorder_connection: Connection | None = None
        self._presence = owners.Presence(self.engine, self.name)  # who we are; dead owners
        self._keeper: _LeaseKeeper | None = None
        self._templates: dict[int, MessageTemplate] = {}
        self._lists: dict[int, tuple[str, ...]] = {}  # campaign id -> its audience's lists
        self._transports: list[Transport] = []
        self._consecutive_failures = 0
        self._last_failure = ""
        self._halted: set[int] = set()  # campaigns paused mid-batch: release their jobs
        self._stopped: set[int] = set()  # paused or cancelled by someone else mid-batch
        self.fatal: MailerError | None = None  # e.g. a refused login: stop the worker

    # --- claiming ---------------------------------------------------------------------
    def claim(self, limit: int | None = None) -> list[Job]:
        """Take up to `limit` due rows of sending campaigns; mark them sending, leased to us."""
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.worker_lease_seconds)
        with self.sessions.begin() as session:
            active = list(
                session.scalars(select(Campaign.id).where(Campaign.state == CampaignState.SENDING))
            )
            if not active:
                return []
            due = (
                select(LEDGER.c.id)
                .where(
                    LEDGER.c.campaign_id.in_(active),
                    LEDGER.c.status.in_([s.value for s in OPEN_STATUSES]),
                    LEDGER.c.next_attempt_at <= now,
                )
                .limit(limit or self.settings.worker_batch_size)
            )
            if self.postgres:
                due = due.with_for_update(skip_locked=True)
            claimed = session.execute(
                update(LEDGER)
                .where(LEDGER.c.id.in_(due.scalar_subquery()))
                .values(
                    status=LedgerStatus.SENDING.value,
                    worker=self.name,
                    lease_until=lease,
                    next_attempt_at=lease,
                    attempts=LEDGER.c.attempts + 1,
                )
                .returning(
                    LEDGER.c.id,
                    LEDGER.c.campaign_id,
                    LEDGER.c.subscriber_id,
                    LEDGER.c.email,
                    LEDGER.c.name,
                    LEDGER.c.attempts,
                )
            ).all()
            jobs = sorted((Job(*row) for row in claimed), key=lambda job: job.row_id)
            return self._drop_withdrawn(session, jobs)

    def _drop_withdrawn(self, session: Session, jobs: list[Job]) -> list[Job]:
        """Record `skipped` the jobs whose person left since they were queued
        (unsubscribed, suppressed, erased: one query); return the others."""
        if not jobs:
            return jobs
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
            return jobs
        by_reason: dict[str, list[int]] = {}
        for row_id, reason in reasons.items():
            by_reason.setdefault(reason, []).append(row_id)
        for reason, ids in sorted(by_reason.items()):
            session.execute(
                update(LEDGER)
                .where(
                    LEDGER.c.id.in_(sorted(ids)),
                    LEDGER.c.status == LedgerStatus.SENDING.value,
                    LEDGER.c.worker == self.name,
                )
                .values(
                    status=LedgerStatus.SKIPPED.value,
                    last_reply=reason,
                    attempts=LEDGER.c.attempts - 1,  # never tried
                    next_attempt_at=None,
                    lease_until=None,
                )
            )
        log.info("skipped %d row(s) whose recipients left after they were queued", len(reasons))
        return [job for job in jobs if job.row_id not in reasons]

    def _recheck(self, waiting: deque[Job]) -> None:
        """Skip the waiting jobs whose person left while the batch was going out."""
        if not waiting:
            return
        try:
            with self.sessions.begin() as session:
                kept = self._drop_withdrawn(session, list(waiting))
        except SQLAlchemyError as exc:  # the batch goes on; checked again in a second
            log.warning("database unavailable while sending: %s", exc)
            return
        if len(kept) != len(waiting):
            waiting.clear()
            waiting.extend(kept)

    # --- templates -------------------------------------------------------------------
    def template(self, campaign_id: int) -> MessageTemplate:
        template = self._templates.get(campaign_id)
        if template is None:
            with self.sessions() as session:
                campaign = campaign_store.get_campaign(session, campaign_id)
            if not campaign.frozen or campaign.frozen_html is None:
                raise campaign_store.CampaignError(f"campaign {campaign_id} is not frozen")
            assert campaign.frozen_at is not None
            template = MessageTemplate(
                identity=self.identity,
                campaign_id=campaign.id,
                nonce=f"{int(campaign.frozen_at.timestamp()):x}",
                subject=campaign.frozen_subject or "",
                sender=campaign.sender,
                html=campaign.frozen_html,
                text=campaign.frozen_text or "",
                reply_to=campaign.reply_to,
                sign=self.sign,
            )
            self._templates[campaign_id] = template
        return template

    # --- sending ----------------------------------------------------------------------
    def _start(self, lane: _Lane, job: Job, outcomes: list[Outcome], back: list[Job]) -> bool:
        """Personalise `job` and write its envelope on `lane`; False if that failed (the
        lane stays idle; the job's outcome or its return is noted)."""
        if self._should_skip(job):
            back.append(job)
            return False
        try:
            message = self.template(job.campaign_id).personalise(
                Recipient(job.subscriber_id, job.email, job.name), self.clock()
            )
        except (HeaderInjection, BadAddress) as exc:
            outcomes.append(Outcome(job, LedgerStatus.FAILED, f"refused, not sent: {exc}"))
            return False
        except Exception as exc:  # a campaign that cannot be built: retry, then fail
            self._failed(job, exc, outcomes, back)
            return False
        try:
            lane.transport.begin(
                message.envelope_from, [message.recipient], smtputf8=message.needs_smtputf8
            )
        except Exception as exc:  # sorted out by _failed
            self._failed(job, exc, outcomes, back)
            return False
        lane.hold(job, message, _Step.ENVELOPE, self.settings.smtp_timeout)
        return True

    def _advance(self, lane: _Lane, outcomes: list[Outcome], back: list[Job]) -> None:
        """The lane's reply has come: read the envelope's replies, or the verdict."""
        job, message = lane.job, lane.message
        assert job is not None and message is not None
        if lane.step is _Step.ENVELOPE:
            try:
                lane.transport.accepted()
            except Exception as exc:  # sorted out by _failed
                lane.release()
                self._failed(job, exc, outcomes, back)
            else:
                lane.hold(job, message, _Step.ACCEPTED, self.settings.smtp_timeout)
            return
        lane.release()
        try:
            reply = lane.transport.finish()
        except Exception as exc:  # sorted out by _failed
            self._failed(job, exc, outcomes, back)
            return
        self._consecutive_failures = 0
        lane.unrecorded = True
        outcomes.append(Outcome(job, LedgerStatus.SENT, str(reply), message.message_id))

    def _hand_over(self, lanes: list[_Lane], outcomes: list[Outcome], back: list[Job]) -> float:
        """Write the message of every lane whose envelope was accepted, each as soon as
        the rate limit gives it a slot: the slot is taken as the message goes to the
        server, so the relay never sees more than the limit, however long connections
        took to open. Returns the wait for the next slot (0.0: every lane was served)."""
        accepted = [lane for lane in lanes if lane.step is _Step.ACCEPTED]
        if not accepted:
            return 0.0
        if any(lane.unrecorded for lane in accepted):
            self._record(outcomes, lanes)  # durable before these lanes' next dot
        stopping = self.fatal is not None or (self._stop is not None and self._stop.is_set())
        for lane in accepted:
            job, message = lane.job, lane.message
            assert job is not None and message is not None
            wait = self.limiter.try_acquire()
            if wait > 0 and not stopping:
                return wait
            if wait > 0 or self._should_skip(job):  # not sent: the envelope is dropped
                lane.transport.abandon()
                lane.release()
                back.append(job)
                continue
            try:
                lane.transport.transfer(message.data, transparent=message.transparent)
            except Exception as exc:  # sorted out by _failed
                lane.release()
                self._failed(job, exc, outcomes, back)
            else:
                lane.hold(job, message, _Step.VERDICT, self.settings.smtp_timeout)
        return 0.0

    def _should_skip(self, job: Job) -> bool:
        """Its campaign was paused or cancelled mid-batch, the worker must stop, or the
        row may no longer be ours (lease lost after a stall, or our lock gone)."""
        return bool(
            self.fatal
            or job.campaign_id in self._halted
            or job.campaign_id in self._stopped
            or (self._keeper is not None and not self._keeper.holds(job))
            or not self._presence.holds()
        )

    def _failed(self, job: Job, exc: Exception, outcomes: list[Outcome], back: list[Job]) -> None:
        """Sort a failed step: an outcome to record, or the row given back untried."""
        if isinstance(exc, AuthenticationError):
            self.fatal = self.fatal or exc  # nothing will get through: stop the worker
            back.append(job)
        elif isinstance(exc, Interrupted):
            back.append(job)
        elif isinstance(exc, TemporarySMTPError):
            outcomes.append(self._temporary(job, exc.reply))
        elif isinstance(exc, PermanentSMTPError):
            self._consecutive_failures = 0  # the server is answering
            outcomes.append(Outcome(job, LedgerStatus.FAILED, exc.reply, suppress=exc.no_such_user))
        else:  # a bug, not the server: retry later, then fail
            log.error("sending row %s failed unexpectedly", job.row_id, exc_info=exc)
            outcomes.append(self._temporary(job, f"internal error: {exc!r}"))

    def _temporary(self, job: Job, reply: str) -> Outcome:
        self._consecutive_failures += 1
        self._last_failure = reply
        if self._consecutive_failures >= self.settings.pause_after_consecutive_failures:
            self._halted.add(job.campaign_id)
        if job.attempts >= self.settings.retry_max_attempts:
            return Outcome(
                job, LedgerStatus.FAILED, f"gave up after {job.attempts} attempts: {reply}"
            )
        return Outcome(job, LedgerStatus.RETRY, reply)

    def backoff(self, attempts: int) -> timedelta:
        """Exponential from retry_base_seconds, capped at retry_max_seconds."""
        seconds = self.settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self.settings.retry_max_seconds))

    # --- recording --------------------------------------------------------------------
    def _write(self, outcomes: list[Outcome]) -> None:
        """Record outcomes in one transaction on the recorder's own connection."""
        now = self.clock()
        stamp = self._stamp
        sent_at = stamp(now)
        rows: list[Row] = [
            (
                outcome.job.row_id,
                outcome.status.value,
                outcome.reply[:1000],
                outcome.message_id,
                sent_at if outcome.status == LedgerStatus.SENT else None,
                stamp(now + self.backoff(outcome.job.attempts))
                if outcome.status == LedgerStatus.RETRY
                else None,
            )
            for outcome in outcomes
        ]
        connection = self._recording_connection()
        try:
            with connection.begin():
                if self.postgres:
                    _record_postgres(connection, rows)
                else:
                    _record_sqlite(connection, rows)
                suppressed = [o for o in outcomes if o.suppress]
                if suppressed:
                    from subscribers.suppression import suppress

                    with Session(bind=connection) as session:
                        for outcome in suppressed:
                            reason = f"bounced: {outcome.reply}"[:200]
                            suppress(session, outcome.job.email, reason)
                        session.flush()
        except BaseException:
            self._recorder_connection = None
            connection.invalidate()
            raise

    def _recording_connection(self) -> Connection:
        """One connection kept for recording outcomes: a commit costs no pool round trip."""
        if self._recorder_connection is None:
            connection = self.engine.connect()
            if self.postgres:
                # A killed worker loses nothing committed; only a database crash could.
                connection.exec_driver_sql("SET synchronous_commit = off")
                connection.commit()
            self._recorder_connection = connection
        return self._recorder_connection

    def _release(self, jobs: Iterable[Job]) -> None:
        """Give claimed rows back untried (their campaign was paused, or we are stopping)."""
        ids = [job.row_id for job in jobs]
        if not ids:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(LEDGER)
                .where(
                    LEDGER.c.id.in_(ids),
                    LEDGER.c.status == LedgerStatus.SENDING.value,
                    LEDGER.c.worker == self.name,
                )
                .values(
                    status=LedgerStatus.QUEUED.value,
                    attempts=LEDGER.c.attempts - 1,
                    next_attempt_at=self.clock(),
                    lease_until=None,
                )
            )

    # --- campaigns ----------------------------------------------------------------------
    def _pause_halted(self) -> None:
        halted, self._halted = self._halted, set()
        for campaign_id in sorted(halted):
            reason = (
                f"SMTP server failing ({self.settings.pause_after_consecutive_failures} "
                f"temporary failures in a row; last: {self._last_failure}); "
                "resumes by itself when the server answers"
            )
            with self.sessions.begin() as session:
                campaign = campaign_store.get_campaign(session, campaign_id, lock=True)
                if campaign.state == CampaignState.SENDING:
                    campaign_store.pause(session, campaign_id, reason, auto=True)
                    log.warning("paused campaign %s: %s", campaign_id, reason)

    def probe_paused(self) -> list[int]:
        """If a campaign was paused because the server failed, try it; resume on success."""
        with self.sessions() as session:
            waiting = list(
                session.scalars(
                    select(Campaign.id).where(
                        Campaign.state == CampaignState.PAUSED, Campaign.auto_resume.is_(True)
                    )
                )
            )
        if not waiting:
            return []
        transport = self.transport_factory()
        try:
            transport.probe()
        except MailerError as exc:
            log.info("SMTP server still failing: %s", exc)
            return []
        finally:
            transport.close()
        resumed = []
        with self.sessions.begin() as session:
            for campaign_id in waiting:
                campaign = campaign_store.get_campaign(session, campaign_id, lock=True)
                if campaign.state == CampaignState.PAUSED and campaign.auto_resume:
                    campaign_store.resume(session, campaign_id)
                    session.execute(
                        update(LEDGER)
                        .where(
                            LEDGER.c.campaign_id == campaign_id,
                            LEDGER.c.status == LedgerStatus.RETRY.value,
                        )
                        .values(next_attempt_at=self.clock())
                    )
                    resumed.append(campaign_id)
        self._consecutive_failures = 0
        return resumed

    def finish_done(self) -> list[int]:
        """Mark sent every sending campaign with no open rows and no waves left to enqueue."""
        finished = []
        with self.sessions.begin() as session:
            open_rows = exists().where(
                LEDGER.c.campaign_id == Campaign.id,
                LEDGER.c.status.in_([s.value for s in OPEN_STATUSES]),
            )
            candidates = session.scalars(
                select(Campaign).where(Campaign.state == CampaignState.SENDING, ~open_rows)
            ).all()
            for campaign in candidates:
                if campaign.pending_waves:
                    continue
                tally = progress(session, campaign.id)
                if tally.failed and not tally.sent:
                    reason = f"every one of {tally.failed} recipient(s) failed: see the report"
                    if tally.skipped:
                        reason += f" ({tally.skipped} skipped: they left after it was queued)"
                    campaign_store.transition(campaign, CampaignState.FAILED, reason)
                else:
                    campaign_store.transition(campaign, CampaignState.SENT)
                self._templates.pop(campaign.id, None)
                finished.append(campaign.id)
        return finished

    # --- loops --------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim one batch and send it over the connections; return the rows handled."""
        if self.fatal is not None:
            raise self.fatal
        self.name = self._presence.tend()  # and takes back the rows of dead workers
        jobs = self.claim()
        self._stopped = set()
        if not jobs:
            self.finish_done()
            return 0
        self._send_batch(jobs)
        if self.fatal is not None:
            raise self.fatal
        if self._halted:
            self._pause_halted()
        self.finish_done()
        return len(jobs)

    def _send_batch(self, jobs: list[Job]) -> None:
        """Send the batch over every connection from this one thread, each connection
        moving its own message along as its server answers (a slow reply holds up only
        its own connection).

        Outcomes are committed in groups, at the latest when a connection is about to
        send its next message: so at most one accepted message per connection is ever
        unrecorded. Meanwhile the worker renews its leases, notices campaigns paused or
        cancelled by someone else and stops when asked; their rows and the rest of the
        batch go back untried.
        """
        waiting = deque(jobs)
        lanes = self._lanes()
        keeper = _LeaseKeeper(
            self, [job.row_id for job in jobs], sorted({job.campaign_id for job in jobs}), waiting
        )
        self._keeper = keeper
        outcomes: list[Outcome] = []
        back: list[Job] = []
        while True:
            keeper.tend()
            stopping = self.fatal is not None or (self._stop is not None and self._stop.is_set())
            limit_wait = self._hand_over(lanes, outcomes, back)
            if not stopping and not limit_wait:
                # An envelope is written only while a slot awaits it and every message
                # already begun (the slot itself is taken by `_hand_over`).
                begun = sum(lane.step in (_Step.ENVELOPE, _Step.ACCEPTED) for lane in lanes)
                for lane in lanes:
                    if not waiting:
                        break
                    if lane.step is not _Step.IDLE:
                        continue
                    limit_wait = self.limiter.wait_for(begun + 1)
                    if limit_wait > 0:
                        break
                    begun += self._start(lane, waiting.popleft(), outcomes, back)
            busy = [lane for lane in lanes if lane.step in (_Step.ENVELOPE, _Step.VERDICT)]
            if not busy:
                if any(lane.step is _Step.ACCEPTED for lane in lanes):
                    self._pause(min(limit_wait, 1.0))  # their slot is near: `wait_for` saw it
                    continue
                if stopping or not waiting:
                    break
                if limit_wait > 0:  # the rate limit: wait for the next slot
                    self._record(outcomes, lanes)
                    self._pause(min(limit_wait, 1.0))
                continue
            for lane in _answered(busy, limit_wait):
                self._advance(lane, outcomes, back)
            self._hand_over(lanes, outcomes, back)  # at once, where the limit allows
            for lane in busy:
                if lane.step in (_Step.ENVELOPE, _Step.VERDICT) and lane.overdue():
                    job = lane.job
                    assert job is not None
                    lane.transport.abandon()
                    lane.release()
                    reply = f"no reply from the SMTP server in {self.settings.smtp_timeout:g} s"
                    outcomes.append(self._temporary(job, reply))
            self._release(back)
            back.clear()
        self._keeper = None
        self._record(outcomes, lanes)
        self._release(back)
        self._release(waiting)

    def _lanes(self) -> list[_Lane]:
        while len(self._transports) < self.settings.smtp_connections:
            self._transports.append(self.transport_factory())
        return [_Lane(transport) for transport in self._transports]

    def _pause(self, seconds: float) -> None:
        if self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _record(self, outcomes: list[Outcome], lanes: list[_Lane]) -> None:
        """Commit the outcomes gathered so far (and empty the list)."""
        if not outcomes:
            return
        try:
            self._write(outcomes)
        except Exception as exc:  # the worker stops; its rows return when their lease expires
            self.fatal = RecordingFailed(f"cannot record outcomes in the database: {exc}")
            raise self.fatal from exc
        outcomes.clear()
        for lane in lanes:
            lane.unrecorded = False

    def _check_campaigns(self, campaign_ids: list[int]) -> None:
        """Note campaigns that left `sending` (paused or cancelled by an operator)."""
        try:
            with self.sessions() as session:
                states = session.execute(
                    select(Campaign.id, Campaign.state).where(Campaign.id.in_(campaign_ids))
                ).all()
        except SQLAlchemyError as exc:  # the batch goes on; recording decides its fate
            log.warning("database unavailable while sending: %s", exc)
            return
        self._stopped = {cid for cid, state in states if state != CampaignState.SENDING}

    def _renew(self, ids: list[int]) -> set[int]:
        """Extend the lease of those rows still ours; return their ids (a row another
        worker took after our lease ran out is not, and must not be sent by us)."""
        until = self.clock() + timedelta(seconds=self.settings.worker_lease_seconds)
        with self.sessions.begin() as session:
            return set(
                session.scalars(
                    update(LEDGER)
                    .where(
                        LEDGER.c.id.in_(ids),
                        LEDGER.c.status == LedgerStatus.SENDING.value,
                        LEDGER.c.worker == self.name,
                    )
                    .values(lease_until=until, next_attempt_at=until)
                    .returning(LEDGER.c.id)
                )
            )

    def run(self, stop: threading.Event, *, until_idle: bool = False) -> None:
        """Send until `stop` is set (or, with `until_idle`, until nothing is due)."""
        next_probe = 0.0
        clock = 0.0
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    if self.run_once():
                        continue
                except SQLAlchemyError as exc:  # a database restart: wait, then carry on
                    log.warning("database unavailable: %s; trying again", exc)
                    stop.wait(min(5.0, self.idle_seconds * 5))
                    continue
                if until_idle:
                    return
                if clock >= next_probe:
                    self.probe_paused()
                    next_probe = clock + self.probe_seconds
                stop.wait(self.idle_seconds)
                clock += self.idle_seconds
        finally:
            self.close()

    def close(self) -> None:
        self._presence.close()
        transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()
        connection, self._recorder_connection = self._recorder_connection, None
        if connection is not None:
            try:
                if self.postgres:  # the pool must not hand this setting to anyone else
                    connection.exec_driver_sql("RESET synchronous_commit")
                    connection.commit()
                connection.close()
            except Exception:  # the database is gone: drop the connection instead
                connection.invalidate()


class _LeaseKeeper:
    """As the batch goes: renew its leases every third of the lease, and about once a
    second look at its campaigns' states and at who of its waiting rows left.

    A worker that stalled past its lease (stopped, suspended, starved) may find some
    rows taken by another worker meanwhile: `holds` renews before a message goes out
    once half the lease has passed, and rows no longer ours are dropped, not sent.
    """

    def __init__(
        self, worker: Worker, ids: list[int], campaign_ids: list[int], waiting: deque[Job]
    ) -> None:
        self.worker = worker
        self.ids = ids
        self.campaign_ids = campaign_ids
        self.waiting = waiting
        self.lease = worker.settings.worker_lease_seconds
        self.check_every = min(1.0, self.lease / 3)
        self.renewed = self.checked = time.monotonic()
        self.lost: set[int] = set()  # rows of the batch that are no longer ours

    def tend(self) -> None:
        now = time.monotonic()
        if now - self.checked < self.check_every:
            return
        self.checked = now
        self.worker._check_campaigns(self.campaign_ids)
        self.worker._recheck(self.waiting)
        if now - self.renewed >= self.lease / 3:
            self._renew(now)

    def _renew(self, now: float) -> None:
        try:
            kept = self.worker._renew(self.ids)
        except SQLAlchemyError as exc:
            log.warning("could not renew leases: %s", exc)
            return
        self.renewed = now
        gone = set(self.ids) - kept  # recorded since, or taken by another worker
        if not gone:
            return
        self.ids = sorted(kept)
        self.lost |= gone
        taken = [job for job in self.waiting if job.row_id in gone]
        if taken:
            log.warning("%d row(s) of this batch were taken by another worker", len(taken))
            kept_jobs = [job for job in self.waiting if job.row_id not in gone]
            self.waiting.clear()
            self.waiting.extend(kept_jobs)

    def holds(self, job: Job) -> bool:
        """Is `job`'s row still ours by a lease that has surely not run out?"""
        now = time.monotonic()
        if now - self.renewed >= self.lease / 2 and now - self.checked >= self.check_every:
            self.checked = now
            self._renew(now)
        return job.row_id not in self.lost and time.monotonic() - self.renewed < self.lease * 0.9


# poll(2) needs no set-up calls per wait, unlike epoll; every Unix has it.
_Selector = getattr(selectors, "PollSelector", selectors.DefaultSelector)


class _Step(Enum):
    IDLE = "idle"
    ENVELOPE = "envelope"  # envelope written; its replies are due
    ACCEPTED = "accepted"  # envelope accepted; the message waits for its rate-limit slot
    VERDICT = "verdict"  # message and final dot written; the verdict is due


class _Lane:
    """One connection and the message it is carrying."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.step = _Step.IDLE
        self.job: Job | None = None
        self.message: Outgoing | None = None
        self.deadline = 0.0
        self.unrecorded = False  # its last accepted message's outcome is not committed

    def hold(self, job: Job, message: Outgoing, step: _Step, timeout: float) -> None:
        self.job, self.message, self.step = job, message, step
        self.deadline = time.monotonic() + timeout

    def release(self) -> None:
        self.step = _Step.IDLE

    def overdue(self) -> bool:
        return time.monotonic() > self.deadline


def _answered(busy: list[_Lane], wait_at_most: float) -> list[_Lane]:
    """The busy lanes whose next step can run now, waiting (up to a second, or until
    the earliest deadline) for at least one server to answer."""
    ready = [lane for lane in busy if lane.transport.awaiting() is None]
    if ready:
        return ready
    sockets: dict[int, list[_Lane]] = {}
    for lane in busy:
        fd = lane.transport.awaiting()
        if fd is not None:
            sockets.setdefault(fd, []).append(lane)
    earliest = min(lane.deadline for lane in busy) - time.monotonic()
    timeout = max(0.0, min(1.0, earliest, wait_at_most or 1.0))
    with _Selector() as waiting:
        for fd in sockets:
            waiting.register(fd, selectors.EVENT_READ)
        return [lane for key, _ in waiting.select(timeout) for lane in sockets[int(key.fd)]]
