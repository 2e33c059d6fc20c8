"""The campaign life cycle walked through its whole table, on SQLite and PostgreSQL:
every move from every state; the allowed ones succeed, every other one is refused
with an error naming the campaign, its state and the move, and changes nothing."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns, ledger, lifecycle
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from mailer.delivery.lifecycle import IllegalTransition
from mailer.schedule.waves import CampaignWave, WaveStatus
from subscribers import mailing_lists, repository
from subscribers.audience import Audience
from tests.conftest import REPO

S = CampaignState
WHEN = datetime(2030, 12, 1, 1, 0, tzinfo=UTC)

# The table of `mailer.delivery.lifecycle`'s docstring, written out again here: the
# states each move may start from, and the state it leaves the campaign in (from the
# fixture below: no schedule on a paused campaign, nobody enqueued, no waves to come).
TABLE: dict[str, tuple[frozenset[CampaignState], dict[CampaignState, CampaignState]]] = {
    "schedule": (frozenset({S.DRAFT, S.MISSED}), {}),
    "reschedule": (frozenset({S.SCHEDULED, S.MISSED}), {}),
    "unschedule": (frozenset({S.SCHEDULED, S.MISSED}), {}),
    "start_sending": (
        frozenset({S.DRAFT, S.SCHEDULED, S.MISSED, S.SENDING, S.PAUSED}),
        {S.SENDING: S.SENDING, S.PAUSED: S.PAUSED},  # under way: more people enqueued
    ),
    "miss": (frozenset({S.SCHEDULED, S.PAUSED}), {}),
    "pause": (frozenset({S.SCHEDULED, S.SENDING}), {}),
    "pause_failing": (frozenset({S.SENDING}), {}),
    "resume": (frozenset({S.PAUSED}), {}),
    "resume_recovered": (frozenset({S.PAUSED}), {}),
    "finish": (frozenset({S.SENDING}), {}),
    "cancel": (frozenset({S.DRAFT, S.SCHEDULED, S.MISSED, S.SENDING, S.PAUSED}), {}),
}
TARGET = {
    "schedule": S.SCHEDULED,
    "reschedule": S.SCHEDULED,
    "unschedule": S.DRAFT,
    "start_sending": S.SENDING,
    "miss": S.MISSED,
    "pause": S.PAUSED,
    "pause_failing": S.PAUSED,
    "resume": S.SENDING,
    "resume_recovered": S.SENDING,
    "finish": S.SENT,
    "cancel": S.CANCELLED,
}
CALLS: dict[str, Callable[[Session, int], object]] = {
    "schedule": lambda s, cid: lifecycle.schedule(s, cid, WHEN, waves=["Asia/Bangkok"]),
    "reschedule": lambda s, cid: lifecycle.schedule(s, cid, WHEN, again=True),
    "unschedule": lifecycle.unschedule,
    "start_sending": lifecycle.start_sending,
    "miss": lambda s, cid: lifecycle.miss(s, cid, "the service was down"),
    "pause": lambda s, cid: lifecycle.pause(s, cid, "operator lunch"),
    "pause_failing": lambda s, cid: lifecycle.pause_failing(s, cid, "server failing"),
    "resume": lifecycle.resume,
    "resume_recovered": lifecycle.resume_recovered,
    "finish": lifecycle.finish,
    "cancel": lambda s, cid: lifecycle.cancel(s, cid, "changed our minds"),
}


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


def test_the_table_is_the_one_the_module_enforces() -> None:
    """The test's table, the module's moves and its state graph say the same."""
    moves = {move.name: move for move in lifecycle.MOVES}
    assert set(moves) == set(TABLE)
    for name, (sources, _) in TABLE.items():
        move = moves[name]
        under_way = lifecycle.UNDER_WAY if move is lifecycle.START else frozenset()
        assert move.sources | under_way == sources, name
        assert TARGET[name] in move.targets, name
    assert lifecycle.TRANSITIONS == {
        S.DRAFT: {S.SCHEDULED, S.SENDING, S.CANCELLED},
        S.SCHEDULED: {S.DRAFT, S.SCHEDULED, S.SENDING, S.MISSED, S.PAUSED, S.CANCELLED},
        S.MISSED: {S.DRAFT, S.SCHEDULED, S.SENDING, S.CANCELLED},
        S.SENDING: {S.PAUSED, S.SENT, S.FAILED, S.CANCELLED},
        S.PAUSED: {S.SENDING, S.SCHEDULED, S.MISSED, S.CANCELLED},
        S.SENT: set(),
        S.CANCELLED: set(),
        S.FAILED: set(),
    }
    assert lifecycle.allowed(lifecycle.CANCEL, "paused")
    assert not lifecycle.allowed(lifecycle.CANCEL, "sent")


def populate(session: Session) -> None:
    mailing_lists.add_list(session, "newsletter")
    repository.add_subscriber(
        session, "somchai@example.th", name="สมชาย", country="TH", lists=["newsletter"]
    )
    repository.add_subscriber(
        session, "le@example.vn", name="Lê", country="VN", lists=["newsletter"]
    )


def campaign_in(
    session: Session,
    state: CampaignState,
    *,
    scheduled: bool = False,
    auto_resume: bool = False,
    pending_waves: list[str] | None = None,
) -> int:
    """A frozen campaign put straight into `state` (the fixture, not a move), with one
    pending wave, and nobody enqueued."""
    campaign = campaigns.create_campaign(
        session,
        name=f"Issue 15 ({state})",
        issue_path="examples/issues/2022-15.yaml",
        issue=FakeIssue(),
        sender="LMEC <news@lmec.example.org>",
        audience=Audience(lists=("newsletter",)),
    )
    campaigns.freeze(session, campaign.id, Rendered())
    session.add(
        CampaignWave(
            campaign_id=campaign.id,
            timezone="Asia/Bangkok",
            starts_at=WHEN,
            status=WaveStatus.PENDING.value,
            status_reason="",
            recipients=1,
        )
    )
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            state=state.value,
            scheduled_at=WHEN if scheduled else None,
            auto_resume=auto_resume,
            pending_waves=pending_waves or [],
        )
    )
    session.flush()
    return campaign.id


def snapshot(sessions: sessionmaker[Session], cid: int) -> tuple[Any, ...]:
    """Everything a move could change: the campaign's row, its waves, its ledger rows."""
    table = Campaign.__table__
    assert isinstance(table, Table)
    with sessions() as session:
        row = session.execute(select(table).where(table.c.id == cid)).one()
        waves = session.execute(
            select(CampaignWave.id, CampaignWave.status, CampaignWave.status_reason)
            .where(CampaignWave.campaign_id == cid)
            .order_by(CampaignWave.id)
        ).all()
        rows = session.scalar(
            select(func.count()).select_from(LedgerRow).where(LedgerRow.campaign_id == cid)
        )
    return tuple(row), tuple(waves), rows


