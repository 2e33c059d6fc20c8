"""Scheduling campaigns into waves, and starting waves (both databases, no clock tricks:
the runner's clock is a parameter, so "two hours later" needs no sleeping)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns, lifecycle
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.ledger import LedgerRow
from mailer.delivery.lifecycle import IllegalTransition
from mailer.schedule import plan
from mailer.schedule.runner import WaveRunner
from mailer.schedule.waves import CampaignWave, DstRule, ScheduleError, WaveStatus
from mailer.settings import Settings
from subscribers import mailing_lists, repository
from subscribers.audience import Audience

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEC1 = datetime(2026, 12, 1, 9, 0)


@dataclass(frozen=True)
class FakeIssue:
    slug: str = "2022-15"
    number: int = 15
    language: str = "en"


@dataclass(frozen=True)
class Rendered:
    subject: str = "Issue 15"
    preheader: str = "Views of experts"
    html: str = "<p>Hello</p>"
    text: str = "Hello"
    language: str = "en"


PEOPLE: list[tuple[str, str, str, str | None]] = [
    ("zhang@example.cn", "张玉军", "CN", None),
    ("wang@example.cn", "王芳", "CN", None),
    ("thaw@example.mm", "သော်သော်ဟန်", "MM", None),
    ("le@example.vn", "Lê Ngọc Tuấn", "VN", None),
    ("anna@example.de", "Anna Schmidt", "DE", None),
]


def populate(session: Session, people: list[tuple[str, str, str, str | None]] = PEOPLE) -> None:
    mailing_lists.add_list(session, "newsletter")
    for email, name, country, tz in people:
        repository.add_subscriber(
            session, email, name=name, country=country, timezone=tz, lists=["newsletter"]
        )


def new_campaign(session: Session, name: str = "Issue 15") -> int:
    campaign = campaigns.create_campaign(
        session,
        name=name,
        issue_path="examples/issues/2022-15.yaml",
        issue=FakeIssue(),
        sender="LMEC <news@lmec.example.org>",
        audience=Audience(lists=("newsletter",)),
    )
    campaigns.freeze(session, campaign.id, Rendered())
    return campaign.id


@pytest.fixture
def cid(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        populate(session)
        return new_campaign(session)


def waves(sessions: sessionmaker[Session], campaign_id: int) -> list[CampaignWave]:
    with sessions() as session:
        return list(
            session.scalars(
                select(CampaignWave)
                .where(CampaignWave.campaign_id == campaign_id)
                .order_by(CampaignWave.starts_at)
            )
        )


def enqueued(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(LedgerRow.timezone, func.count())
            .where(LedgerRow.campaign_id == campaign_id)
            .group_by(LedgerRow.timezone)
        )
        return {str(tz): int(n) for tz, n in rows}


def state(sessions: sessionmaker[Session], campaign_id: int) -> campaigns.Campaign:
    with sessions() as session:
        return campaigns.get_campaign(session, campaign_id)


def runner(sessions: sessionmaker[Session], at: datetime, grace: int = 3600) -> WaveRunner:
    return WaveRunner(sessions, default_grace_seconds=grace, clock=lambda: at)


def test_local_time_makes_one_wave_per_zone(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        plan.schedule(session, cid, DEC1, local_time=True, now=NOW)
    got = [(w.timezone, w.starts_at, w.recipients, w.status) for w in waves(sessions, cid)]
    assert got == [
        ("Asia/Shanghai", datetime(2026, 12, 1, 1, 0, tzinfo=UTC), 2, "pending"),
        ("Asia/Ho_Chi_Minh", datetime(2026, 12, 1, 2, 0, tzinfo=UTC), 1, "pending"),
        ("Asia/Yangon", datetime(2026, 12, 1, 2, 30, tzinfo=UTC), 1, "pending"),
        ("Europe/Berlin", datetime(2026, 12, 1, 8, 0, tzinfo=UTC), 1, "pending"),
    ]
    campaign = state(sessions, cid)
    assert campaign.state == CampaignState.SCHEDULED
    assert campaign.scheduled_at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert sorted(campaign.pending_waves) == [
        "Asia/Ho_Chi_Minh",
        "Asia/Shanghai",
        "Asia/Yangon",
        "Europe/Berlin",
    ]
    assert all(w.job_id == f"wave-{w.id}" for w in waves(sessions, cid))


def test_berlin_wave_follows_daylight_saving(sessions: sessionmaker[Session], cid: int) -> None:
    # The day before and the day of the spring change: 09:00 in Berlin is 08:00 then 07:00 UTC.
    for day, hour in ((28, 8), (29, 7)):
        with sessions.begin() as session:
            if state(sessions, cid).state == CampaignState.SCHEDULED:
                plan.reschedule(
                    session, cid, datetime(2026, 3, day, 9, 0), local_time=True, now=NOW
                )
            else:
                plan.schedule(session, cid, datetime(2026, 3, day, 9, 0), local_time=True, now=NOW)
        berlin = [w for w in waves(sessions, cid) if w.timezone == "Europe/Berlin"]
        assert [w.starts_at for w in berlin] == [datetime(2026, 3, day, hour, 0, tzinfo=UTC)]
        yangon = [w for w in waves(sessions, cid) if w.timezone == "Asia/Yangon"]
        assert [w.starts_at for w in yangon] == [datetime(2026, 3, day, 2, 30, tzinfo=UTC)]


def test_schedule_errors_are_clear(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        with pytest.raises(ScheduleError, match="02:30 on 2026-03-29 in Europe/Berlin does not"):
            plan.schedule(session, cid, datetime(2026, 3, 29, 2, 30), local_time=True, now=NOW)
    with sessions.begin() as session:
        with pytest.raises(ScheduleError, match="in Asia/Shanghai is in the past"):
            plan.schedule(session, cid, datetime(2025, 6, 1, 9, 0), tz="Asia/Shanghai", now=NOW)
    with sessions.begin() as session:
        with pytest.raises(ScheduleError, match="unknown time zone 'Asia/Beijing'"):
            plan.schedule(session, cid, DEC1, tz="Asia/Beijing", now=NOW)
    with sessions.begin() as session:
        with pytest.raises(ScheduleError, match="give the time zone"):
            plan.schedule(session, cid, DEC1, now=NOW)
    with sessions.begin() as session:  # was an OverflowError traceback from the database
        with pytest.raises(ScheduleError, match="the grace period may be at most 604800 s"):
            plan.schedule(session, cid, DEC1, tz="UTC", grace_seconds=10**20, now=NOW)
    assert state(sessions, cid).state == CampaignState.DRAFT
    assert waves(sessions, cid) == []
    # A stated rule resolves the gap: 02:30 read with the winter offset (03:30 CEST).
    with sessions.begin() as session:
        plan.schedule(
            session,
            cid,
            datetime(2026, 3, 29, 2, 30),
            local_time=True,
            rule=DstRule.LATER,
            now=NOW,
        )
    berlin = [w for w in waves(sessions, cid) if w.timezone == "Europe/Berlin"]
    assert berlin[0].starts_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with sessions.begin() as session:
        with pytest.raises(IllegalTransition, match="is scheduled already: reschedule it instead"):
            plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)


def test_reschedule_and_unschedule(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        with pytest.raises(IllegalTransition, match="can be rescheduled: schedule it instead"):
            plan.reschedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
        plan.schedule(session, cid, DEC1, local_time=True, now=NOW, grace_seconds=600)
    with sessions.begin() as session:
        plan.reschedule(session, cid, DEC1, tz="Asia/Yangon", now=NOW)
    (only,) = waves(sessions, cid)
    assert (only.timezone, only.starts_at, only.recipients) == (
        None,
        datetime(2026, 12, 1, 2, 30, tzinfo=UTC),
        5,
    )
    campaign = state(sessions, cid)
    assert campaign.pending_waves == [] and campaign.misfire_grace_seconds == 600
    with sessions.begin() as session:
        plan.unschedule(session, cid)
    assert waves(sessions, cid) == []
    assert state(sessions, cid).state == CampaignState.DRAFT
    with sessions.begin() as session:
        with pytest.raises(IllegalTransition, match="is draft; only a scheduled or missed"):
            plan.unschedule(session, cid)


def test_waves_start_their_own_zone_once(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        plan.schedule(session, cid, DEC1, local_time=True, now=NOW)
    planned = waves(sessions, cid)
    shanghai, hcm, yangon, berlin = planned
    # A Thai contact joins after scheduling: no wave of its own, so the last wave takes it.
    with sessions.begin() as session:
        repository.add_subscriber(
            session, "somchai@example.th", name="สมชาย", country="TH", lists=["newsletter"]
        )
    assert runner(sessions, shanghai.starts_at).fire(shanghai.id) == "started"
    assert enqueued(sessions, cid) == {"Asia/Shanghai": 2}
    assert state(sessions, cid).state == CampaignState.SENDING
    # Firing again (a job that fires twice) adds nothing.
    assert runner(sessions, shanghai.starts_at).fire(shanghai.id) == "started"
    # A job that fires early (an older plan) leaves its wave alone.
    assert runner(sessions, shanghai.starts_at).fire(yangon.id) == "pending"
    for wave in (hcm, yangon):
        runner(sessions, wave.starts_at + timedelta(seconds=1)).fire(wave.id)
    assert enqueued(sessions, cid) == {"Asia/Shanghai": 2, "Asia/Ho_Chi_Minh": 1, "Asia/Yangon": 1}
    assert state(sessions, cid).pending_waves == ["Europe/Berlin"]
    # A Berlin contact moves to Beijing after Beijing's wave went out: the last wave
    # still reaches them.
    with sessions.begin() as session:
        repository.add_subscriber(
            session, "karl@example.de", name="Karl", country="DE", lists=["newsletter"]
        )
        karl = repository.get_subscriber(session, "karl@example.de")
        karl.timezone = "Asia/Shanghai"
    runner(sessions, berlin.starts_at).fire(berlin.id)
    assert enqueued(sessions, cid) == {
        "Asia/Shanghai": 3,
        "Asia/Ho_Chi_Minh": 1,
        "Asia/Yangon": 1,
        "Europe/Berlin": 1,
        "Asia/Bangkok": 1,
    }
    assert state(sessions, cid).pending_waves == []
    assert [(w.status, w.recipients) for w in waves(sessions, cid)] == [
        ("started", 2),
        ("started", 1),
        ("started", 1),
        ("started", 3),
    ]
    with sessions() as session:
        report = plan.waves_report(session, cid)
    assert [(r.timezone, r.zones, r.progress.total, r.progress.pending) for r in report] == [
        ("Asia/Shanghai", ("Asia/Shanghai",), 3, 3),
        ("Asia/Ho_Chi_Minh", ("Asia/Ho_Chi_Minh",), 1, 1),
        ("Asia/Yangon", ("Asia/Yangon",), 1, 1),
        ("Europe/Berlin", ("Europe/Berlin", "Asia/Bangkok"), 2, 2),
    ]


def test_a_campaign_started_by_hand_is_not_sent_again_by_its_schedule(
    sessions: sessionmaker[Session], cid: int
) -> None:
    with sessions.begin() as session:
        (wave,) = plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
    assert lifecycle.start_sending(sessions, cid) == 5
    assert runner(sessions, wave.starts_at).fire(wave.id) == "started"
    assert sum(enqueued(sessions, cid).values()) == 5
    (after,) = waves(sessions, cid)
    assert after.recipients == 0


def test_misfire_within_grace_starts_late(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        (wave,) = plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
    later = wave.starts_at + timedelta(minutes=59)
    assert runner(sessions, later).fire(wave.id) == "started"
    assert sum(enqueued(sessions, cid).values()) == 5


def test_misfire_beyond_grace_is_marked_missed(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        waves_ = plan.schedule(session, cid, DEC1, local_time=True, now=NOW)
    first = waves_[0]
    later = first.starts_at + timedelta(hours=2)
    assert runner(sessions, later).fire(first.id) == "missed"
    assert enqueued(sessions, cid) == {}
    campaign = state(sessions, cid)
    assert campaign.state == CampaignState.MISSED
    assert "Asia/Shanghai missed" in (campaign.state_reason or "")
    assert "2.0 h late" in (campaign.state_reason or "")
    # The other waves of a missed campaign do not go out on their own either.
    second = waves(sessions, cid)[1]
    assert runner(sessions, second.starts_at).fire(second.id) == "missed"
    assert enqueued(sessions, cid) == {}
    with sessions() as session:
        listing = plan.schedule_listing(session)
    assert [(e.timezone, e.status) for e in listing][:2] == [
        ("Asia/Shanghai", "missed"),
        ("Asia/Ho_Chi_Minh", "missed"),
    ]
    # The editor picks a new time: the plan is replaced and goes again.
    with sessions.begin() as session:
        plan.reschedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
    assert state(sessions, cid).state == CampaignState.SCHEDULED
    assert [w.status for w in waves(sessions, cid)] == ["pending"]


def test_a_missed_wave_of_a_running_campaign_is_not_sent_late_by_the_last_wave(
    sessions: sessionmaker[Session], cid: int
) -> None:
    with sessions.begin() as session:
        shanghai, hcm, yangon, berlin = plan.schedule(session, cid, DEC1, local_time=True, now=NOW)
    assert runner(sessions, shanghai.starts_at).fire(shanghai.id) == "started"
    assert runner(sessions, hcm.starts_at + timedelta(hours=2)).fire(hcm.id) == "missed"
    assert state(sessions, cid).state == CampaignState.SENDING  # under way: it goes on
    runner(sessions, yangon.starts_at).fire(yangon.id)
    runner(sessions, berlin.starts_at).fire(berlin.id)
    assert enqueued(sessions, cid) == {"Asia/Shanghai": 2, "Asia/Yangon": 1, "Europe/Berlin": 1}
    assert state(sessions, cid).pending_waves == []  # so the campaign can finish


def test_campaign_grace_overrides_the_default(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        (wave,) = plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW, grace_seconds=60)
    assert runner(sessions, wave.starts_at + timedelta(seconds=61)).fire(wave.id) == "missed"


def test_pause_and_resume_a_scheduled_campaign(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        first, second = plan.schedule(
            session, cid, DEC1, local_time=True, now=NOW, grace_seconds=600
        )[:2]
        lifecycle.pause(session, cid)
    # Resumed before anything went out: scheduled again, the waves keep their times.
    with sessions.begin() as session:
        assert lifecycle.resume(session, cid).state == CampaignState.SCHEDULED
        lifecycle.pause(session, cid, "waiting for a go-ahead")
    # A wave due while paused enqueues its recipients; they wait for the resume.
    assert runner(sessions, first.starts_at).fire(first.id) == "started"
    assert enqueued(sessions, cid) == {"Asia/Shanghai": 2}
    assert state(sessions, cid).state == CampaignState.PAUSED
    with sessions.begin() as session:
        assert lifecycle.resume(session, cid).state == CampaignState.SENDING
    assert runner(sessions, second.starts_at).fire(second.id) == "started"


def test_a_paused_scheduled_campaign_can_still_be_missed(
    sessions: sessionmaker[Session], cid: int
) -> None:
    with sessions.begin() as session:
        (wave,) = plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
        lifecycle.pause(session, cid)
    assert runner(sessions, wave.starts_at + timedelta(hours=3)).fire(wave.id) == "missed"
    assert state(sessions, cid).state == CampaignState.MISSED
    assert enqueued(sessions, cid) == {}


def test_cancelled_campaign_wave_is_cancelled(sessions: sessionmaker[Session], cid: int) -> None:
    with sessions.begin() as session:
        (wave,) = plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
        lifecycle.cancel(session, cid)
    assert runner(sessions, wave.starts_at).fire(wave.id) == "cancelled"
    assert enqueued(sessions, cid) == {}
    with sessions() as session:
        assert plan.schedule_listing(session) == []
        (entry,) = plan.schedule_listing(session, include_done=True)
    assert (entry.status, entry.reason, entry.campaign_state) == (
        "cancelled",
        "campaign is cancelled",
        "cancelled",
    )


def test_unstartable_wave_fails_with_its_reason(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
        campaign = campaigns.create_campaign(
            session,
            name="not frozen",
            issue_path="examples/issues/2022-15.yaml",
            issue=FakeIssue(),
            sender="LMEC <news@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        (wave,) = plan.schedule(session, campaign.id, DEC1, tz="Asia/Shanghai", now=NOW)
        cid = campaign.id
    assert runner(sessions, wave.starts_at).fire(wave.id) == "failed"
    (after,) = waves(sessions, cid)
    assert "no frozen content" in after.status_reason
    assert state(sessions, cid).state == CampaignState.MISSED


def test_a_broken_audience_fails_the_wave_with_its_reason(
    sessions: sessionmaker[Session], cid: int
) -> None:
    with sessions.begin() as session:
        (wave,) = plan.schedule(session, cid, DEC1, tz="Asia/Shanghai", now=NOW)
        campaigns.get_campaign(session, cid).audience = {"lists": "newsletter"}
    assert runner(sessions, wave.starts_at).fire(wave.id) == "failed"
    (after,) = waves(sessions, cid)
    assert "lists must be a list" in after.status_reason
    assert state(sessions, cid).state == CampaignState.MISSED


def test_wave_status_values_match_the_table(engine: Engine) -> None:
    """The enum and the migrated table's CHECK constraint, as the database reports it
    (SQLite gives the constraint's text, PostgreSQL its own rewriting of it)."""
    constraints = {
        c["name"]: str(c["sqltext"])
        for c in inspect(engine).get_check_constraints(CampaignWave.__tablename__)
    }
    assert "ck_campaign_waves_status" in constraints, constraints
    allowed = set(re.findall(r"'([^']*)'", constraints["ck_campaign_waves_status"]))
    assert allowed == {s.value for s in WaveStatus}


def test_unfrozen_campaign_is_rendered_when_its_wave_starts(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    from mailer.authoring.content import load_issue
    from mailer.authoring.render import Renderer

    issue_path = Path(__file__).resolve().parent.parent / "examples" / "issues" / "2022-15.yaml"
    with sessions.begin() as session:
        populate(session)
        campaign = campaigns.create_campaign(
            session,
            name="Issue 15",
            issue_path=issue_path,
            issue=load_issue(issue_path),
            sender="LMEC <news@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        (wave,) = plan.schedule(session, campaign.id, DEC1, tz="Asia/Shanghai", now=NOW)
        cid = campaign.id
    made: list[Renderer] = []

    def make() -> Renderer:
        made.append(Renderer.from_settings(settings))
        return made[-1]

    fire = WaveRunner(
        sessions, default_grace_seconds=3600, make_renderer=make, clock=lambda: wave.starts_at
    )
    assert fire.fire(wave.id) == "started"
    assert len(made) == 1
    frozen = state(sessions, cid)
    assert frozen.frozen and frozen.frozen_subject
    assert frozen.frozen_html is not None and "<html" in frozen.frozen_html
    assert sum(enqueued(sessions, cid).values()) == 5


def test_migration_0004_goes_down_and_up(engine: Engine) -> None:
    from sqlalchemy import inspect

    from mailer import db

    db.downgrade(engine, "0003")
    tables = set(inspect(engine).get_table_names())
    assert "campaign_waves" not in tables and "apscheduler_jobs" not in tables
    db.upgrade(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("apscheduler_jobs")}
    assert columns == {"id", "next_run_time", "job_state"}  # what SQLAlchemyJobStore expects
    assert db.is_up_to_date(engine)
