"""The send loop: claim due ledger rows, personalise, send, record each outcome durably.

A `Worker` claims a batch of due rows through its `Store` (the ledger,
`mailer.delivery.ledger.store.SqlLedger`: the worker holds no SQL), leased to it, so
any number of workers never take the same row.

It sends over `smtp_connections` connections from one thread. Each connection moves
its own message along (envelope written, replies read, message and final dot
written, verdict read) whenever its server answers (`mailer.delivery.lanes`).

Rate limits hold at the wire: an envelope is written only when the limiter has a
slot for it (and for every message already begun), and the slot is taken just
before the message itself is written, never while a connection is being opened.

Exactly once as far as SMTP allows: outcomes are committed in groups, and a
connection's next final dot waits until its previous outcome is committed, so a
worker killed at any instant leaves at most one accepted-but-unrecorded message per
open connection; its other rows are still `sending` and are taken back at once when
it is known to be dead (`mailer.delivery.owners`), else after the lease expires. The
store may commit a group while the loop goes on (PostgreSQL: the commit waits for
the disk, the other connections need not), one group at a time; `_writes_started` /
`_writes_done` count them, and `Lane.needs` says which a lane's last message is in.

Rows whose person left after they were queued (unsubscribed, suppressed, erased)
are recorded `skipped` with the reason, found with one query (`ledger.withdrawn`)
when a batch is claimed and about once a second for its rows not yet begun.

Outcomes: 2xx sent; 4xx and dropped connections retry with exponential backoff up
to `retry_max_attempts`, then failed; 5xx failed, and 5.1.x also suppresses the
address. After `pause_after_consecutive_failures` temporary failures in a row the
worker pauses the campaigns it is sending (reason recorded, `auto_resume`), probes
the server while idle and resumes them when it answers again.

One concern, kept whole although it is over 400 lines: the send loop and its
retry policy share the state of one batch (lanes, outcomes, writes in flight), and
splitting them would pass that state around; what is separable is apart already:
the SQL (the `Store`), the connection lanes (`lanes`), the leases (`lease`), who
is alive (`owners`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NoReturn, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns as campaign_store
from mailer.delivery import ledger, lifecycle, owners
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.lanes import Lane, Step, answered, wait_readable
from mailer.delivery.lease import LeaseKeeper
from mailer.delivery.ledger import Job, LedgerStatus, Outcome
from mailer.delivery.ledger.store import SqlLedger
from mailer.delivery.message import (
    BadAddress,
    HeaderInjection,
    Identity,
    MessageTemplate,
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
from mailer.errors import MailerError, TemporaryError
from mailer.settings import Settings
from mailer.timestamps import utcnow

log = logging.getLogger(__name__)
# How long a batch takes more rows as it empties before it ends, and with it the worker's
# chores between batches (finishing campaigns, pausing halted ones).
REFILL_SECONDS = 5.0
__all__ = ["Job", "Outcome", "RecordingFailed", "Store", "Worker"]


class Store(Protocol):
    """What the worker needs of the ledger (`SqlLedger` is the implementation): rows
    leased to this worker, and their outcomes recorded durably."""

    def claim(self, limit: int, now: datetime, lease_until: datetime) -> tuple[list[Job], int]:
        """Take up to `limit` due rows; skip those whose person left: (jobs, skipped)."""
        ...

    def drop_withdrawn(self, jobs: Sequence[Job]) -> tuple[list[Job], int]:
        """Skip the jobs whose person left since they were queued: (the others, skipped)."""
        ...

    def renew(self, ids: Collection[int], until: datetime) -> set[int]:
        """Extend the lease of those rows still ours; return their ids."""
        ...

    def rename(self, worker: str) -> None:
        """Mark later claims with `worker` (the worker registered again after losing
        its lock; rows under the old name are no longer its own)."""
        ...

    def release(self, ids: Collection[int], now: datetime) -> None:
        """Give rows back untried, due `now`, the attempt not counted."""
        ...

    def stopped(self, campaign_ids: Collection[int]) -> set[int]:
        """Those of the campaigns no longer sending (paused or cancelled meanwhile)."""
        ...

    def record(self, done: Sequence[Outcome], now: datetime) -> None:
        """Start committing the outcomes (and suppressions) in one transaction, after
        the group before it; it may be committed on return."""
        ...

    def unrecorded(self) -> int | None:
        """None once every group is committed, durably; else a socket to wait for.
        Raises if a group could not be written."""
        ...

    def close(self) -> None: ...


class RecordingFailed(TemporaryError):
    """The ledger could not be written: the worker stops; its rows return after the lease."""


def _log_skipped(count: int) -> None:
    if count:
        log.info("skipped %d row(s) whose recipients left after they were queued", count)


@dataclass
class _Variants:
    """A campaign's frozen variants and the message templates built of them so far."""

    campaign: Campaign
    contents: list[campaign_store.FrozenContent]
    built: dict[str, MessageTemplate] = field(default_factory=dict)