def state_of(sessions: sessionmaker[Session], cid: int) -> str:
    with sessions() as session:
        return campaigns.get_campaign(session, cid).state


def test_every_move_from_every_state(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
    walked = 0
    for name, (sources, stays) in TABLE.items():
        for state in CampaignState:
            with sessions.begin() as session:
                # A paused campaign here was paused by a worker, so `resume_recovered`
                # may take it back; and it has no schedule, so it resumes to sending.
                cid = campaign_in(session, state, auto_resume=state is S.PAUSED)
            before = snapshot(sessions, cid)
            if state in sources:
                with sessions.begin() as session:
                    CALLS[name](session, cid)
                expected = stays.get(state, TARGET[name])
                assert state_of(sessions, cid) == expected, (name, state)
                assert snapshot(sessions, cid) != before or expected == state, (name, state)
            else:
                with sessions.begin() as session:  # committed: the refusal wrote nothing
                    with pytest.raises(IllegalTransition) as refused:
                        CALLS[name](session, cid)
                error = refused.value
                assert str(error).startswith(f"campaign {cid} is {state}"), (name, str(error))
                assert (error.campaign_id, error.current, error.move.name) == (cid, state, name)
                assert snapshot(sessions, cid) == before, (name, state)
            walked += 1
    assert walked == len(TABLE) * len(CampaignState)


def test_what_a_move_records_with_the_state(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)
        cid = campaign_in(session, S.DRAFT)
    with sessions.begin() as session:
        campaign = lifecycle.schedule(
            session, cid, WHEN, misfire_grace_seconds=60, waves=["Asia/Bangkok", "Asia/Bangkok"]
        )
        assert (campaign.state, campaign.scheduled_at) == (S.SCHEDULED, WHEN)
        assert (campaign.misfire_grace_seconds, campaign.pending_waves) == (60, ["Asia/Bangkok"])
        assert lifecycle.pause(session, cid, "waiting", auto=True).auto_resume is True
        assert lifecycle.resume(session, cid).state == S.SCHEDULED  # nobody enqueued yet
        assert lifecycle.start_sending(session, cid, timezones=["Asia/Bangkok"]) == 1
        campaign = campaigns.get_campaign(session, cid)
        assert campaign.state == S.SENDING and campaign.started_at is not None
        assert campaign.pending_waves == []
        started = campaign.started_at
        paused = lifecycle.pause(session, cid, "operator lunch")
        assert (paused.state_reason, paused.auto_resume) == ("operator lunch", False)
        resumed = lifecycle.resume(session, cid)
        assert (resumed.state, resumed.state_reason, resumed.started_at) == (
            S.SENDING,
            None,
            started,
        )
    with sessions.begin() as session:
        cancelled = lifecycle.cancel(session, cid, "changed our minds")
        assert cancelled.finished_at is not None and cancelled.pending_waves == []
        wave = session.scalars(select(CampaignWave).where(CampaignWave.campaign_id == cid)).one()
        assert (wave.status, wave.status_reason) == ("cancelled", "campaign is cancelled")


def test_conditions_beyond_the_state(sessions: sessionmaker[Session]) -> None:
    """Moves the state allows but the moment does not: refused, nothing changed."""
    with sessions.begin() as session:
        populate(session)
        enqueued = campaign_in(session, S.SENDING)
        lifecycle.start_sending(session, enqueued)
        lifecycle.pause(session, enqueued, "by a person")
        waiting = campaign_in(session, S.SENDING, pending_waves=["Europe/Berlin"])
        done = campaign_in(session, S.SENDING)
        lifecycle.start_sending(session, done)
    refusals: list[tuple[int, Callable[[Session, int], object], str]] = [
        (enqueued, CALLS["miss"], "recipients are enqueued"),
        (enqueued, CALLS["resume_recovered"], "a person paused it"),
        (waiting, CALLS["finish"], "waves are still to start"),
        (done, CALLS["finish"], "recipients are still open"),
    ]
    for cid, call, says in refusals:
        before = snapshot(sessions, cid)
        with sessions.begin() as session:
            with pytest.raises(IllegalTransition, match=says):
                call(session, cid)
        assert snapshot(sessions, cid) == before, says
    # Everyone failed: the campaign failed, with the count.
    with sessions.begin() as session:
        session.execute(
            update(LedgerRow)
            .where(LedgerRow.campaign_id == done)
            .values(status=LedgerStatus.FAILED.value)
        )
        failed = lifecycle.finish(session, done)
        assert failed.state == S.FAILED and failed.finished_at is not None
        assert failed.state_reason == "every one of 2 recipient(s) failed: see the report"
        assert ledger.progress(session, done).failed == 2


def test_a_move_decided_on_a_stale_read_changes_nothing(sessions: sessionmaker[Session]) -> None:
    """A worker read the campaign as sending; an editor pauses it; the worker's finish
    must not overwrite the pause (the row's state decides, not the worker's copy)."""
    with sessions.begin() as session:
        populate(session)
        cid = campaign_in(session, S.SENDING)
    worker = sessions()
    try:
        stale = campaigns.get_campaign(worker, cid)
        worker.commit()
        with sessions.begin() as editor:
            lifecycle.pause(editor, cid, "typo in the subject")
        assert stale.state == S.SENDING  # the worker's copy is out of date
        with pytest.raises(IllegalTransition, match=f"campaign {cid} is paused"):
            lifecycle.finish(worker, cid)
        worker.commit()
    finally:
        worker.close()
    with sessions() as session:
        campaign = campaigns.get_campaign(session, cid)
        assert (campaign.state, campaign.state_reason) == (S.PAUSED, "typo in the subject")
        assert campaign.finished_at is None


def test_a_missing_campaign_is_named(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for call in CALLS.values():
            with pytest.raises(campaigns.CampaignNotFound, match="no campaign with id 999"):
                call(session, 999)


def test_only_the_life_cycle_writes_a_campaigns_state() -> None:
    """Nothing but `mailer.delivery.lifecycle` changes `campaigns.state` (a new campaign
    is born a draft in `campaigns.create_campaign`): no `x.state = ...`, no
    `update(Campaign)`, no `.values(state=...)` anywhere else in the service."""
    offenders = []
    for path in sorted((REPO / "mailer").rglob("*.py")):
        if path == REPO / "mailer" / "delivery" / "lifecycle.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Attribute) and t.attr == "state" for t in targets):
                    offenders.append(where)
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                first = node.args[0] if node.args else None
                if name == "update" and isinstance(first, ast.Name) and first.id == "Campaign":
                    offenders.append(where)
                if name == "values" and any(k.arg == "state" for k in node.keywords):
                    offenders.append(where)
    assert offenders == []
