"""Scheduler commands: schedule campaigns, list the schedule, run the scheduler or the
whole service (`mailer serve`). Thin wrappers over `mailer.schedule.plan` and `mailer.serve`.

Times are typed as wall-clock times (`2026-12-01 09:00`) and read in `--tz` (default:
MAILER_TIMEZONE, the editors' zone), or with `--local-time` in each recipient's own
zone. Listings show UTC and the editors' zone side by side.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table

from mailer.cli.common import opened
from mailer.cli.present import clock
from mailer.compose import Root
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.lifecycle import IllegalTransition
from mailer.schedule import plan
from mailer.schedule.locks import SchedulerLock
from mailer.schedule.waves import (
    CampaignWave,
    DstRule,
    ScheduleError,
    describe,
    parse_wall_time,
    zone,
)

out = Console(highlight=False, soft_wrap=True)

schedule_app = typer.Typer(help="The schedule: what goes out when.", no_args_is_help=True)

CampaignArg = Annotated[int, typer.Argument(help="Campaign id (see `mailer campaign list`).")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help='Send everyone at this time in --tz, e.g. "2026-12-01 09:00".'),
]
LocalOpt = Annotated[
    str | None,
    typer.Option(
        "--local-time",
        help="Send at this time where each recipient is (one wave per time zone), "
        'e.g. "2026-12-01 09:00".',
    ),
]
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone of --at, e.g. Asia/Yangon (default: MAILER_TIMEZONE)."),
]
DstOpt = Annotated[
    DstRule,
    typer.Option(
        "--dst",
        help="A time skipped or repeated by a daylight-saving change: error (default), "
        "or take the earlier or the later instant.",
        case_sensitive=False,
    ),
]
GraceOpt = Annotated[
    int | None,
    typer.Option(
        "--grace",
        min=1,
        help="If the service was down at the due time, still send when it is back within "
        "this many seconds; later, mark it missed (default: MAILER_MISFIRE_GRACE_SECONDS).",
    ),
]

SCHEDULE_EPILOG = (
    'Examples:  mailer campaign schedule 3 --at "2026-12-01 09:00" --tz Asia/Shanghai'
    '  |  mailer campaign schedule 3 --local-time "2026-12-01 09:00"'
)


# The command that does what a refusal advises (the library names no commands).
ADVICE = {
    ("schedule", CampaignState.SCHEDULED): "mailer campaign reschedule",
    ("reschedule", CampaignState.DRAFT): "mailer campaign schedule",
}


@contextmanager
def _advised() -> Iterator[None]:
    """Add to a refused move which command to use instead, where there is one."""
    try:
        yield
    except IllegalTransition as exc:
        command = ADVICE.get((exc.move.name, CampaignState(exc.current)))
        if command is None:
            raise
        raise ScheduleError(f"{exc} (use `{command}`)") from None


def _when(at: str | None, local_time: str | None) -> tuple[datetime, bool]:
    if (at is None) == (local_time is None):
        raise ScheduleError('give exactly one of --at "YYYY-MM-DD HH:MM" or --local-time "…"')
    if local_time is not None:
        return parse_wall_time(local_time), True
    assert at is not None
    return parse_wall_time(at), False


def _show_plan(the_root: Root, waves: list[CampaignWave]) -> None:
    editor = the_root.settings.timezone
    for wave in waves:
        where = (
            f"{describe(wave.starts_at, wave.timezone)} in {wave.timezone}"
            if wave.timezone
            else "everyone"
        )
        out.print(
            f"  {wave.starts_at:%Y-%m-%d %H:%M} UTC  ({describe(wave.starts_at, editor)} "
            f"{editor}): {where}, {wave.recipients} recipient(s)"
        )
    if SchedulerLock(the_root.engine).is_free():
        out.print(
            "note: no scheduler is running against this database; start `mailer serve` or "
            "`mailer scheduler`, or nothing will be sent"
        )


def _plan_command(
    action: str,
    campaign_id: int,
    at: str | None,
    local_time: str | None,
    tz: str | None,
    dst: DstRule,
    grace: int | None,
) -> None:
    with opened() as the_root:
        wall, local = _when(at, local_time)
        if local and tz is not None:
            raise ScheduleError("--tz goes with --at; --local-time uses each recipient's zone")
        zone_name = None if local else zone(the_root.settings.timezone if tz is None else tz).key
        do = plan.schedule if action == "schedule" else plan.reschedule
        with _advised(), the_root.sessions.begin() as session:
            waves = do(
                session,
                campaign_id,
                wall,
                tz=zone_name,
                local_time=local,
                rule=dst,
                grace_seconds=grace,
                renderer=the_root.renderer(),  # content frozen now: a broken issue says so
            )
        mode = "at local time in each zone" if local else f"at {wall:%Y-%m-%d %H:%M} {zone_name}"
        out.print(f"campaign {campaign_id} {action}d {mode}: {len(waves)} wave(s)")
        _show_plan(the_root, waves)


def schedule_command(
    campaign_id: CampaignArg,
    at: AtOpt = None,
    local_time: LocalOpt = None,
    tz: TzOpt = None,
    dst: DstOpt = DstRule.ERROR,
    grace: GraceOpt = None,
) -> None:
    """Schedule a draft campaign: at one time in a zone, or at a local time per recipient."""
    _plan_command("schedule", campaign_id, at, local_time, tz, dst, grace)


def reschedule_command(
    campaign_id: CampaignArg,
    at: AtOpt = None,
    local_time: LocalOpt = None,
    tz: TzOpt = None,
    dst: DstOpt = DstRule.ERROR,
    grace: GraceOpt = None,
) -> None:
    """Replace the schedule of a scheduled (or missed) campaign that has not started."""
    _plan_command("reschedule", campaign_id, at, local_time, tz, dst, grace)


def unschedule_command(campaign_id: CampaignArg) -> None:
    """Take a scheduled (or missed) campaign off the schedule; it becomes a draft again."""
    with opened() as the_root, the_root.sessions.begin() as session:
        plan.unschedule(session, campaign_id)
        out.print(f"campaign {campaign_id} unscheduled: it is a draft again")


def list_command(
    all_waves: Annotated[
        bool, typer.Option("--all", help="Also waves that started or were cancelled.")
    ] = False,
    campaign_id: Annotated[
        int | None, typer.Option("--campaign", "-c", help="Only this campaign.")
    ] = None,
    tz: Annotated[
        str | None, typer.Option("--tz", help="Show times in this zone (default: MAILER_TIMEZONE).")
    ] = None,
) -> None:
    """What goes out when: each wave in UTC, in your zone and where its recipients are."""
    with opened() as the_root, the_root.sessions() as session:
        editor = zone(the_root.settings.timezone if tz is None else tz).key
        entries = plan.schedule_listing(session, include_done=all_waves, campaign_id=campaign_id)
        running = not SchedulerLock(the_root.engine).is_free()
        out.print(
            "scheduler: running"
            if running
            else "scheduler: NOT running (start `mailer serve` or `mailer scheduler`)"
        )
        if not entries:
            out.print("nothing scheduled" + ("" if all_waves else " (use --all for past waves)"))
            return
        by_campaign: dict[int, list[plan.ScheduleEntry]] = {}
        for entry in entries:
            by_campaign.setdefault(entry.campaign_id, []).append(entry)
        for cid, items in by_campaign.items():
            first = items[0]
            table = Table(
                "wave",
                Column("UTC", min_width=16, no_wrap=True),
                editor,
                "local time",
                "people",
                "status",
                box=box.SIMPLE,
                pad_edge=False,
                collapse_padding=True,
                padding=(0, 1),
                title=f"campaign {cid}: {first.campaign_name} ({first.campaign_state})",
                title_justify="left",
            )
            notes = []
            for entry in items:
                local = (
                    f"{clock(entry.starts_at, entry.timezone, abbreviation=False)} {entry.timezone}"
                    if entry.timezone
                    else "everyone at once"
                )
                table.add_row(
                    str(entry.wave_id),
                    f"{entry.starts_at:%Y-%m-%d %H:%M}",
                    clock(entry.starts_at, editor),
                    local,
                    "-" if entry.recipients is None else str(entry.recipients),
                    entry.status,
                )
                if entry.reason:
                    notes.append(f"  wave {entry.wave_id} {entry.status}: {entry.reason}")
            out.print(table)
            for note in notes:
                out.print(note)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def scheduler_command() -> None:
    """Run only the scheduler (one per database), until Ctrl-C or SIGTERM.

    It enqueues each wave when it is due; `mailer worker` processes do the sending.
    """
    with opened() as the_root:
        _configure_logging()
        stop = threading.Event()

        def stop_now(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stop_now)
        signal.signal(signal.SIGINT, stop_now)
        running = the_root.scheduler()
        running.start()
        out.print(f"scheduler running against {running.lock.where}; Ctrl-C to stop")
        try:
            while not stop.wait(1.0):
                pass
        finally:
            running.stop()
        out.print("scheduler stopped")


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address (default: MAILER_WEB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: MAILER_WEB_PORT).")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Leave sending to separate `mailer worker`s.")
    ] = False,
) -> None:
    """Run the web app, the scheduler and one worker in one process (a small installation)."""
    from mailer.serve import Service

    with opened() as the_root:
        _configure_logging()
        service = Service(
            the_root,
            host or the_root.settings.web_host,
            port or the_root.settings.web_port,
            worker=not no_worker,
        )
        service.run()
        out.print("stopped")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root command and to `mailer campaign`.

    The `campaign` group's own help is in mailer.cli.main, with its other commands."""
    campaign_app = typer.Typer()
    app.add_typer(campaign_app, name="campaign")
    campaign_app.command("schedule", epilog=SCHEDULE_EPILOG)(schedule_command)
    campaign_app.command(
        "reschedule", epilog='Example: mailer campaign reschedule 3 --at "2026-12-02 09:00"'
    )(reschedule_command)
    campaign_app.command("unschedule", epilog="Example: mailer campaign unschedule 3")(
        unschedule_command
    )
    schedule_app.command(
        "list", epilog="Examples: mailer schedule list  |  mailer schedule list --all --tz UTC"
    )(list_command)
    app.add_typer(schedule_app, name="schedule")
    app.command(
        "scheduler",
        epilog="Example: mailer scheduler   (next to any number of `mailer worker` processes)",
    )(scheduler_command)
    app.command("serve", epilog="Example: mailer serve --port 8000")(serve_command)
