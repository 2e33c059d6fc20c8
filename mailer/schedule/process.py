"""The running scheduler: one process per database that starts each wave on time.

`CampaignScheduler` (`mailer scheduler`, or inside `mailer serve`) takes the
scheduler lock, runs APScheduler 3 with its `SQLAlchemyJobStore` in our database
(one date job per pending wave, run by `runner.WaveExecutor`) and every
`scheduler_poll_seconds` reconciles the job store with the waves planning wrote
(new, changed, cancelled). A wave found due with no job (scheduled while no
scheduler ran, or left by a crash) is started at once if it is no later than the
campaign's grace, else marked missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from mailer.delivery.campaigns import Campaign, CampaignState, RendererLike
from mailer.schedule.locks import SchedulerLock
from mailer.schedule.plan import ENDED, job_id, wave_id_of
from mailer.schedule.runner import WaveExecutor, WaveRunner, fire_wave
from mailer.schedule.waves import CampaignWave, WaveStatus
from mailer.timestamps import utcnow

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"


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
                executors={"default": WaveExecutor(self.runner)},
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
