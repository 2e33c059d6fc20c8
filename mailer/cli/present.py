"""How commands show things: local times, and tables more than one command prints.

Support for the command modules (they import this and `common`, never each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich import box
from rich.table import Column, Table

from mailer.schedule.waves import zone

if TYPE_CHECKING:
    from mailer.schedule.plan import WaveReport


def local_time(value: datetime | None, zone_name: str) -> str:
    """`2026-12-01 09:00 +07` in the zone, or "-" for no time."""
    return value.astimezone(ZoneInfo(zone_name)).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def clock(instant: datetime, zone_name: str, *, abbreviation: bool = True) -> str:
    """The local time of day (and zone abbreviation), with the date only when it
    differs from the UTC date shown next to it."""
    local = instant.astimezone(zone(zone_name))
    shown = f"{local:%H:%M %Z}" if abbreviation else f"{local:%H:%M}"
    return shown if local.date() == instant.date() else f"{local:%Y-%m-%d} {shown}"


def waves_table(reports: Sequence[WaveReport], editor_zone: str) -> Table | None:
    """The per-wave part of `mailer campaign report` (None for an unscheduled campaign):
    zone, UTC start, recipients and progress from the ledger; reasons in the caption."""
    if not reports:
        return None
    table = Table(
        Column("zone", no_wrap=True),
        Column("starts (UTC)", no_wrap=True),
        editor_zone,
        "status",
        "total",
        "sent",
        "failed",
        title="scheduler waves",
        box=box.SIMPLE,
        pad_edge=False,
        collapse_padding=True,
        padding=(0, 1),
    )
    for column in table.columns:
        column.no_wrap = True
    notes = []
    for item in reports:
        zones = item.timezone or "everyone"
        if item.timezone and len(item.zones) > 1:
            zones += f" (+{len(item.zones) - 1} more)"
        table.add_row(
            zones,
            f"{item.starts_at:%Y-%m-%d %H:%M}",
            clock(item.starts_at, editor_zone),
            item.status,
            "-" if item.recipients is None else str(item.recipients),
            str(item.progress.sent),
            str(item.progress.failed),
        )
        if item.reason:
            notes.append(f"{item.timezone or 'everyone'} {item.status}: {item.reason}")
        if item.timezone and len(item.zones) > 1:
            notes.append(f"{item.timezone} also took {', '.join(item.zones[1:])}")
    if notes:
        table.caption = "; ".join(notes)
        table.caption_justify = "left"
    return table
