"""Campaign schedules, and the one process that starts each wave on time.

Two halves share the `campaign_waves` table:

* Planning (`schedule`, `reschedule`, `unschedule`, `schedule_listing`,
  `waves_report`) is what commands and the web app call. It only writes waves and
  moves the campaign to `scheduled`; it never touches APScheduler's job store, which
  only the running scheduler may use.
* `CampaignScheduler` is the running process (`mailer scheduler`, or inside
  `mailer serve`): APScheduler 3 with its `SQLAlchemyJobStore` in our database, one
  date job per pending wave. Every `scheduler_poll_seconds` it reconciles the job
  store with the waves (new, changed, cancelled). A job carries only the wave id;
  firing it enqueues that wave's recipients with `campaigns.start_sending`, which is
  idempotent, so a job that fires twice, or a campaign also started by hand, sends
  nothing twice.

Misfires: a wave found due when the scheduler (re)starts starts at once if it is no
later than the campaign's grace, else it is marked missed, the campaign too, and a
warning is logged; it is never dropped silently nor sent a day late.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import run_job
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from mailer.delivery import campaigns, ledger
from mailer.delivery.campaigns import Campaign, CampaignState, RendererLike
from mailer.errors import PermanentError
from mailer.schedule.locks import SchedulerLock
from mailer.schedule.waves import (
    CampaignWave,
    DstRule,
    PlannedWave,
    ScheduleError,
    WaveStatus,
    plan_instant,
    plan_local,
    zone,
)
from subscribers.errors import StoreError

log = logging.getLogger("mailer.schedule.scheduler")

JOB_PREFIX = "wave-"
JOBS_TABLE = "apscheduler_jobs"
# A campaign in one of these states sends no more waves.
ENDED = frozenset(
    {CampaignState.CANCELLED, CampaignState.DRAFT, CampaignState.SENT, CampaignState.FAILED}
)
# A job that fires this much before its wave's start belongs to an older plan.
EARLY_TOLERANCE = timedelta(seconds=2)


def utcnow() -> datetime:
    return datetime.now(UTC)


def job_id(wave_id: int) -> str:
    return f"{JOB_PREFIX}{wave_id}"


def wave_id_of(job: str) -> int | None:
    if not job.startswith(JOB_PREFIX):
        return None
    try:
        return int(job[len(JOB_PREFIX) :])
    except ValueError:
        return None


# --- planning: what commands and the web app call -----------------------------------


def audience_zones(session: Session, campaign: Campaign) -> dict[str, int]:
    """Recipients per time zone in the campaign's audience, counted in the database."""
    recipients = campaigns.audience_select(campaign).order_by(None).subquery()
    rows = session.execute(
        select(recipients.c.timezone, func.count())
        .select_from(recipients)
        .group_by(recipients.c.timezone)
    )
    return {str(tz): int(count) for tz, count in rows}


def _waves_of(session: Session, campaign_id: int) -> list[CampaignWave]:
    return list(
        session.scalars(
            select(CampaignWave)
            .where(CampaignWave.campaign_id == campaign_id)
            .order_by(CampaignWave.starts_at, CampaignWave.id)
        )
    )


def _plan(
    session: Session,
    campaign: Campaign,
    wall: datetime,
    *,
    tz: str | None,
    local_time: bool,
    rule: DstRule,
    now: datetime,
) -> tuple[list[PlannedWave], dict[str, int]]:
    counts = audience_zones(session, campaign)
    if local_time:
        bad = [name for name in counts if not _known_zone(name)]
        if bad:
            raise ScheduleError(
                f"campaign {campaign.id}: recipients have unknown time zones "
                f"{', '.join(sorted(bad))}; fix them in the subscriber store"
            )
        return plan_local(wall, counts, now, rule), counts
    if tz is None:
        raise ScheduleError("give the time zone of the time (--tz), or use --local-time")
    return [plan_instant(wall, tz, now, rule)], counts


def _known_zone(name: str) -> bool:
    try:
        zone(name)
    except ScheduleError:
        return False
    return True


