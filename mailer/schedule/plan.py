"""Planning a campaign's schedule: what commands and the web app call.

`schedule`, `reschedule` and `unschedule` write the campaign's waves (one per time
zone, or one for everyone) to `campaign_waves` and move the campaign through
`mailer.delivery.lifecycle`; `schedule_listing` and `waves_report` read them back.
Planning never touches APScheduler's job store, which only the running scheduler
(`mailer.schedule.process`) may use: it re-reads the waves and starts each one on
time with `mailer.schedule.runner`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailer.delivery import campaigns, ledger, lifecycle
from mailer.delivery.campaigns import Campaign, CampaignState, RendererLike
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
from mailer.timestamps import utcnow

JOB_PREFIX = "wave-"
# A campaign in one of these states sends no more waves.
ENDED = frozenset(
    {CampaignState.CANCELLED, CampaignState.DRAFT, CampaignState.SENT, CampaignState.FAILED}
)


def job_id(wave_id: int) -> str:
    """The id of a wave's job in APScheduler's store, also kept on the wave."""
    return f"{JOB_PREFIX}{wave_id}"


def wave_id_of(job: str) -> int | None:
    """The wave a job id names, or None for a job that is not a wave's."""
    if not job.startswith(JOB_PREFIX):
        return None
    try:
        return int(job[len(JOB_PREFIX) :])
    except ValueError:
        return None


def audience_zones(session: Session, campaign: Campaign) -> dict[str, int]:
    """Recipients per time zone in the campaign's audience, counted in the database."""
    recipients = campaigns.audience_select(campaign).order_by(None).subquery()
    rows = session.execute(
        select(recipients.c.timezone, func.count())
        .select_from(recipients)
        .group_by(recipients.c.timezone)
    )
    return {str(tz): int(count) for tz, count in rows}


def waves_of(session: Session, campaign_id: int) -> list[CampaignWave]:
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
        raise ScheduleError(
            "give the time zone of the time, or plan it at each recipient's local time"
        )
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
    again: bool,
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
    lifecycle.schedule(
        session,
        campaign.id,
        planned[0].starts_at,
        misfire_grace_seconds=grace_seconds,
        waves=local_zones,
        again=again,
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
    lifecycle.require(campaign, lifecycle.SCHEDULE)
    return _schedule(
        session, campaign, wall, tz, local_time, rule, grace_seconds, renderer, now, again=False
    )


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
    lifecycle.require(campaign, lifecycle.RESCHEDULE)
    started = [w for w in waves_of(session, campaign_id) if w.status == WaveStatus.STARTED]
    if started:
        raise ScheduleError(
            f"campaign {campaign_id} has already started sending "
            f"({started[0].timezone or 'all recipients'}); pause or cancel it instead"
        )
    return _schedule(
        session, campaign, wall, tz, local_time, rule, grace_seconds, renderer, now, again=True
    )


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
    *,
    again: bool,
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
            campaigns.render_campaign(renderer, campaign),
        )
    return _store_plan(session, campaign, planned, counts, grace_seconds, again)


def unschedule(session: Session, campaign_id: int) -> Campaign:
    """Back to draft: the waves go, and the running scheduler drops their jobs."""
    campaign = campaigns.get_campaign(session, campaign_id, lock=True)
    lifecycle.require(campaign, lifecycle.UNSCHEDULE)
    session.execute(delete(CampaignWave).where(CampaignWave.campaign_id == campaign_id))
    return lifecycle.unschedule(session, campaign_id)


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
    waves = waves_of(session, campaign_id) if waves is None else waves
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
