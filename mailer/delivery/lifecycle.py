"""A campaign's life cycle: every change of its state, and whether it is allowed.

Each move is one function here; nothing else writes `campaigns.state`. A move is one
conditional UPDATE (`... WHERE id = :id AND state IN (<its sources>)`) whose row
count says whether it happened, so two processes racing (a worker finishing, an
editor pausing) never both win, on SQLite or PostgreSQL. A refused move raises
`IllegalTransition` (permanent) naming the campaign, its state and the move, and
changes nothing.

    move               from                                 to
    schedule           draft, missed                        scheduled
    reschedule         scheduled, missed                    scheduled
    unschedule         scheduled, missed                    draft
    start_sending      draft, scheduled, missed             sending
                       sending, paused                      (unchanged: more recipients enqueued)
    miss               scheduled; paused if nobody is       missed
                       enqueued yet
    pause              scheduled, sending                   paused
    pause_failing      sending (by a worker)                paused, for the worker to resume
    resume             paused                               sending; scheduled if it has a schedule
                                                            and nobody is enqueued yet
    resume_recovered   paused by a worker (auto_resume)     as resume
    finish             sending, when no row is open and     sent; failed if every recipient
                       no wave is still to start            failed
    cancel             draft, scheduled, missed, sending,   cancelled
                       paused
    sent, cancelled, failed: final.

`TRANSITIONS` is the same table as state -> reachable states. Functions take a
`Session` and leave committing to the caller, except `start_sending` given a
session factory. One concern, kept whole (about 460 lines): the table, its moves and
`start_sending` (the move to sending, which also enqueues) read best side by side.

One concern, kept whole although it is over 400 lines: the table above is the
module's contents, one function a row, and "who may make a campaign sent" has to
be answered by reading one file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, func, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import ledger
from mailer.delivery.campaigns import (
    Campaign,
    CampaignError,
    CampaignNotFound,
    CampaignState,
    RendererLike,
    audience_select,
    freeze,
    get_campaign,
    render_campaign,
)
from mailer.delivery.ledger import AnySelect
from mailer.errors import UserInputError
from mailer.schedule.waves import CampaignWave, WaveStatus
from mailer.timestamps import UTCDateTime, utcnow

S = CampaignState


@dataclass(frozen=True)
class Move:
    """One row of the table: the states a move starts from and those it leads to."""

    name: str
    sources: frozenset[CampaignState]
    targets: frozenset[CampaignState]
    refusal: str  # what the error says after "campaign N is <state>; "


SCHEDULE = Move(
    "schedule",
    frozenset({S.DRAFT, S.MISSED}),
    frozenset({S.SCHEDULED}),
    "only a draft or missed campaign can be scheduled",
)
RESCHEDULE = Move(
    "reschedule",
    frozenset({S.SCHEDULED, S.MISSED}),
    frozenset({S.SCHEDULED}),
    "only a scheduled or missed campaign can be rescheduled",
)
UNSCHEDULE = Move(
    "unschedule",
    frozenset({S.SCHEDULED, S.MISSED}),
    frozenset({S.DRAFT}),
    "only a scheduled or missed campaign can be unscheduled "
    "(a running one can be paused or cancelled)",
)
START = Move(
    "start_sending",
    frozenset({S.DRAFT, S.SCHEDULED, S.MISSED}),
    frozenset({S.SENDING}),
    "it cannot become sending",
)
# start_sending also enqueues more recipients of a campaign already under way.
UNDER_WAY = frozenset({S.SENDING, S.PAUSED})
MISS = Move(
    "miss",
    frozenset({S.SCHEDULED, S.PAUSED}),
    frozenset({S.MISSED}),
    "it cannot become missed",
)
PAUSE = Move(
    "pause",
    frozenset({S.SCHEDULED, S.SENDING}),
    frozenset({S.PAUSED}),
    "it cannot become paused",
)
PAUSE_FAILING = Move(
    "pause_failing", frozenset({S.SENDING}), frozenset({S.PAUSED}), "it cannot become paused"
)
RESUME = Move(
    "resume",
    frozenset({S.PAUSED}),
    frozenset({S.SENDING, S.SCHEDULED}),
    "it cannot become sending",
)
RESUME_RECOVERED = Move(
    "resume_recovered",
    frozenset({S.PAUSED}),
    frozenset({S.SENDING, S.SCHEDULED}),
    "it cannot become sending",
)
FINISH = Move(
    "finish", frozenset({S.SENDING}), frozenset({S.SENT, S.FAILED}), "it cannot become sent"
)
CANCEL = Move(
    "cancel",
    frozenset({S.DRAFT, S.SCHEDULED, S.MISSED, S.SENDING, S.PAUSED}),
    frozenset({S.CANCELLED}),
    "it cannot become cancelled",
)
MOVES: tuple[Move, ...] = (
    SCHEDULE,
    RESCHEDULE,
    UNSCHEDULE,
    START,
    MISS,
    PAUSE,
    PAUSE_FAILING,
    RESUME,
    RESUME_RECOVERED,
    FINISH,
    CANCEL,
)
FINAL = frozenset({S.SENT, S.CANCELLED, S.FAILED})


def _reachable() -> dict[CampaignState, frozenset[CampaignState]]:
    table: dict[CampaignState, set[CampaignState]] = {state: set() for state in CampaignState}
    for move in MOVES:
        for source in move.sources:
            table[source] |= move.targets
    return {state: frozenset(targets) for state, targets in table.items()}


TRANSITIONS: Mapping[CampaignState, frozenset[CampaignState]] = _reachable()


class IllegalTransition(CampaignError):
    """A move the table does not allow from the campaign's state (e.g. resuming a sent
    campaign), or whose condition does not hold now; nothing was changed."""

    def __init__(
        self, campaign_id: int, current: str, move: Move, detail: str | None = None
    ) -> None:
        said = detail or move.refusal
        # A detail may go on with the state itself ("is draft, not paused: ...").
        joint = "" if said.startswith((",", " ")) else "; "
        super().__init__(f"campaign {campaign_id} is {current}{joint}{said}")
        self.campaign_id = campaign_id
        self.current = current
        self.move = move


def allowed(move: Move, state: str) -> bool:
    """Whether `move` may start from `state` (its further conditions aside)."""
    return CampaignState(state) in move.sources


def require(campaign: Campaign, move: Move) -> None:
    """Refuse now, before any work, a move the campaign's state does not allow."""
    state = CampaignState(campaign.state)
    if state in move.sources:
        return
    detail = None
    if move is SCHEDULE and state is S.SCHEDULED:
        detail = " already: reschedule it instead"
    elif move is RESCHEDULE and state is S.DRAFT:
        detail = f"{move.refusal}: schedule it instead"
    raise IllegalTransition(campaign.id, state, move, detail)