def _store_plan(
    session: Session,
    campaign: Campaign,
    planned: Sequence[PlannedWave],
    counts: dict[str, int],
    grace_seconds: int | None,
) -> list[CampaignWave]:
    session.execute(
        delete(CampaignWave).where(
            CampaignWave.campaign_id == campaign.id,
            CampaignWave.status != WaveStatus.STARTED.value,
        )
    )
    waves = []
    for item in planned:
        expected = sum(counts.values()) if item.timezone is None else counts.get(item.timezone, 0)
        wave = CampaignWave(
            campaign_id=campaign.id,
            timezone=item.timezone,
            starts_at=item.starts_at,
            status=WaveStatus.PENDING.value,
            status_reason="",
            recipients=expected,
        )
        session.add(wave)
        waves.append(wave)
    session.flush()
    for wave in waves:
        wave.job_id = job_id(wave.id)
    local_zones = [w.timezone for w in planned if w.timezone is not None]
    campaigns.mark_scheduled(
        session,
        campaign.id,
        planned[0].starts_at,
        misfire_grace_seconds=grace_seconds,
        waves=local_zones,
    )
    session.flush()
    return waves


def schedule(
    session: Session,
    campaign_id: int,
    wall: datetime,
    *,
    tz: str | None = None,
    local_time: bool = False,
    rule: DstRule = DstRule.ERROR,
    grace_seconds: int | None = None,
    renderer: RendererLike | None = None,
    now: datetime | None = None,
) -> list[CampaignWave]:
    """Schedule a draft (or missed) campaign: at `wall` in `tz`, or at `wall` in each
    recipient's own zone (`local_time`). Freezes the content now when a renderer is
    given, so problems with the issue show up today and not at 09:00 tomorrow.
    The caller commits."""
    campaign = campaigns.get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if state is CampaignState.SCHEDULED:
        raise ScheduleError(
            f"campaign {campaign_id} is already scheduled; use `mailer campaign reschedule`"
        )
    if state not in (CampaignState.DRAFT, CampaignState.MISSED):
        raise ScheduleError(f"campaign {campaign_id} is {state}; only a draft can be scheduled")
    return _schedule(session, campaign, wall, tz, local_time, rule, grace_seconds, renderer, now)


def reschedule(
    session: Session,
    campaign_id: int,
    wall: datetime,
    *,
    tz: str | None = None,
    local_time: bool = False,
    rule: DstRule = DstRule.ERROR,
    grace_seconds: int | None = None,
    renderer: RendererLike | None = None,
    now: datetime | None = None,
) -> list[CampaignWave]:
    """Replace the plan of a scheduled (or missed) campaign that has not started yet."""
    campaign = campaigns.get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if state not in (CampaignState.SCHEDULED, CampaignState.MISSED):
        hint = " (use `mailer campaign schedule`)" if state is CampaignState.DRAFT else ""
        raise ScheduleError(
            f"campaign {campaign_id} is {state}; only a scheduled or missed campaign "
            f"can be rescheduled{hint}"
        )
    started = [w for w in _waves_of(session, campaign_id) if w.status == WaveStatus.STARTED]
    if started:
        raise ScheduleError(
            f"campaign {campaign_id} has already started sending "
            f"({started[0].timezone or 'all recipients'}); pause or cancel it instead"
        )
    return _schedule(session, campaign, wall, tz, local_time, rule, grace_seconds, renderer, now)


MAX_GRACE_SECONDS = 7 * 24 * 3600  # a larger one overflowed the column and timedelta