class Worker:
    """Sends due ledger rows; `run_once()` handles one batch (topped up as it empties),
    `run(stop)` loops."""

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
        store: Store | None = None,
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
        self.store: Store = store or SqlLedger(sessions, self.name)
        # Who we are, in the `workers` table; finds the rows of dead workers.
        self._presence = owners.Presence(sessions.kw["bind"], self.name)
        self._keeper: LeaseKeeper | None = None
        self._templates: dict[int, _Variants] = {}
        # Groups of outcomes handed to the store, and of those the ones committed.
        self._writes_started = self._writes_done = 0
        self._transports: list[Transport] = []
        self._consecutive_failures = 0
        self._last_failure = ""
        self._halted: set[int] = set()  # campaigns paused mid-batch: release their jobs
        self._stopped: set[int] = set()  # paused or cancelled by someone else mid-batch
        self.fatal: MailerError | None = None  # e.g. a refused login: stop the worker

    # --- claiming ---------------------------------------------------------------------
    def claim(self, limit: int | None = None) -> list[Job]:
        """Take up to `limit` due rows of sending campaigns; mark them sending, leased to us
        (those whose person left since they were queued are recorded skipped instead)."""
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.worker_lease_seconds)
        jobs, skipped = self.store.claim(limit or self.settings.worker_batch_size, now, lease)
        _log_skipped(skipped)
        return jobs

    def _recheck(self, waiting: deque[Job]) -> None:
        """Skip the waiting jobs whose person left while the batch was going out."""
        if not waiting:
            return
        try:
            kept, skipped = self.store.drop_withdrawn(list(waiting))
        except SQLAlchemyError as exc:  # the batch goes on; checked again in a second
            log.warning("database unavailable while sending: %s", exc)
            return
        _log_skipped(skipped)
        if len(kept) != len(waiting):
            waiting.clear()
            waiting.extend(kept)

    # --- templates -------------------------------------------------------------------
    def template(self, campaign_id: int, language: str | None = None) -> MessageTemplate:
        """The campaign's message in the variant for a reader of `language` (the default
        variant when theirs does not exist), each variant built once."""
        variants = self._templates.get(campaign_id)
        if variants is None:
            with self.sessions() as session:
                campaign = campaign_store.get_campaign(session, campaign_id)
                contents = campaign_store.frozen_contents(session, campaign)
            if not contents:
                raise campaign_store.CampaignError(f"campaign {campaign_id} is not frozen")
            variants = self._templates[campaign_id] = _Variants(campaign, contents)
        content = campaign_store.content_for(variants.contents, language)
        template = variants.built.get(content.language)
        if template is None:
            campaign = variants.campaign
            assert campaign.frozen_at is not None
            template = MessageTemplate(
                identity=campaign_store.variant_identity(self.identity, content),
                campaign_id=campaign.id,
                nonce=f"{int(campaign.frozen_at.timestamp()):x}",
                subject=content.subject,
                sender=campaign.sender,
                html=content.html,
                text=content.text,
                reply_to=campaign.reply_to,
                extra_headers=(("Content-Language", content.language),) if content.language else (),
                sign=self.sign,
                view_language=content.language or None,
            )
            variants.built[content.language] = template
        return template

    # --- sending ----------------------------------------------------------------------
    def _start(self, lane: Lane, job: Job, outcomes: list[Outcome], back: list[Job]) -> bool:
        """Personalise `job` and write its envelope on `lane`; False if that failed (the
        lane stays idle; the job's outcome or its return is noted)."""
        if self._should_skip(job):
            back.append(job)
            return False
        try:
            message = self.template(job.campaign_id, job.language).personalise(
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
        lane.hold(job, message, Step.ENVELOPE, self.settings.smtp_timeout)
        return True

    def _advance(self, lane: Lane, outcomes: list[Outcome], back: list[Job]) -> None:
        """The lane's reply has come: read the envelope's replies, or the verdict."""
        job, message = lane.job, lane.message
        assert job is not None and message is not None
        if lane.step is Step.ENVELOPE:
            try:
                lane.transport.accepted()
            except Exception as exc:  # sorted out by _failed
                lane.release()
                self._failed(job, exc, outcomes, back)
            else:
                lane.hold(job, message, Step.ACCEPTED, self.settings.smtp_timeout)
            return
        lane.release()
        try:
            reply = lane.transport.finish()
        except Exception as exc:  # sorted out by _failed
            self._failed(job, exc, outcomes, back)
            return
        self._consecutive_failures = 0
        lane.needs = self._writes_started + 1  # the next group carries its outcome
        outcomes.append(Outcome(job, LedgerStatus.SENT, str(reply), message.message_id))

    def _hand_over(self, lanes: list[Lane], outcomes: list[Outcome], back: list[Job]) -> float:
        """Write the message of every lane whose envelope was accepted, each as soon as
        the rate limit gives it a slot: the slot is taken as the message goes to the
        server, so the relay never sees more than the limit, however long connections
        took to open. A lane whose last message's outcome is not yet committed waits
        for it (the group is started if need be, not waited for here). Returns the wait
        for the next slot (0.0: every lane was served or waits for the recorder)."""
        accepted = [lane for lane in lanes if lane.step is Step.ACCEPTED]
        if not accepted:
            return 0.0
        self._settle()
        if any(lane.needs > self._writes_done for lane in accepted):
            self._flush(outcomes)  # durable before these lanes' next dot
        stopping = self.fatal is not None or (self._stop is not None and self._stop.is_set())
        for lane in accepted:
            job, message = lane.job, lane.message
            assert job is not None and message is not None
            if lane.needs > self._writes_done and not self._should_skip(job):
                continue  # its previous message is still being recorded
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
                lane.hold(job, message, Step.VERDICT, self.settings.smtp_timeout)
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
        return Outcome(job, LedgerStatus.RETRY, reply)  # due again: see `_write`

    def backoff(self, attempts: int) -> timedelta:
        """Exponential from retry_base_seconds, capped at retry_max_seconds."""
        seconds = self.settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self.settings.retry_max_seconds))

    # --- recording --------------------------------------------------------------------
    def _write(self, outcomes: list[Outcome]) -> None:
        """Record outcomes in one transaction; retries are due after their backoff."""
        now = self.clock()
        self.store.record(
            [
                replace(o, retry_at=now + self.backoff(o.job.attempts))
                if o.status == LedgerStatus.RETRY
                else o
                for o in outcomes
            ],
            now,
        )

    def _release(self, jobs: Iterable[Job]) -> None:
        """Give claimed rows back untried (their campaign was paused, or we are stopping)."""
        ids = [job.row_id for job in jobs]
        if ids:
            self.store.release(ids, self.clock())

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
                try:
                    lifecycle.pause_failing(session, campaign_id, reason)
                except lifecycle.IllegalTransition:
                    continue  # no longer sending: paused or cancelled meanwhile
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
                try:
                    lifecycle.resume_recovered(session, campaign_id)
                except lifecycle.IllegalTransition:
                    continue  # resumed, cancelled or taken over by a person meanwhile
                ledger.retry_now(session, campaign_id, self.clock())
                resumed.append(campaign_id)
        self._consecutive_failures = 0
        return resumed

    def finish_done(self) -> list[int]:
        """Mark sent every sending campaign with no open rows and no waves left to enqueue."""
        finished = []
        with self.sessions.begin() as session:
            open_rows = ledger.has_open_rows(Campaign.id)
            candidates = session.scalars(
                select(Campaign.id).where(Campaign.state == CampaignState.SENDING, ~open_rows)
            ).all()
            for campaign_id in candidates:
                try:
                    lifecycle.finish(session, campaign_id)
                except lifecycle.IllegalTransition:
                    continue  # waves still to start, or paused or cancelled meanwhile
                self._templates.pop(campaign_id, None)
                finished.append(campaign_id)
        return finished

    # --- loops --------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim one batch and send it over the connections; return the rows handled."""
        if self.fatal is not None:
            raise self.fatal
        name = self._presence.tend()  # and takes back the rows of dead workers
        if name != self.name:
            self.name = name
            self.store.rename(name)
        jobs = self.claim()
        self._stopped = set()
        if not jobs:
            self.finish_done()
            return 0
        handled = self._send_batch(jobs)
        if self.fatal is not None:
            raise self.fatal
        if self._halted:
            self._pause_halted()
        self.finish_done()
        return handled

    def _send_batch(self, jobs: list[Job]) -> int:
        """Send the batch over every connection from this one thread, each connection
        moving its own message along as its server answers (a slow reply holds up only
        its own connection).

        Outcomes are committed in groups, at the latest when a connection is about to
        send its next message: so at most one accepted message per connection is ever
        unrecorded. Meanwhile the worker renews its leases, notices campaigns paused or
        cancelled by someone else and stops when asked; their rows and the rest of the
        batch go back untried. As the batch empties it takes more due rows, for up to
        REFILL_SECONDS (`_refill`); returns how many rows it took in all.
        """
        handled = len(jobs)
        waiting = deque(jobs)
        lanes = self._lanes()
        keeper = LeaseKeeper(
            self.settings.worker_lease_seconds,
            [job.row_id for job in jobs],
            sorted({job.campaign_id for job in jobs}),
            waiting,
            renew=self._renew,
            check=self._check_campaigns,
            recheck=self._recheck,
        )
        self._keeper = keeper
        outcomes: list[Outcome] = []
        back: list[Job] = []
        refill_until = time.monotonic() + REFILL_SECONDS
        while True:
            keeper.tend()
            stopping = self.fatal is not None or (self._stop is not None and self._stop.is_set())
            if not stopping and len(waiting) < len(lanes) and time.monotonic() < refill_until:
                more = self._refill(keeper, waiting)
                handled += more
                if not more:
                    refill_until = 0.0  # nothing more due, or the worker's name changed
            limit_wait = self._hand_over(lanes, outcomes, back)
            if not stopping and not limit_wait:
                # An envelope is written only while a slot awaits it and every message
                # already begun (the slot itself is taken by `_hand_over`).
                begun = sum(lane.step in (Step.ENVELOPE, Step.ACCEPTED) for lane in lanes)
                for lane in lanes:
                    if not waiting:
                        break
                    if lane.step is not Step.IDLE:
                        continue
                    limit_wait = self.limiter.wait_for(begun + 1)
                    if limit_wait > 0:
                        break
                    begun += self._start(lane, waiting.popleft(), outcomes, back)
            busy = [lane for lane in lanes if lane.step in (Step.ENVELOPE, Step.VERDICT)]
            recording = self._settle()
            if not busy:
                accepted = [lane for lane in lanes if lane.step is Step.ACCEPTED]
                if recording is not None and any(
                    lane.needs > self._writes_done for lane in accepted
                ):
                    wait_readable(recording, 1.0)  # the recorder's commit, then their dots
                    continue
                if accepted:
                    self._pause(min(limit_wait, 1.0))  # their slot is near: `wait_for` saw it
                    continue
                if stopping or not waiting:
                    break
                if limit_wait > 0:  # the rate limit: wait for the next slot
                    self._record(outcomes)
                    self._pause(min(limit_wait, 1.0))
                continue
            for lane in answered(busy, limit_wait, recording):
                self._advance(lane, outcomes, back)
            self._hand_over(lanes, outcomes, back)  # at once, where the limit allows
            for lane in busy:
                if lane.step in (Step.ENVELOPE, Step.VERDICT) and lane.overdue():
                    job = lane.job
                    assert job is not None
                    lane.transport.abandon()
                    lane.release()
                    reply = f"no reply from the SMTP server in {self.settings.smtp_timeout:g} s"
                    outcomes.append(self._temporary(job, reply))
            self._release(back)
            back.clear()
        self._keeper = None
        self._record(outcomes)
        self._release(back)
        self._release(waiting)
        return handled

    def _refill(self, keeper: LeaseKeeper, waiting: deque[Job]) -> int:
        """Claim the next batch while this one's last messages are still on the wire, so
        the connections never stand idle at a batch boundary (waiting for the claim, the
        last outcomes' commit, the campaign chores). Returns how many rows it took."""
        try:
            if self._halted or self._presence.tend() != self.name:
                return 0  # a paused campaign or a new name: `run_once` sorts them out first
            jobs = self.claim()
        except SQLAlchemyError as exc:  # the batch in hand goes on, its outcomes recorded
            log.warning("database unavailable while sending: %s", exc)
            return 0
        keeper.add(jobs)
        waiting.extend(jobs)
        return len(jobs)

    def _lanes(self) -> list[Lane]:
        while len(self._transports) < self.settings.smtp_connections:
            self._transports.append(self.transport_factory())
        return [Lane(transport) for transport in self._transports]

    def _pause(self, seconds: float) -> None:
        if self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _record(self, outcomes: list[Outcome]) -> None:
        """Commit the outcomes gathered so far (and empty the list); every group is
        durable on return."""
        self._wait_recorded()
        self._flush(outcomes)
        self._wait_recorded()

    def _flush(self, outcomes: list[Outcome]) -> None:
        """Start committing the outcomes gathered so far (and empty the list), unless a
        group is still in flight: one at a time, this one goes after it."""
        if not outcomes or self._writes_started > self._writes_done:
            return
        try:
            self._write(outcomes)
        except Exception as exc:  # the worker stops; its rows return when their lease expires
            self._recording_failed(exc)
        self._writes_started += 1
        outcomes.clear()
        self._settle()

    def _settle(self) -> int | None:
        """Note the groups committed by now; the socket to wait for while one is not."""
        if self._writes_done == self._writes_started:
            return None
        try:
            waiting_on = self.store.unrecorded()
        except Exception as exc:
            self._recording_failed(exc)
        if waiting_on is None:
            self._writes_done = self._writes_started
        return waiting_on

    def _wait_recorded(self) -> None:
        while (waiting_on := self._settle()) is not None:
            wait_readable(waiting_on, 1.0)

    def _recording_failed(self, exc: Exception) -> NoReturn:
        self.fatal = RecordingFailed(f"cannot record outcomes in the database: {exc}")
        raise self.fatal from exc

    def _check_campaigns(self, campaign_ids: list[int]) -> None:
        """Note campaigns that left `sending` (paused or cancelled by an operator)."""
        try:
            self._stopped = self.store.stopped(campaign_ids)
        except SQLAlchemyError as exc:  # the batch goes on; recording decides its fate
            log.warning("database unavailable while sending: %s", exc)

    def _renew(self, ids: list[int]) -> set[int]:
        """Extend the lease of those rows still ours; return their ids (a row another
        worker took after our lease ran out is not, and must not be sent by us)."""
        until = self.clock() + timedelta(seconds=self.settings.worker_lease_seconds)
        return self.store.renew(ids, until)

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
        self.store.close()