def _move(
    session: Session,
    campaign_id: int,
    move: Move,
    target: CampaignState,
    reason: str | None = None,
    *,
    where: Iterable[ColumnElement[bool]] = (),
    unmet: str | None = None,
    **values: Any,
) -> Campaign:
    """Make the move in one conditional UPDATE; refuse it if no row matched.

    `where` adds the move's further conditions; `unmet` says what the refusal says
    when the state allowed the move but those conditions did not hold."""
    assert target in move.targets, (move, target)
    now = utcnow()
    changes: dict[str, Any] = {"state": target.value, "state_reason": reason, **values}
    if target is S.SENDING:
        changes["started_at"] = func.coalesce(Campaign.started_at, literal(now, UTCDateTime()))
    if target in FINAL:
        changes["finished_at"] = now
    if target is not S.PAUSED:
        changes["auto_resume"] = False
    statement = (
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.state.in_(sorted(s.value for s in move.sources)),
            *where,
        )
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    if result.rowcount != 1:
        current = session.scalar(select(Campaign.state).where(Campaign.id == campaign_id))
        if current is None:
            raise CampaignNotFound(f"no campaign with id {campaign_id}")
        detail = unmet if CampaignState(current) in move.sources else None
        raise IllegalTransition(campaign_id, current, move, detail)
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    assert campaign is not None
    return campaign


# --- planning: scheduled, back to draft, missed -----------------------------------------


