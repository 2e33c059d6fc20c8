"""The running scheduler: real APScheduler, real job store, both databases, real time.

"The process" is a CampaignScheduler started and stopped (its job store and lock live
in the database and the lock file, exactly as across process restarts;
tests/test_scheduler_processes.py also restarts real processes).

APScheduler 3 reads the wall clock itself, so firing is tested in real time; planning
takes its clock as a parameter, so a wave that is already overdue needs no waiting.
Due times are derived from how long this machine took to start and stop a scheduler
(tests/waiting.py), and a scenario a slow moment broke (the job was to be stored
before the due time, and was not) runs again on a fresh campaign with a longer lead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns, lifecycle
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.ledger import LedgerRow
from mailer.schedule import plan
from mailer.schedule.locks import SchedulerAlreadyRunning
from mailer.schedule.process import CampaignScheduler
from mailer.schedule.waves import CampaignWave, ScheduleError
from tests.test_scheduler import new_campaign, populate
from tests.waiting import Pace, wait_until

pytestmark = pytest.mark.slow

QUIET = 1.5  # seconds of further polls in which nothing more may happen


def ahead(seconds: float, zone: str = "Asia/Shanghai") -> datetime:
    """The wall time in `zone` `seconds` from now (naive, as an editor would type it)."""
    instant = datetime.now(UTC) + timedelta(seconds=seconds)
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0)


def rows(sessions: sessionmaker[Session], cid: int) -> int:
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(LedgerRow).where(LedgerRow.campaign_id == cid)
            )
            or 0
        )


def the_wave(sessions: sessionmaker[Session], cid: int) -> CampaignWave:
    with sessions() as session:
        return session.scalars(select(CampaignWave).where(CampaignWave.campaign_id == cid)).one()


def stored_jobs(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(text("SELECT id FROM apscheduler_jobs"))]


def job_of(engine: Engine, sessions: sessionmaker[Session], cid: int) -> bool:
    return f"wave-{the_wave(sessions, cid).id}" in stored_jobs(engine)


@pytest.fixture
def make_scheduler(
    engine: Engine, sessions: sessionmaker[Session]
) -> Iterator[Callable[..., CampaignScheduler]]:
    made: list[CampaignScheduler] = []

    def make(grace: int = 3600) -> CampaignScheduler:
        instance = CampaignScheduler(
            engine, sessions, default_grace_seconds=grace, poll_seconds=0.5
        )
        made.append(instance)
        return instance

    yield make
    for instance in made:
        if instance.running:
            instance.stop()


@pytest.fixture
def pace(make_scheduler: Callable[..., CampaignScheduler]) -> Pace:
    """How long this machine takes, now, to start and stop a scheduler."""
    measured = Pace()
    done = measured.timed()
    warm = make_scheduler()
    warm.start()
    warm.stop()
    done()
    return measured


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)


def fresh_campaign(sessions: sessionmaker[Session], name: str = "Issue 15") -> int:
    with sessions.begin() as session:
        return new_campaign(session, name)


def schedule_in(
    sessions: sessionmaker[Session], cid: int, seconds: float, grace_seconds: int | None = None
) -> datetime:
    """Schedule `seconds` ahead (whole seconds); a time that passed before the call
    got to check it is tried again further ahead."""
    for _ in range(4):
        try:
            with sessions.begin() as session:
                (wave,) = plan.schedule(
                    session, cid, ahead(seconds), tz="Asia/Shanghai", grace_seconds=grace_seconds
                )
                return wave.starts_at
        except ScheduleError as exc:
            if "is in the past" not in str(exc):
                raise
            seconds = max(2 * seconds, 1.0)
    raise AssertionError(f"scheduling never finished within {seconds / 2:.0f} s")


def cancel(sessions: sessionmaker[Session], cid: int) -> None:
    """End an attempt whose premise a slow moment broke."""
    with sessions.begin() as session:
        if CampaignState(campaigns.get_campaign(session, cid).state) not in plan.ENDED:
            lifecycle.cancel(session, cid, "a slow moment broke this attempt's premise")


def stored_before_due(
    sessions: sessionmaker[Session],
    engine: Engine,
    pace: Pace,
    make_scheduler: Callable[..., CampaignScheduler],
    grace_seconds: int | None = None,
) -> tuple[int, datetime]:
    """A campaign whose wave's job a scheduler stored before the due time and that
    scheduler stopped, still before it: the state a restart finds."""
    for attempt, lead in enumerate(pace.attempts(2, "a start and stop before the due time")):
        cid = fresh_campaign(sessions, f"Issue 15 ({attempt})")
        due = schedule_in(sessions, cid, lead, grace_seconds=grace_seconds)
        first = make_scheduler()
        first.start()
        first.stop()
        if datetime.now(UTC) < due and job_of(engine, sessions, cid):
            return cid, due
        cancel(sessions, cid)
    raise AssertionError("unreachable: attempts() raises first")


def test_sent_by_the_running_scheduler_at_its_time_once(
    sessions: sessionmaker[Session],
    engine: Engine,
    people: None,
    pace: Pace,
    make_scheduler: Callable[..., CampaignScheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mailer.schedule")
    running = make_scheduler()
    running.start()
    for attempt, lead in enumerate(pace.attempts(1, "the job stored before the due time")):
        cid = fresh_campaign(sessions, f"Issue 15 ({attempt})")
        due = schedule_in(sessions, cid, lead)  # written while it runs: picked up by the poll
        wait_until(
            lambda: job_of(engine, sessions, cid) or the_wave(sessions, cid).status != "pending",  # noqa: B023
            "the job stored or the wave settled",
        )
        if job_of(engine, sessions, cid) and rows(sessions, cid) == 0:
            break
        cancel(sessions, cid)  # found due already: the poll came after the due time
    wait_until(lambda: the_wave(sessions, cid).status == "started", "the wave started")
    wave = the_wave(sessions, cid)
    assert wave.started_at is not None and wave.started_at >= due
    assert rows(sessions, cid) == 5 and wave.recipients == 5
    # Let a few more polls pass: nothing is started twice, and the job is gone.
    time.sleep(QUIET)
    assert rows(sessions, cid) == 5
    assert not job_of(engine, sessions, cid)
    running.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"wave {wave.id} (all recipients): start" in m for m in messages)
    assert any(
        f"campaign {cid} wave {wave.id} (all recipients): end (started)" in m for m in messages
    )


def test_restart_before_the_due_time_sends_once_at_the_due_time(
    sessions: sessionmaker[Session],
    engine: Engine,
    people: None,
    pace: Pace,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    for attempt, lead in enumerate(pace.attempts(2, "a restart before the due time")):
        cid = fresh_campaign(sessions, f"Issue 15 ({attempt})")
        due = schedule_in(sessions, cid, lead)
        first = make_scheduler()
        first.start()
        first.stop()
        stored = job_of(engine, sessions, cid)  # survives the stop
        second = make_scheduler()
        second.start()
        if stored and datetime.now(UTC) < due and rows(sessions, cid) == 0:
            break
        second.stop()
        cancel(sessions, cid)
    wait_until(lambda: the_wave(sessions, cid).status == "started", "the wave started")
    started_at = the_wave(sessions, cid).started_at
    assert started_at is not None and started_at >= due
    time.sleep(QUIET)
    assert rows(sessions, cid) == 5


def test_restart_after_the_due_time_within_grace_sends_at_once(
    sessions: sessionmaker[Session],
    engine: Engine,
    people: None,
    pace: Pace,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    cid, due = stored_before_due(sessions, engine, pace, make_scheduler)
    # Real time is the point: the due time passes while no scheduler runs.
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=1.5), "the due time")
    assert rows(sessions, cid) == 0  # nobody ran while "down"
    second = make_scheduler(grace=3600)
    second.start()
    wait_until(lambda: the_wave(sessions, cid).status == "started", "the wave started")
    assert rows(sessions, cid) == 5
    assert state_of(sessions, cid) == CampaignState.SENDING


def test_restart_after_the_grace_marks_missed_and_sends_nothing(
    sessions: sessionmaker[Session],
    engine: Engine,
    people: None,
    pace: Pace,
    make_scheduler: Callable[..., CampaignScheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mailer.schedule")
    cid, due = stored_before_due(sessions, engine, pace, make_scheduler, grace_seconds=1)
    # APScheduler itself will judge this job missed; real time is the point.
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=2.5), "the grace to pass")
    second = make_scheduler()
    second.start()
    wait_until(lambda: the_wave(sessions, cid).status == "missed", "the wave marked missed")
    time.sleep(QUIET)
    assert rows(sessions, cid) == 0
    assert state_of(sessions, cid) == CampaignState.MISSED
    assert not job_of(engine, sessions, cid)
    assert any("MISSED, nothing sent" in r.getMessage() for r in caplog.records)


def test_scheduled_while_no_scheduler_ran_and_overdue_is_missed(
    sessions: sessionmaker[Session],
    engine: Engine,
    people: None,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    # No job was ever stored: the reconciliation finds the overdue wave itself.
    # Planned with its clock a minute back, the wave is 30 s overdue at once.
    now = datetime.now(UTC)
    cid = fresh_campaign(sessions)
    with sessions.begin() as session:
        plan.schedule(
            session,
            cid,
            (now - timedelta(seconds=30)).replace(tzinfo=None, microsecond=0),
            tz="UTC",
            grace_seconds=1,
            now=now - timedelta(minutes=1),
        )
    running = make_scheduler()
    running.start()
    assert the_wave(sessions, cid).status == "missed"
    assert rows(sessions, cid) == 0


def test_unschedule_and_cancel_reach_the_running_scheduler(
    sessions: sessionmaker[Session],
    engine: Engine,
    people: None,
    pace: Pace,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    running = make_scheduler()
    running.start()
    premise = "the jobs stored and removed before the due time"
    for attempt, lead in enumerate(pace.attempts(3, premise)):
        a = fresh_campaign(sessions, f"A ({attempt})")
        b = fresh_campaign(sessions, f"B ({attempt})")
        due = schedule_in(sessions, a, lead)
        schedule_in(sessions, b, lead)

        def stored_or_settled(cid: int) -> bool:
            return job_of(engine, sessions, cid) or the_wave(sessions, cid).status != "pending"

        wait_until(lambda: stored_or_settled(a) and stored_or_settled(b), "both jobs stored")  # noqa: B023
        if not (job_of(engine, sessions, a) and job_of(engine, sessions, b)):
            cancel(sessions, a)
            cancel(sessions, b)
            continue
        waves = {the_wave(sessions, a).id, the_wave(sessions, b).id}
        with sessions.begin() as session:
            plan.unschedule(session, a)
            lifecycle.cancel(session, b)
        # Settled at the next re-read, before the due time. (The re-read removes the
        # jobs first and then marks the wave: wait for both.)
        wait_until(
            lambda: (
                not {f"wave-{w}" for w in waves} & set(stored_jobs(engine))  # noqa: B023
                and the_wave(sessions, b).status == "cancelled"  # noqa: B023
            ),
            "both jobs removed and the cancelled wave marked",
        )
        if datetime.now(UTC) < due:
            break
    assert the_wave(sessions, b).status == "cancelled"
    # Real time is the point: the due time passes and nothing fires.
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=2), "the due time")
    time.sleep(QUIET)
    assert rows(sessions, a) == 0 and rows(sessions, b) == 0
    assert not {f"wave-{w}" for w in waves} & set(stored_jobs(engine))
    assert the_wave(sessions, b).status == "cancelled"
    assert state_of(sessions, a) == CampaignState.DRAFT


def test_a_second_scheduler_refuses_to_start(
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    first = make_scheduler()
    first.start()
    second = make_scheduler()
    with pytest.raises(SchedulerAlreadyRunning, match="another scheduler is already running"):
        second.start()
    assert not second.running
    first.stop()
    second.start()  # the lock went with the first
    assert second.running


def state_of(sessions: sessionmaker[Session], cid: int) -> str:
    with sessions() as session:
        return campaigns.get_campaign(session, cid).state
