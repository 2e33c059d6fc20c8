"""Progress over a campaign's whole planned audience (issue 11 item 15): the people of
waves still to start count, a cancelled campaign's waves and unsent rows count as
cancelled, and a campaign sent by hand with everyone does not count a wave's people twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from mailer.compose import Root
from mailer.delivery import campaigns, ledger, lifecycle, progress
from mailer.schedule import plan
from mailer.schedule.runner import WaveRunner
from mailer.schedule.waves import CampaignWave, WaveStatus, parse_wall_time
from subscribers import mailing_lists, repository
from subscribers.audience import Audience

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class _Issue:
    slug: str = "2022-13"
    number: int = 13
    language: str = "en"


@dataclass(frozen=True)
class _Rendered:
    subject: str = "Issue 13"
    preheader: str = "Preheader"
    html: str = "<p>Hello %%NAME%%</p>"
    text: str = "Hello %%NAME%%"
    language: str = "en"


def test_planned_counts_later_waves_and_what_a_cancel_leaves() -> None:
    tally = ledger.Tally("all", total=12, sent=10, pending=2)
    waves = [(WaveStatus.STARTED, 12), (WaveStatus.PENDING, 30), (WaveStatus.PENDING, 22)]
    sending = progress.planned("sending", tally, waves)
    assert (sending.sent, sending.queued, sending.later, sending.total) == (10, 2, 52, 64)
    assert not sending.final and sending.not_sent == 0

    cancelled_waves = [
        (WaveStatus.STARTED, 12),
        (WaveStatus.CANCELLED, 30),
        (WaveStatus.CANCELLED, 22),
    ]
    cancelled = progress.planned("cancelled", tally, cancelled_waves)
    assert (cancelled.sent, cancelled.queued, cancelled.later) == (10, 0, 0)
    assert cancelled.not_sent == 54 and cancelled.total == 64
    assert cancelled.final and cancelled.not_sent_reason == "cancelled"


def test_skipped_rows_count_as_settled_in_the_whole_audience() -> None:
    """People who left after being queued are neither waiting nor lost from the total."""
    tally = ledger.Tally("all", total=12, sent=7, pending=1, failed=1)  # 3 skipped
    shown = progress.planned("sending", tally, [(WaveStatus.STARTED, 12), (WaveStatus.PENDING, 8)])
    assert (shown.sent, shown.skipped, shown.failed, shown.queued, shown.later) == (7, 3, 1, 1, 8)
    assert shown.total == 20 and shown.done == 11


def test_sending_everyone_by_hand_settles_the_waves(root: Root, tmp_path: Path) -> None:
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter")
        for email, country in (
            ("a@example.th", "TH"),
            ("b@example.vn", "VN"),
            ("c@example.cn", "CN"),
        ):
            repository.add_subscriber(session, email, country=country, lists=["newsletter"])
        campaign = campaigns.create_campaign(
            session,
            name="By hand",
            issue_path=tmp_path / "2022-13.yaml",
            issue=_Issue(),
            sender="News <news@example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        campaigns.freeze(session, campaign.id, _Rendered())
        plan.schedule(
            session, campaign.id, parse_wall_time("2030-12-01 09:00"), local_time=True, now=NOW
        )
        cid = campaign.id
    assert lifecycle.start_sending(root.sessions, cid) == 3  # everyone now, not at 09:00
    with root.sessions() as session:
        waves = progress.waves_of(session, cid)
        assert {w.status for w in waves} == {WaveStatus.STARTED.value}
        shown = progress.of_campaigns(session, [campaigns.get_campaign(session, cid)])[cid]
        assert (shown.total, shown.queued, shown.later) == (3, 3, 0)
        assert session.scalars(select(CampaignWave.recipients)).all() == [0, 0, 0]


def test_the_scheduler_firing_a_wave_records_its_own_start(root: Root, tmp_path: Path) -> None:
    """Its fire sends everyone (one instant): that wave is not settled as "sent at once",
    even when it fires a moment before its time (the scheduler's early tolerance)."""
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter")
        for email in ("a@example.th", "b@example.th"):
            repository.add_subscriber(session, email, country="TH", lists=["newsletter"])
        campaign = campaigns.create_campaign(
            session,
            name="At an instant",
            issue_path=tmp_path / "2022-13.yaml",
            issue=_Issue(),
            sender="News <news@example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        campaigns.freeze(session, campaign.id, _Rendered())
        (wave,) = plan.schedule(
            session, campaign.id, parse_wall_time("2030-12-01 09:00"), tz="UTC", now=NOW
        )
        wave_id, starts_at = wave.id, wave.starts_at
    runner = WaveRunner(
        root.sessions, default_grace_seconds=3600, clock=lambda: starts_at - timedelta(seconds=1)
    )
    assert runner.fire(wave_id) == "started"
    with root.sessions() as session:
        fired = session.get(CampaignWave, wave_id)
        assert fired is not None
        assert (fired.status, fired.recipients, fired.status_reason) == ("started", 2, "")