def schedule(
    session: Session,
    campaign_id: int,
    when: datetime,
    *,
    misfire_grace_seconds: int | None = None,
    waves: Collection[str] = (),
    again: bool = False,
) -> Campaign:
    """Scheduled for `when` (aware); `waves` are the time zones still to be enqueued.
    `again`: a new plan for a campaign scheduled (or missed) before (reschedule)."""
    if when.tzinfo is None:
        raise UserInputError("scheduled time: give a time zone")
    values: dict[str, Any] = {"scheduled_at": when, "pending_waves": sorted(set(waves))}
    if misfire_grace_seconds is not None:
        values["misfire_grace_seconds"] = misfire_grace_seconds
    move = RESCHEDULE if again else SCHEDULE
    return _move(session, campaign_id, move, S.SCHEDULED, **values)


def unschedule(session: Session, campaign_id: int) -> Campaign:
    """Back to draft (the scheduler's planning removes the waves)."""
    return _move(session, campaign_id, UNSCHEDULE, S.DRAFT, scheduled_at=None, pending_waves=[])


def miss(session: Session, campaign_id: int, reason: str) -> Campaign:
    """Missed as a whole: a wave could not start in time and none of its recipients
    were enqueued yet (also when it was paused meanwhile); one under way goes on."""
    where: list[ColumnElement[bool]] = []
    if ledger.progress(session, campaign_id).total:
        where.append(Campaign.state != S.PAUSED.value)
    return _move(
        session,
        campaign_id,
        MISS,
        S.MISSED,
        reason,
        where=where,
        unmet="it cannot become missed: recipients are enqueued, it goes on when resumed",
    )


# --- sending: started, paused, resumed, finished, cancelled -----------------------------


def pause(
    session: Session, campaign_id: int, reason: str = "paused by operator", *, auto: bool = False
) -> Campaign:
    """Stop handing out rows; rows already on the wire finish. `auto`: a worker resumes it."""
    return _move(session, campaign_id, PAUSE, S.PAUSED, reason, auto_resume=auto)


def pause_failing(session: Session, campaign_id: int, reason: str) -> Campaign:
    """A worker's pause of a campaign it was sending while the server kept failing;
    the worker resumes it (`resume_recovered`) when the server answers again."""
    return _move(session, campaign_id, PAUSE_FAILING, S.PAUSED, reason, auto_resume=True)


def _resumed_state(session: Session, campaign_id: int) -> CampaignState:
    """A scheduled campaign paused before anyone was enqueued goes back to scheduled,
    so its waves still start at their times; anything else goes on sending."""
    scheduled = session.scalar(select(Campaign.scheduled_at).where(Campaign.id == campaign_id))
    if scheduled is not None and ledger.progress(session, campaign_id).total == 0:
        return S.SCHEDULED
    return S.SENDING


def resume(session: Session, campaign_id: int) -> Campaign:
    """Back to sending, or to scheduled when nothing was enqueued yet."""
    campaign = get_campaign(session, campaign_id)
    state = CampaignState(campaign.state)
    if state is not S.PAUSED and state not in FINAL:
        hint = "" if state is S.SENDING else "; send it now instead"
        raise IllegalTransition(
            campaign_id, state, RESUME, f", not paused: there is nothing to resume{hint}"
        )
    return _move(session, campaign_id, RESUME, _resumed_state(session, campaign_id))


def resume_recovered(session: Session, campaign_id: int) -> Campaign:
    """A worker's resume of a campaign it paused, once the server answers again; one a
    person paused stays paused."""
    return _move(
        session,
        campaign_id,
        RESUME_RECOVERED,
        _resumed_state(session, campaign_id),
        where=[Campaign.auto_resume.is_(True)],
        unmet="it cannot become sending by itself: a person paused it",
    )


def finish(session: Session, campaign_id: int) -> Campaign:
    """Sent once no row is open and no wave is still to start; failed if every
    recipient failed (nobody got it)."""
    campaign = get_campaign(session, campaign_id)
    state = CampaignState(campaign.state)
    if state is not S.SENDING:
        raise IllegalTransition(campaign_id, state, FINISH)
    if campaign.pending_waves:
        raise IllegalTransition(
            campaign_id, state, FINISH, "it cannot become sent: waves are still to start"
        )
    tally = ledger.progress(session, campaign_id)
    if not tally.finished:
        raise IllegalTransition(
            campaign_id, state, FINISH, "it cannot become sent: recipients are still open"
        )
    if tally.failed and not tally.sent:
        reason = f"every one of {tally.failed} recipient(s) failed: see the report"
        if tally.skipped:
            reason += f" ({tally.skipped} skipped: they left after it was queued)"
        return _move(session, campaign_id, FINISH, S.FAILED, reason)
    return _move(session, campaign_id, FINISH, S.SENT)