def _schedule(
    session: Session,
    campaign: Campaign,
    wall: datetime,
    tz: str | None,
    local_time: bool,
    rule: DstRule,
    grace_seconds: int | None,
    renderer: RendererLike | None,
    now: datetime | None,
) -> list[CampaignWave]:
    if grace_seconds is not None and grace_seconds <= 0:
        raise ScheduleError("the grace period must be a positive number of seconds")
    if grace_seconds is not None and grace_seconds > MAX_GRACE_SECONDS:
        raise ScheduleError(
            f"the grace period may be at most {MAX_GRACE_SECONDS} s (7 days): a send that "
            "late should be rescheduled by an editor"
        )
    planned, counts = _plan(
        session, campaign, wall, tz=tz, local_time=local_time, rule=rule, now=now or utcnow()
    )
    if not counts:
        raise ScheduleError(f"campaign {campaign.id}: its audience has no recipients")
    if renderer is not None and not campaign.frozen:
        campaigns.freeze(
            session,
            campaign.id,
            campaigns.render_issue_file(renderer, campaign.issue_path, campaign.subject),
        )
    return _store_plan(session, campaign, planned, counts, grace_seconds)


def unschedule(session: Session, campaign_id: int) -> Campaign:
    """Back to draft: the waves go, and the running scheduler drops their jobs."""
    campaign = campaigns.get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if state not in (CampaignState.SCHEDULED, CampaignState.MISSED):
        raise ScheduleError(
            f"campaign {campaign_id} is {state}; only a scheduled or missed campaign "
            "can be unscheduled (a running one can be paused or cancelled)"
        )
    session.execute(delete(CampaignWave).where(CampaignWave.campaign_id == campaign_id))
    return campaigns.unschedule(session, campaign_id)


@dataclass(frozen=True)
class ScheduleEntry:
    """One line of `mailer schedule list`."""

    campaign_id: int
    campaign_name: str
    campaign_state: str
    wave_id: int
    timezone: str | None
    starts_at: datetime
    status: str
    reason: str
    recipients: int | None


def schedule_listing(
    session: Session, *, include_done: bool = False, campaign_id: int | None = None
) -> list[ScheduleEntry]:
    """Waves in start order: pending ones and the missed or failed ones of campaigns
    still open (not sent, cancelled or back to draft), or all of them."""
    query = (
        select(CampaignWave, Campaign.name, Campaign.state)
        .join(Campaign, Campaign.id == CampaignWave.campaign_id)
        .order_by(CampaignWave.starts_at, CampaignWave.id)
    )
    if not include_done:  # what is to come, and misses nobody has dealt with yet
        query = query.where(
            CampaignWave.status.in_(
                [WaveStatus.PENDING.value, WaveStatus.MISSED.value, WaveStatus.FAILED.value]
            ),
            Campaign.state.not_in(sorted(s.value for s in ENDED)),
        )
    if campaign_id is not None:
        query = query.where(CampaignWave.campaign_id == campaign_id)
    return [
        ScheduleEntry(
            campaign_id=wave.campaign_id,
            campaign_name=name,
            campaign_state=state,
            wave_id=wave.id,
            timezone=wave.timezone,
            starts_at=wave.starts_at,
            status=wave.status,
            reason=wave.status_reason,
            recipients=wave.recipients,
        )
        for wave, name, state in session.execute(query)
    ]


@dataclass(frozen=True)
class WaveReport:
    """One wave of a campaign report: its zone, UTC start, recipients, ledger progress.

    `zones` are the ledger time zones counted in `progress`: the wave's own, or for
    the last wave also any zone that had no wave of its own when it started."""

    wave_id: int
    timezone: str | None
    starts_at: datetime
    status: str
    reason: str
    recipients: int | None
    zones: tuple[str, ...]
    progress: ledger.Tally


def waves_report(
    session: Session,
    campaign_id: int,
    *,
    report: ledger.Report | None = None,
    waves: Sequence[CampaignWave] | None = None,
) -> list[WaveReport]:
    """Per wave, how far its recipients have got; read from the ledger by time zone.
    A page that has read the `report` and the `waves` already passes them in."""
    waves = _waves_of(session, campaign_id) if waves is None else waves
    if not waves:
        return []
    report = ledger.report(session, campaign_id) if report is None else report
    by_zone = {t.key: t for t in report.by_timezone}
    planned = {w.timezone for w in waves if w.timezone is not None}
    leftover = sorted(set(by_zone) - planned)
    reports = []
    for index, wave in enumerate(waves):
        if wave.timezone is None:
            zones = tuple(sorted(by_zone))
        elif index == len(waves) - 1:
            zones = (wave.timezone, *leftover)
        else:
            zones = (wave.timezone,)
        progress = _sum_tallies(wave.timezone or "all", [by_zone[z] for z in zones if z in by_zone])
        reports.append(
            WaveReport(
                wave_id=wave.id,
                timezone=wave.timezone,
                starts_at=wave.starts_at,
                status=wave.status,
                reason=wave.status_reason,
                recipients=wave.recipients,
                zones=zones,
                progress=progress,
            )
        )
    return reports


