"""The send loop: claim due ledger rows, personalise, send, record each outcome durably.

A `Worker` claims a batch of due rows (queued; retry whose time has come; sending
whose lease expired because a worker died) in one UPDATE … WHERE id IN (SELECT …
FOR UPDATE SKIP LOCKED) on PostgreSQL, so any number of workers on any number of
machines never take the same row; on SQLite the same single statement runs inside
SQLite's one write lock (run one worker). It sends over `smtp_connections`
connections, one thread and one reused transport each.

Exactly once as far as SMTP allows: after the server accepts a message, the thread
waits until its outcome is committed before it sends the next one (a group commit
shared by all threads, so the cost is one commit per round of connections). A
worker killed at any instant therefore leaves at most one accepted-but-unrecorded
message per open connection; its other rows are still `sending` and are taken back
after the lease expires.

Outcomes: 2xx sent; 4xx and dropped connections retry with exponential backoff up
to `retry_max_attempts`, then failed; 5xx failed, and 5.1.x also suppresses the
address. After `pause_after_consecutive_failures` temporary failures in a row the
worker pauses the campaigns it is sending (reason recorded, `auto_resume`), probes
the server while idle and resumes them when it answers again.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Engine, Table, exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailer import campaigns as campaign_store
from mailer.campaigns import Campaign, CampaignState
from mailer.errors import MailerError, TemporaryError
from mailer.ledger import OPEN_STATUSES, LedgerRow, LedgerStatus, progress
from mailer.message import BadAddress, HeaderInjection, Identity, MessageTemplate, Recipient
from mailer.ratelimit import RateLimiter
from mailer.settings import Settings
from mailer.timestamps import UTCDateTime, utcnow
from mailer.transport import (
    AuthenticationError,
    Interrupted,
    PermanentSMTPError,
    TemporarySMTPError,
    Transport,
)

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
    temporary: bool = False
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
    connection.exec_driver_sql(statement, tuple(value for row in rows for value in row))


def _record_sqlite(connection: Connection, rows: list[Row]) -> None:
    """The driver's own executemany: SQLAlchemy's per-statement work cost more than
    SQLite's for these few rows per commit (inside the caller's transaction)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.executemany(_SQLITE_UPDATE, [(*row[1:], row[0]) for row in rows])


def _timestamp_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    """An aware datetime as `UTCDateTime` binds it on this dialect (SQLite: its text form)."""
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    if bind is None:
        return lambda value: value.astimezone(UTC).replace(tzinfo=None)
    return bind


class RecordingFailed(TemporaryError):
    """The ledger could not be written: the worker stops; its rows return after the lease."""


