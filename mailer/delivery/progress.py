"""Where a campaign stands, over its whole planned audience: what its page, its status
poll and the campaign list show.

The ledger holds only the recipients whose wave has started; the people of a
local-time campaign's later waves are still a plan (`CampaignWave.recipients`).
Progress counts both, so "10 sent of 10" never hides 52 people waiting for their
wave, and what a cancelled (or failed) campaign will never send counts as not sent,
never as waiting. Everything is read with grouped counts on indexes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.delivery import ledger
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.schedule.waves import CampaignWave, WaveStatus

#: States after which nothing changes any more: the page stops following the campaign.
FINAL = frozenset({CampaignState.SENT, CampaignState.CANCELLED, CampaignState.FAILED})
#: Waves whose people will not be sent to by this plan.
UNSENT_WAVES = frozenset({WaveStatus.CANCELLED, WaveStatus.MISSED, WaveStatus.FAILED})


@dataclass(frozen=True)
class Progress:
    """Counts over the planned audience; `total` is everyone the campaign meant to reach."""

    state: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # never sent: the person left after their row was queued
    retrying: int = 0
    queued: int = 0  # enqueued, not sent yet
    later: int = 0  # in waves that have not started yet
    not_sent: int = 0  # never will be: the campaign ended, or their wave was missed

    @property
    def total(self) -> int:
        return (
            self.sent
            + self.failed
            + self.skipped
            + self.retrying
            + self.queued
            + self.later
            + self.not_sent
        )

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def not_sent_reason(self) -> str:
        return "cancelled" if self.state == CampaignState.CANCELLED else "not sent"


def planned(state: str, tally: ledger.Tally, waves: Iterable[tuple[str, int | None]]) -> Progress:
    """Progress from the ledger's `tally` and the campaign's waves (status, recipients)."""
    ended = state in (CampaignState.CANCELLED, CampaignState.FAILED)
    later = not_sent = 0
    for status, recipients in waves:
        if status == WaveStatus.PENDING:
            if ended:
                not_sent += recipients or 0
            else:
                later += recipients or 0
        elif status in UNSENT_WAVES:
            not_sent += recipients or 0
    open_rows = tally.pending + tally.retrying
    return Progress(
        state=state,
        sent=tally.sent,
        failed=tally.failed,
        skipped=tally.skipped,
        retrying=0 if ended else tally.retrying,
        queued=0 if ended else tally.pending,
        later=later,
        not_sent=not_sent + (open_rows if ended else 0),
    )


def _wave_rows(session: Session, campaign_ids: Collection[int]) -> dict[int, list[CampaignWave]]:
    waves: dict[int, list[CampaignWave]] = {cid: [] for cid in campaign_ids}
    if not campaign_ids:
        return waves
    for wave in session.scalars(
        select(CampaignWave)
        .where(CampaignWave.campaign_id.in_(sorted(campaign_ids)))
        .order_by(CampaignWave.starts_at, CampaignWave.id)
    ):
        waves[wave.campaign_id].append(wave)
    return waves


def waves_of(session: Session, campaign_id: int) -> list[CampaignWave]:
    return _wave_rows(session, [campaign_id])[campaign_id]


def of_campaigns(session: Session, campaigns: Sequence[Campaign]) -> dict[int, Progress]:
    """Progress of every campaign of the list that has a ledger or a plan: two queries."""
    ids = [c.id for c in campaigns]
    tallies = ledger.progress_of(session, [c.id for c in campaigns if c.started_at is not None])
    has_waves = set(
        session.scalars(
            select(CampaignWave.campaign_id)
            .where(CampaignWave.campaign_id.in_(ids))
            .group_by(CampaignWave.campaign_id)
        )
    )
    waves = _wave_rows(session, has_waves)
    result = {}
    for campaign in campaigns:
        if campaign.id not in tallies and campaign.id not in has_waves:
            continue
        tally = tallies.get(campaign.id, ledger.Tally("all"))
        result[campaign.id] = planned(
            campaign.state, tally, ((w.status, w.recipients) for w in waves.get(campaign.id, []))
        )
    return result


def stamp(campaign: Campaign, open_rows: ledger.Tally, waves: Sequence[CampaignWave]) -> str:
    """Changes whenever what the campaign page shows changes: the campaign, its waves, and
    its rows still to send (`ledger.open_counts`; every row that is sent or fails leaves
    them, so the sent and failed counts need not be read)."""
    parts = [
        campaign.state,
        campaign.state_reason or "",
        str(campaign.updated_at),
        str(campaign.scheduled_at),
        ",".join(campaign.pending_waves or []),
        f"{open_rows.pending}/{open_rows.retrying}",
        *(f"{w.id}:{w.status}:{w.recipients}" for w in waves),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