def _sum_tallies(key: str, tallies: Iterable[ledger.Tally]) -> ledger.Tally:
    items = list(tallies)
    return ledger.Tally(
        key,
        total=sum(t.total for t in items),
        sent=sum(t.sent for t in items),
        pending=sum(t.pending for t in items),
        retrying=sum(t.retrying for t in items),
        failed=sum(t.failed for t in items),
    )


# --- firing: the running scheduler ----------------------------------------------------


def fire_wave(wave_id: int) -> None:
    """The callable a wave's job names in the job store (jobs carry only the wave id).

    APScheduler stores this textual reference; `CampaignScheduler`'s executor runs
    `WaveRunner.fire` in its place, with the database it was built with.
    """
    raise RuntimeError(f"wave {wave_id}: fire_wave runs only inside a CampaignScheduler")


class WaveRunner:
    """Starts waves: enqueues their recipients, or marks them missed, failed or cancelled.

    All firing goes through one lock, so the reconciliation loop and a job firing at
    the same moment never both start a wave; the database checks make it idempotent
    across processes and restarts as well.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        default_grace_seconds: int,
        make_renderer: Callable[[], RendererLike] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._grace = default_grace_seconds
        self._make_renderer = make_renderer
        self._renderer: RendererLike | None = None
        self._clock = clock
        self._lock = threading.RLock()

    def grace_of(self, campaign: Campaign) -> int:
        return campaign.misfire_grace_seconds or self._grace

    def fire(self, wave_id: int, *, check_grace: bool = True) -> str:
        """Start wave `wave_id` if it is still pending and due; returns its new status.

        `check_grace=False` when APScheduler has already judged the job on time.
        """
        with self._lock:
            begun = time.monotonic()
            try:
                with self._sessions.begin() as session:
                    status = self._fire(session, wave_id, check_grace)
            except (PermanentError, StoreError) as exc:
                log.error("wave %s could not start: %s", wave_id, exc)
                with self._sessions.begin() as session:
                    status = self._fail(session, wave_id, str(exc))
            except Exception:
                log.exception("wave %s: starting failed; it stays pending and is retried", wave_id)
                return WaveStatus.PENDING.value
            with self._sessions() as session:
                wave = session.get(CampaignWave, wave_id)
                label = wave.label if wave is not None else f"wave {wave_id}"
            log.info("%s: end (%s) after %.2f s", label, status, time.monotonic() - begun)
            return status

    def _fire(self, session: Session, wave_id: int, check_grace: bool) -> str:
        wave = session.get(CampaignWave, wave_id)
        if wave is None:
            log.info("wave %s: gone (unscheduled or rescheduled); nothing to do", wave_id)
            return "gone"
        # Lock the campaign, then the wave: the order planning uses, so the two
        # never deadlock on PostgreSQL.
        campaign = campaigns.get_campaign(session, wave.campaign_id, lock=True)
        session.refresh(wave, with_for_update=True)
        if wave.status != WaveStatus.PENDING:
            log.info("%s: already %s; nothing to do", wave.label, wave.status)
            return wave.status
        state = CampaignState(campaign.state)
        if state in ENDED:  # settled at once, due or not
            log.info("%s: cancelled, campaign %s is %s", wave.label, campaign.id, state)
            return self._set(wave, WaveStatus.CANCELLED, f"campaign is {state}")
        now = self._clock()
        if wave.starts_at - now > EARLY_TOLERANCE:
            log.info("%s: not due until %s; left for its job", wave.label, wave.starts_at)
            return wave.status
        log.info(
            "%s: start (campaign %r is %s, due %s UTC)",
            wave.label,
            campaign.name,
            state,
            f"{wave.starts_at:%Y-%m-%d %H:%M:%S}",
        )
        if state is CampaignState.MISSED:
            self._drop_zone(campaign, wave)
            return self._set(
                wave, WaveStatus.MISSED, "the campaign missed an earlier wave; reschedule it"
            )
        late = now - wave.starts_at
        grace = self.grace_of(campaign)
        if check_grace and late > timedelta(seconds=grace):
            return self._miss(session, campaign, wave, late, grace)
        zones = self._zones_for(session, campaign, wave)
        added = campaigns.start_sending(
            session,
            campaign.id,
            timezones=zones,
            renderer=self._renderer_for(campaign),
            firing_wave=wave.id,
        )
        wave.started_at = now
        wave.recipients = added
        late_note = f", {late.total_seconds():.0f} s late" if late > timedelta(seconds=1) else ""
        log.info(
            "%s: %d recipients enqueued%s%s",
            wave.label,
            added,
            late_note,
            " (campaign paused: they wait for resume)" if state is CampaignState.PAUSED else "",
        )
        return self._set(wave, WaveStatus.STARTED, "")

    def _renderer_for(self, campaign: Campaign) -> RendererLike | None:
        """Commands freeze content when scheduling; for anything that did not, render
        now (built once, on first need, so a scheduler without a profile still runs)."""
        if campaign.frozen or self._make_renderer is None:
            return None
        if self._renderer is None:
            self._renderer = self._make_renderer()
        return self._renderer

    def _zones_for(
        self, session: Session, campaign: Campaign, wave: CampaignWave
    ) -> Collection[str] | None:
        """The wave's zone. The last pending wave also takes everyone not enqueued yet
        whose zone's wave went out (people who joined after scheduling, or moved to a
        zone whose wave had passed), so nobody is left out; zones whose wave was missed
        or failed stay out: they are not sent late behind the editor's back."""
        if wave.timezone is None:
            return None
        others = [w for w in _waves_of(session, campaign.id) if w.id != wave.id]
        if any(w.status == WaveStatus.PENDING for w in others):
            return {wave.timezone}
        left_out = {
            w.timezone
            for w in others
            if w.timezone is not None and w.status in (WaveStatus.MISSED, WaveStatus.FAILED)
        }
        zones = (set(audience_zones(session, campaign)) - left_out) | {wave.timezone}
        unplanned = zones - {w.timezone for w in others} - {wave.timezone}
        if unplanned:
            log.info("%s: also takes zones without a wave: %s", wave.label, sorted(unplanned))
        return zones

    def _miss(
        self,
        session: Session,
        campaign: Campaign,
        wave: CampaignWave,
        late: timedelta,
        grace: int,
    ) -> str:
        reason = (
            f"due {wave.starts_at:%Y-%m-%d %H:%M} UTC, found {_duration(late)} late "
            f"(grace {_duration(timedelta(seconds=grace))}): the service was not running"
        )
        log.warning("%s: MISSED, nothing sent: %s", wave.label, reason)
        self._drop_zone(campaign, wave)
        self._campaign_missed(session, campaign, f"{wave.timezone or 'send'} missed: {reason}")
        return self._set(wave, WaveStatus.MISSED, reason)

    @staticmethod
    def _campaign_missed(session: Session, campaign: Campaign, reason: str) -> None:
        """A campaign none of whose recipients were enqueued yet is missed as a whole
        (also when it was paused meanwhile); one already under way goes on."""
        state = CampaignState(campaign.state)
        if state is CampaignState.PAUSED and ledger.progress(session, campaign.id).total == 0:
            campaigns.transition(campaign, CampaignState.SCHEDULED)
            state = CampaignState.SCHEDULED
        if state is CampaignState.SCHEDULED:
            campaigns.mark_missed(session, campaign.id, reason)

    def _fail(self, session: Session, wave_id: int, reason: str) -> str:
        wave = session.get(CampaignWave, wave_id)
        if wave is None:
            return "gone"
        campaign = campaigns.get_campaign(session, wave.campaign_id, lock=True)
        session.refresh(wave, with_for_update=True)
        if wave.status != WaveStatus.PENDING:
            return wave.status
        self._drop_zone(campaign, wave)
        self._campaign_missed(session, campaign, f"could not start: {reason}")
        return self._set(wave, WaveStatus.FAILED, reason[:500])

    @staticmethod
    def _drop_zone(campaign: Campaign, wave: CampaignWave) -> None:
        """A wave that will not send no longer holds the campaign open."""
        if wave.timezone is not None and wave.timezone in (campaign.pending_waves or []):
            campaign.pending_waves = [z for z in campaign.pending_waves if z != wave.timezone]

    @staticmethod
    def _set(wave: CampaignWave, status: WaveStatus, reason: str) -> str:
        wave.status = status.value
        wave.status_reason = reason
        return status.value


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _BoundJob:
    """What `run_job` needs of a job, with the function bound to our runner."""

    job: Any
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.job.id)

    @property
    def misfire_grace_time(self) -> int | None:
        return self.job.misfire_grace_time  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return str(self.job.id)