def cancel(session: Session, campaign_id: int, reason: str = "cancelled by operator") -> Campaign:
    """Final: rows not sent yet stay queued in the ledger and are never sent."""
    campaign = _move(session, campaign_id, CANCEL, S.CANCELLED, reason, pending_waves=[])
    # Its waves that have not started never will: say so now, not when a scheduler
    # next runs (the page showed them "pending" after the cancel).
    session.execute(
        update(CampaignWave)
        .where(
            CampaignWave.campaign_id == campaign_id,
            CampaignWave.status == WaveStatus.PENDING.value,
        )
        .values(status=WaveStatus.CANCELLED.value, status_reason="campaign is cancelled")
    )
    session.flush()
    return campaign


def start_sending(
    session_factory_or_session: sessionmaker[Session] | Session,
    campaign_id: int,
    *,
    timezones: Collection[str] | None = None,
    renderer: RendererLike | None = None,
    audience: AnySelect | None = None,
    firing_wave: int | None = None,
) -> int:
    """Freeze (if needed), move to sending and enqueue the audience; return rows added.

    Idempotent: rows already in the ledger are skipped, so a job that fires twice or a
    command run again adds nothing. With `timezones`, only recipients in those zones
    are enqueued (a scheduler wave) and those waves leave `pending_waves`. An unfrozen
    campaign needs a `renderer`. `audience` overrides the stored audience (tests,
    benchmarks). Without `timezones` everyone goes now, so the campaign's waves not
    started yet are settled, except `firing_wave` (the scheduler's wave calling this,
    which records its own start). With a session factory this commits; with a session
    the caller does.
    """
    if isinstance(session_factory_or_session, Session):
        return _start_sending(
            session_factory_or_session, campaign_id, timezones, renderer, audience, firing_wave
        )
    with session_factory_or_session.begin() as session:
        return _start_sending(session, campaign_id, timezones, renderer, audience, firing_wave)


def _start_sending(
    session: Session,
    campaign_id: int,
    timezones: Collection[str] | None,
    renderer: RendererLike | None,
    audience: AnySelect | None,
    firing_wave: int | None,
) -> int:
    campaign = get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if state not in START.sources | UNDER_WAY:
        raise IllegalTransition(campaign.id, state, START)
    if not campaign.frozen:
        if renderer is None:
            raise CampaignError(f"campaign {campaign_id} has no frozen content and no renderer")
        freeze(
            session,
            campaign_id,
            render_campaign(renderer, campaign),
        )
    if state not in UNDER_WAY:
        campaign = _move(session, campaign_id, START, S.SENDING)
    if timezones is None:
        campaign.pending_waves = []
        # Everyone goes now: waves not started (still to come, or missed and now sent by
        # hand) have nobody left to start, and progress must not count their people twice.
        session.execute(
            update(CampaignWave)
            .where(
                CampaignWave.campaign_id == campaign.id,
                CampaignWave.id != (firing_wave or 0),
                CampaignWave.status.in_(
                    [WaveStatus.PENDING.value, WaveStatus.MISSED.value, WaveStatus.FAILED.value]
                ),
            )
            .values(
                status=WaveStatus.STARTED.value,
                status_reason="sent with everyone at once",
                recipients=0,
                started_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
    else:
        campaign.pending_waves = sorted(set(campaign.pending_waves) - set(timezones))
    query = audience if audience is not None else audience_select(campaign)
    added = ledger.enqueue(session, campaign.id, query, utcnow(), timezones=timezones)
    session.flush()
    if timezones is None and not added and ledger.progress(session, campaign.id).total == 0:
        # Sent to nobody, the campaign would be final ('sent') and could never go out.
        raise CampaignError(
            f"campaign {campaign.id}: its audience has no recipients, so nothing was sent "
            "(add subscribers, or check its lists, countries and partners)"
        )
    return added