class _GroupCommit:
    """Outcomes handed in by the sending threads, written many per commit.

    `submit` returns a ticket at once; `wait(ticket)` returns when that outcome (and
    every earlier one) is committed. Whoever waits while nobody writes becomes the
    writer for everything pending, so one commit covers every connection's outcome.
    """

    def __init__(self, write: Callable[[list[Outcome]], None]) -> None:
        self._write = write
        self._lock = threading.Condition()
        self._pending: list[Outcome] = []
        self._written = 0  # tickets: outcomes handed in / durably written
        self._handed = 0
        self._writing = False
        self._error: BaseException | None = None

    def submit(self, outcome: Outcome) -> int:
        with self._lock:
            self._pending.append(outcome)
            self._handed += 1
            return self._handed

    def wait(self, ticket: int) -> None:
        with self._lock:
            while self._written < ticket and self._error is None:
                if not self._writing:
                    batch, self._pending = self._pending, []
                    upto = self._handed
                    self._writing = True
                    self._lock.release()
                    try:
                        self._write(batch)
                    except BaseException as exc:  # the worker stops; rows' leases expire
                        self._error = exc
                    finally:
                        self._lock.acquire()
                        self._writing = False
                        if self._error is None:
                            self._written = upto
                        self._lock.notify_all()
                else:
                    self._lock.wait()
            if self._error is not None:
                raise RecordingFailed(
                    f"cannot record outcomes in the database: {self._error}"
                ) from self._error

    def record(self, outcome: Outcome) -> None:
        self.wait(self.submit(outcome))


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
        self.limiter = limiter  # the one its transports share; interrupted on stop
        self._stop: threading.Event | None = None
        self.probe_seconds = probe_seconds
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.engine: Engine = sessions.kw["bind"]
        self.postgres = self.engine.dialect.name == "postgresql"
        # Timestamps for the recorder's raw SQL, in the form the ORM stores them.
        self._stamp = _timestamp_binder(self.engine.dialect)
        self._recorder_connection: Connection | None = None
        self._templates: dict[int, MessageTemplate] = {}
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._batch_done = threading.Condition()
        self._recorder = _GroupCommit(self._write)
        self._failure_lock = threading.Lock()
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
        return sorted((Job(*row) for row in claimed), key=lambda job: job.row_id)

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
    def _ensure_threads(self) -> None:
        while len(self._threads) < self.settings.smtp_connections:
            thread = threading.Thread(
                target=self._sender, name=f"smtp-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _sender(self) -> None:
        """One connection's loop. An accepted message's outcome is committed before the
        next message's final dot (while its data is on the wire): at any instant at most
        one accepted message per connection is not yet recorded."""
        transport = self.transport_factory()
        unsettled: list[int] = []  # tickets of this connection's jobs not known durable

        def settle() -> None:
            if unsettled:
                try:
                    self._recorder.wait(max(unsettled))
                finally:
                    self._jobs_done(len(unsettled))
                    unsettled.clear()

        try:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    settle()
                    job = self._jobs.get()
                if job is None:
                    return
                try:
                    ticket = self._handle(transport, job, settle)
                except RecordingFailed as exc:
                    self.fatal = self.fatal or exc
                    ticket = None
                except Exception as exc:  # a bug, not the server: retry later, then fail
                    log.exception("sending row %s failed unexpectedly", job.row_id)
                    reply = f"internal error: {exc!r}"
                    ticket = self._recorder.submit(self._temporary(job, reply))
                if ticket is None:
                    self._jobs_done(1)
                else:
                    unsettled.append(ticket)
        except RecordingFailed as exc:  # raised by settle(): keep draining, record nothing
            self.fatal = self.fatal or exc
            self._drain()
        finally:
            try:
                settle()
            except RecordingFailed:
                pass
            finally:
                transport.close()

    def _drain(self) -> None:
        """After a recording failure: count the remaining jobs done; their leases expire."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._jobs_done(1)

    def _jobs_done(self, count: int) -> None:
        with self._batch_done:
            self._pending -= count
            if self._pending == 0:  # only `_watch` waits, and only for the end of the batch
                self._batch_done.notify_all()

    def _handle(self, transport: Transport, job: Job, settle: Callable[[], None]) -> int | None:
        """Send one row; the ticket of its outcome, or None if it was given back untried."""
        if isinstance(self.fatal, RecordingFailed):
            return None  # the database is unreachable: the row's lease will expire
        if job.campaign_id in self._halted or job.campaign_id in self._stopped or self.fatal:
            self._release([job])
            return None
        try:
            message = self.template(job.campaign_id).personalise(
                Recipient(job.subscriber_id, job.email, job.name), self.clock()
            )
        except (HeaderInjection, BadAddress) as exc:
            return self._recorder.submit(
                Outcome(job, LedgerStatus.FAILED, f"refused, not sent: {exc}")
            )
        try:
            reply = transport.send(
                message.envelope_from,
                [message.recipient],
                message.data,
                smtputf8=message.needs_smtputf8,
                before_accept=settle,
            )
        except AuthenticationError as exc:
            self.fatal = exc
            self._release([job])
            return None
        except Interrupted:
            self._release([job])
            return None
        except TemporarySMTPError as exc:
            return self._recorder.submit(self._temporary(job, exc.reply))
        except PermanentSMTPError as exc:
            self._note_success()
            outcome = Outcome(job, LedgerStatus.FAILED, exc.reply, suppress=exc.no_such_user)
            return self._recorder.submit(outcome)
        self._note_success()
        return self._recorder.submit(
            Outcome(job, LedgerStatus.SENT, str(reply), message.message_id)
        )

    def _temporary(self, job: Job, reply: str) -> Outcome:
        with self._failure_lock:
            self._consecutive_failures += 1
            self._last_failure = reply
            tripped = self._consecutive_failures >= self.settings.pause_after_consecutive_failures
        if tripped:
            self._halted.add(job.campaign_id)
        if job.attempts >= self.settings.retry_max_attempts:
            return Outcome(
                job, LedgerStatus.FAILED, f"gave up after {job.attempts} attempts: {reply}"
            )
        return Outcome(job, LedgerStatus.RETRY, reply, temporary=True)

    def _note_success(self) -> None:
        with self._failure_lock:
            self._consecutive_failures = 0

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
        with self._failure_lock:
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
        jobs = self.claim()
        self._stopped = set()
        if not jobs:
            self.finish_done()
            return 0
        self._ensure_threads()
        with self._batch_done:
            self._pending += len(jobs)
        for job in jobs:
            self._jobs.put(job)
        self._watch(jobs)
        if self.fatal is not None:
            raise self.fatal
        if self._halted:
            self._pause_halted()
        self.finish_done()
        return len(jobs)

    def _watch(self, jobs: list[Job]) -> None:
        """Wait for the batch; meanwhile renew our leases and notice paused campaigns.

        A slow or rate-limited batch keeps its rows (no other worker takes them while
        this one lives), and a campaign paused or cancelled by an operator, or the
        worker being stopped, stops within about a second: its rows not yet sent are
        given back untried.
        """
        ids = [job.row_id for job in jobs]
        campaign_ids = sorted({job.campaign_id for job in jobs})
        lease = self.settings.worker_lease_seconds
        check = min(1.0, lease / 3)
        renewed = time.monotonic()
        while True:
            with self._batch_done:
                if self._batch_done.wait_for(lambda: self._pending == 0, timeout=check):
                    return
            stopping = self._stop is not None and self._stop.is_set()
            if stopping:  # Ctrl-C or SIGTERM: finish what is on the wire, give the rest back
                self._stopped = set(campaign_ids)
                if self.limiter is not None:
                    self.limiter.interrupt()  # rows waiting for the hourly quota go back too
                continue
            try:
                if time.monotonic() - renewed >= lease / 3:
                    self._renew(ids)
                    renewed = time.monotonic()
                with self.sessions() as session:
                    states = session.execute(
                        select(Campaign.id, Campaign.state).where(Campaign.id.in_(campaign_ids))
                    ).all()
            except SQLAlchemyError as exc:  # the batch goes on; the recorder decides its fate
                log.warning("database unavailable while sending: %s", exc)
                continue
            self._stopped = {cid for cid, state in states if state != CampaignState.SENDING}

    def _renew(self, ids: list[int]) -> None:
        until = self.clock() + timedelta(seconds=self.settings.worker_lease_seconds)
        with self.sessions.begin() as session:
            session.execute(
                update(LEDGER)
                .where(
                    LEDGER.c.id.in_(ids),
                    LEDGER.c.status == LedgerStatus.SENDING.value,
                    LEDGER.c.worker == self.name,
                )
                .values(lease_until=until, next_attempt_at=until)
            )

    def run(self, stop: threading.Event, *, until_idle: bool = False) -> None:
        """Send until `stop` is set (or, with `until_idle`, until nothing is due)."""
        next_probe = 0.0
        clock = 0.0
        self._stop = stop
        if self.limiter is not None:
            self.limiter.clear()
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
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        connection, self._recorder_connection = self._recorder_connection, None
        if connection is not None:
            try:
                if self.postgres:  # the pool must not hand this setting to anyone else
                    connection.exec_driver_sql("RESET synchronous_commit")
                    connection.commit()
                connection.close()
            except Exception:  # the database is gone: drop the connection instead
                connection.invalidate()