class _WaveExecutor(BasePoolExecutor):  # type: ignore[misc]
    """Runs wave jobs with the runner: the stored job names `fire_wave` and a wave id."""

    def __init__(self, runner: WaveRunner, threads: int = 2) -> None:
        super().__init__(concurrent.futures.ThreadPoolExecutor(threads, "wave"))
        self._runner = runner

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def start(wave_id: int) -> str:
            return self._runner.fire(wave_id, check_grace=False)

        bound = _BoundJob(job, start, tuple(job.args), dict(job.kwargs))

        def done(future: concurrent.futures.Future[Any]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(
            run_job, bound, job._jobstore_alias, run_times, self._logger.name
        )
        future.add_done_callback(done)


class CampaignScheduler:
    """The running scheduler: lock, APScheduler, and the reconciliation loop."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        *,
        default_grace_seconds: int = 3600,
        poll_seconds: float = 5.0,
        make_renderer: Callable[[], RendererLike] | None = None,
        clock: Callable[[], datetime] = utcnow,
        chores: Sequence[Callable[[], None]] = (),
    ) -> None:
        self._chores = chores  # housekeeping run after each re-read (sign-up purge)
        self._engine = engine
        self._sessions = sessions
        self._poll = poll_seconds
        self._clock = clock
        self._default_grace = default_grace_seconds
        self.runner = WaveRunner(
            sessions,
            default_grace_seconds=default_grace_seconds,
            make_renderer=make_renderer,
            clock=clock,
        )
        self.lock = SchedulerLock(engine)
        self._scheduler: BackgroundScheduler | None = None
        self._jobs_engine: Engine | None = None
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        """Take the lock (or raise SchedulerAlreadyRunning), load jobs, reconcile, run."""
        if self._scheduler is not None:
            raise RuntimeError("this scheduler is already running")
        self.lock.acquire()
        try:
            # The job store gets an engine of its own: it disposes it on shutdown.
            self._jobs_engine = db.make_engine(
                self._engine.url.render_as_string(hide_password=False)
            )
            scheduler = BackgroundScheduler(
                jobstores={
                    "default": SQLAlchemyJobStore(engine=self._jobs_engine, tablename=JOBS_TABLE)
                },
                executors={"default": _WaveExecutor(self.runner)},
                job_defaults={"coalesce": True, "max_instances": 1},
                timezone=UTC,
            )
            scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
            log.info("scheduler starting against %s", self.lock.where)
            scheduler.start()  # runs jobs that came due while we were down (within grace)
            self._scheduler = scheduler
            self.sync()
            # The re-reading runs in a thread of ours, not as an APScheduler job: a job
            # that calls the scheduler deadlocks with `shutdown(wait=True)`, which holds
            # the job-store lock while it waits for running jobs.
            self._stopping.clear()
            self._loop = threading.Thread(target=self._reread, name="schedule-reread", daemon=True)
            self._loop.start()
        except BaseException:
            self._shutdown()
            raise
        log.info("scheduler running; re-reading schedules every %s s", self._poll)

    def stop(self, wait: bool = True) -> None:
        """Stop firing, wait for a wave being enqueued, give the lock back."""
        self._shutdown(wait)
        log.info("scheduler stopped")

    def _reread(self) -> None:
        while not self._stopping.wait(self._poll):
            self._sync_quietly()

    def _shutdown(self, wait: bool = True) -> None:
        self._stopping.set()
        loop, self._loop = self._loop, None
        if loop is not None and loop is not threading.current_thread():
            loop.join()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=wait)
        if self._jobs_engine is not None:
            self._jobs_engine.dispose()
            self._jobs_engine = None
        self.lock.release()

    def __enter__(self) -> CampaignScheduler:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _on_event(self, event: JobExecutionEvent) -> None:
        """Log only: APScheduler may call this while holding its own locks, so the
        reconciliation (which finds the wave due and without a job) records a miss."""
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "job %s missed its time (%s); the wave is settled at the next check",
                event.job_id,
                event.scheduled_run_time,
            )
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s failed: %s", event.job_id, event.exception)

    def _sync_quietly(self) -> None:
        try:
            self.sync()
            for chore in self._chores:
                chore()
        except Exception:
            log.exception("re-reading the schedule failed; trying again in %s s", self._poll)

    def sync(self) -> None:
        """Make the job store match the pending waves, and settle waves that are due.

        A pending wave with no job gets one; a due one with no job (scheduled while
        no scheduler ran, or left by a crash) is started or marked missed now; jobs
        of waves that are gone, started or cancelled are removed.
        """
        scheduler = self._scheduler
        if scheduler is None:
            return
        # No lock held while calling APScheduler: firing is idempotent under the
        # runner's lock, so a wave its job starts at this moment is not started twice.
        with self._sessions() as session:
            rows = session.execute(
                select(CampaignWave, Campaign)
                .join(Campaign, Campaign.id == CampaignWave.campaign_id)
                .where(CampaignWave.status == WaveStatus.PENDING.value)
                .order_by(CampaignWave.starts_at)
            ).all()
            pending = [
                (w.id, w.starts_at, self.runner.grace_of(c), CampaignState(c.state) in ENDED)
                for w, c in rows
            ]
        jobs = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
        now = self._clock()
        due: list[int] = []
        for wave_id, starts_at, grace, ended in pending:
            if ended:  # cancelled: settle the wave now; its job goes below
                due.append(wave_id)
                continue
            job = jobs.pop(job_id(wave_id), None)
            if starts_at <= now:
                if job is None:
                    due.append(wave_id)
                continue  # a job due now is APScheduler's to run
            if job is None:
                scheduler.add_job(
                    fire_wave,
                    trigger=DateTrigger(run_date=starts_at),
                    args=(wave_id,),
                    id=job_id(wave_id),
                    name=f"wave {wave_id}",
                    misfire_grace_time=grace,
                    jobstore="default",
                    executor="default",
                    replace_existing=True,
                )
                log.info("wave %s: job added for %s UTC", wave_id, f"{starts_at:%Y-%m-%d %H:%M:%S}")
            elif (
                job.next_run_time is None
                or abs(job.next_run_time - starts_at) > timedelta(seconds=1)
                or job.misfire_grace_time != grace
            ):
                job.modify(misfire_grace_time=grace)
                job.reschedule(DateTrigger(run_date=starts_at))
                log.info("wave %s: job moved to %s UTC", wave_id, starts_at)
        for stale in jobs.values():
            if wave_id_of(stale.id) is not None:
                scheduler.remove_job(stale.id, jobstore="default")
                log.info("job %s removed: its wave is no longer pending", stale.id)
        for wave_id in due:
            self.runner.fire(wave_id, check_grace=True)

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set (the `mailer scheduler` command)."""
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
