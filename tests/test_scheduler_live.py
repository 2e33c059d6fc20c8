"""The running scheduler: real APScheduler, real job store, both databases, real time.

Due times are a few seconds ahead; "the process" is a CampaignScheduler started and
stopped (its job store and lock live in the database and the lock file, exactly as
across process restarts; tests/test_scheduler_cli.py also restarts real processes).
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

from mailer import campaigns, scheduler
from mailer.campaigns import CampaignState
from mailer.ledger import LedgerRow
from mailer.locks import SchedulerAlreadyRunning
from mailer.scheduler import CampaignScheduler
from mailer.waves import CampaignWave
from tests.test_scheduler import new_campaign, populate

pytestmark = pytest.mark.slow


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


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
def cid(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        populate(session)
        return new_campaign(session)


def schedule_in(
    sessions: sessionmaker[Session], cid: int, seconds: float, grace_seconds: int | None = None
) -> datetime:
    with sessions.begin() as session:
        (wave,) = scheduler.schedule(
            session, cid, ahead(seconds), tz="Asia/Shanghai", grace_seconds=grace_seconds
        )
        return wave.starts_at


def test_sent_by_the_running_scheduler_at_its_time_once(
    sessions: sessionmaker[Session],
    engine: Engine,
    cid: int,
    make_scheduler: Callable[..., CampaignScheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mailer.scheduler")
    running = make_scheduler()
    running.start()
    due = schedule_in(sessions, cid, 3)  # written while it runs: picked up by the poll
    assert wait_until(lambda: f"wave-{the_wave(sessions, cid).id}" in stored_jobs(engine), 10)
    assert rows(sessions, cid) == 0
    assert wait_until(lambda: the_wave(sessions, cid).status == "started")
    wave = the_wave(sessions, cid)
    assert wave.started_at is not None and wave.started_at >= due
    assert rows(sessions, cid) == 5 and wave.recipients == 5
    # Let a few more polls pass: nothing is started twice, and the job is gone.
    time.sleep(1.5)
    assert rows(sessions, cid) == 5
    assert stored_jobs(engine) == []
    running.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"wave {wave.id} (all recipients): start" in m for m in messages)
    assert any(
        f"campaign {cid} wave {wave.id} (all recipients): end (started)" in m for m in messages
    )


def test_restart_before_the_due_time_sends_once_at_the_due_time(
    sessions: sessionmaker[Session],
    engine: Engine,
    cid: int,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    due = schedule_in(sessions, cid, 6)
    first = make_scheduler()
    first.start()
    first.stop()
    assert stored_jobs(engine) == [f"wave-{the_wave(sessions, cid).id}"]  # survives the stop
    second = make_scheduler()
    second.start()
    assert rows(sessions, cid) == 0
    assert wait_until(lambda: the_wave(sessions, cid).status == "started")
    started_at = the_wave(sessions, cid).started_at
    assert started_at is not None and started_at >= due
    time.sleep(1.0)
    assert rows(sessions, cid) == 5


def test_restart_after_the_due_time_within_grace_sends_at_once(
    sessions: sessionmaker[Session],
    engine: Engine,
    cid: int,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    due = schedule_in(sessions, cid, 4)
    first = make_scheduler()
    first.start()
    first.stop()
    assert stored_jobs(engine)
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=1.5), 10)
    assert rows(sessions, cid) == 0  # nobody ran while "down"
    second = make_scheduler(grace=3600)
    second.start()
    assert wait_until(lambda: the_wave(sessions, cid).status == "started", 10)
    assert rows(sessions, cid) == 5
    assert state_of(sessions, cid) == CampaignState.SENDING


def test_restart_after_the_grace_marks_missed_and_sends_nothing(
    sessions: sessionmaker[Session],
    engine: Engine,
    cid: int,
    make_scheduler: Callable[..., CampaignScheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mailer.scheduler")
    due = schedule_in(sessions, cid, 4, grace_seconds=1)
    first = make_scheduler()
    first.start()
    first.stop()
    assert stored_jobs(engine)  # APScheduler itself will judge this job missed
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=2.5), 10)
    second = make_scheduler()
    second.start()
    assert wait_until(lambda: the_wave(sessions, cid).status == "missed", 10)
    time.sleep(1.0)
    assert rows(sessions, cid) == 0
    assert state_of(sessions, cid) == CampaignState.MISSED
    assert stored_jobs(engine) == []
    assert any("MISSED, nothing sent" in r.getMessage() for r in caplog.records)


def test_scheduled_while_no_scheduler_ran_and_overdue_is_missed(
    sessions: sessionmaker[Session],
    engine: Engine,
    cid: int,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    # No job was ever stored: the reconciliation finds the overdue wave itself.
    due = schedule_in(sessions, cid, 1, grace_seconds=1)
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=2), 10)
    running = make_scheduler()
    running.start()
    assert the_wave(sessions, cid).status == "missed"
    assert rows(sessions, cid) == 0


def test_unschedule_and_cancel_reach_the_running_scheduler(
    sessions: sessionmaker[Session],
    engine: Engine,
    make_scheduler: Callable[..., CampaignScheduler],
) -> None:
    with sessions.begin() as session:
        populate(session)
        a, b = new_campaign(session, "A"), new_campaign(session, "B")
    running = make_scheduler()
    running.start()
    due = schedule_in(sessions, a, 8)
    schedule_in(sessions, b, 8)
    assert wait_until(lambda: len(stored_jobs(engine)) == 2, 10)
    with sessions.begin() as session:
        scheduler.unschedule(session, a)
        campaigns.cancel(session, b)
    # Settled at the next re-read, long before the due time.
    assert wait_until(lambda: stored_jobs(engine) == [], 10)
    assert the_wave(sessions, b).status == "cancelled"
    assert datetime.now(UTC) < due
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=2), 20)
    assert rows(sessions, a) == 0 and rows(sessions, b) == 0
    assert stored_jobs(engine) == []
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
