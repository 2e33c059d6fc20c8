"""Starting waves on time: the wave runner and the APScheduler executor that calls it.

A wave's job in APScheduler's store carries only the wave id and names `fire_wave`;
`WaveExecutor` runs `WaveRunner.fire` in its place, with the database the running
scheduler (`mailer.schedule.process`) was built with. Firing enqueues the wave's
recipients with `lifecycle.start_sending`, which is idempotent, so a job that fires
twice, or a campaign also started by hand, sends nothing twice.

Misfires: a wave found due later than the campaign's grace is marked missed, the
campaign too (`lifecycle.miss`), and a warning is logged; it is never dropped
silently nor sent a day late.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import BasePoolExecutor
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns, lifecycle
from mailer.delivery.campaigns import Campaign, CampaignState, RendererLike
from mailer.errors import PermanentError
from mailer.schedule.plan import ENDED, audience_zones, waves_of
from mailer.schedule.waves import CampaignWave, WaveStatus
from mailer.timestamps import utcnow
from subscribers.errors import StoreError

log = logging.getLogger(__name__)

# A job that fires this much before its wave's start belongs to an older plan.
EARLY_TOLERANCE = timedelta(seconds=2)


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
        added = lifecycle.start_sending(
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
        others = [w for w in waves_of(session, campaign.id) if w.id != wave.id]
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
        try:
            lifecycle.miss(session, campaign.id, reason)
        except lifecycle.IllegalTransition:
            pass  # under way (or ended): the other waves go on

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


class WaveExecutor(BasePoolExecutor):  # type: ignore[misc]
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
