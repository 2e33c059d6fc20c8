"""When each part of a campaign starts: wall-clock times turned into UTC instants.

An editor types a local wall time ("2026-12-01 09:00"). Either it is one instant in
one named zone, or it is "09:00 where each recipient is": one *wave* per time zone
in the audience. Daylight-saving changes make some wall times impossible (a gap)
or ambiguous (a fold); those are errors unless the editor picks a rule, and every
message names the zone, the date and what happened. Nothing here touches the
database except the `CampaignWave` table model, which records the plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailer.errors import UserInputError
from subscribers.base import Base, UtcDateTime, utcnow

# Files in the zone database that name no place: `localtime` is whatever the server is
# set to (so a schedule would mean another instant on the next machine).
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
INPUT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


class ScheduleError(UserInputError):
    """A time or zone an editor gave cannot be scheduled; the message says why."""


class DstRule(StrEnum):
    """What to do with a wall time that a daylight-saving change skips or repeats.

    `error` refuses it; `earlier` takes the earlier of the two candidate instants,
    `later` the later one. For a skipped time (02:30 on the spring change) the
    candidates are the wall time read with the offset before and after the change.
    """

    ERROR = "error"
    EARLIER = "earlier"
    LATER = "later"


def parse_wall_time(text: str) -> datetime:
    """A naive wall time from `2026-12-01 09:00` (seconds and a `T` also accepted)."""
    value = text.strip()
    for fmt in INPUT_FORMATS:
        try:
            return datetime.strptime(value, fmt)  # a wall time; its zone comes apart
        except ValueError:
            continue
    raise ScheduleError(
        f"cannot read the time {text!r}: write it as YYYY-MM-DD HH:MM, e.g. 2026-12-01 09:00"
    )


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name` (e.g. Asia/Yangon); an unknown name is a clear error."""
    cleaned = name.strip()
    server_files = cleaned in NOT_ZONES  # the server's own setting, or tzdata's placeholders
    if not cleaned or server_files or cleaned.startswith(("/", ".")) or ".." in cleaned:
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai")
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = _suggest(cleaned)
        more = f" (did you mean {hint}?)" if hint else ""
        raise ScheduleError(
            f"unknown time zone {name!r}{more}: use an IANA name such as Asia/Shanghai"
        ) from None


def _suggest(name: str) -> str | None:
    lowered = name.lower().replace(" ", "_")
    for candidate in sorted(available_timezones()):
        if candidate.lower() == lowered or candidate.lower().endswith("/" + lowered):
            return candidate
    return None


def _fmt_offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta()).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def to_utc(wall: datetime, zone_name: str, rule: DstRule = DstRule.ERROR) -> datetime:
    """The UTC instant at which the clocks in `zone_name` show `wall`.

    Raises ScheduleError for a wall time skipped or repeated by a daylight-saving
    change, unless `rule` says which instant to take.
    """
    if wall.tzinfo is not None:
        raise ValueError("to_utc takes a naive wall time")
    tz = zone(zone_name)
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
    if first_utc == second_utc:
        return first_utc
    when = f"{wall:%H:%M} on {wall:%Y-%m-%d} in {tz.key}"
    exists = first_utc.astimezone(tz).replace(tzinfo=None) == wall
    if not exists:
        # A gap: fold=0 reads the time with the offset before the change (the later
        # instant), fold=1 with the offset after it (the earlier instant).
        earlier, later = second_utc, first_utc
        if rule is DstRule.ERROR:
            raise ScheduleError(
                f"{when} does not exist: the clocks skip it for daylight saving "
                f"({_fmt_offset(first.utcoffset())} to {_fmt_offset(second.utcoffset())}); "
                "choose another time, or --dst earlier|later"
            )
    else:
        earlier, later = first_utc, second_utc
        if rule is DstRule.ERROR:
            raise ScheduleError(
                f"{when} happens twice: the clocks go back for daylight saving "
                f"(first at {_fmt_offset(first.utcoffset())}, again at "
                f"{_fmt_offset(second.utcoffset())}); choose another time, or "
                "--dst earlier|later"
            )
    return earlier if rule is DstRule.EARLIER else later


def describe(instant: datetime, zone_name: str) -> str:
    """`instant` as the clocks in `zone_name` show it, with the zone's abbreviation."""
    local = instant.astimezone(zone(zone_name))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _stamp(moment: datetime) -> str:
    """Minutes, and seconds only when there are any (as the editor typed it)."""
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment.second else f"{moment:%Y-%m-%d %H:%M}"


def check_future(instant: datetime, now: datetime, label: str) -> None:
    """Refuse an instant that has already passed; `label` says which wall time it was."""
    if instant <= now:
        raise ScheduleError(
            f"{label} is in the past (it was {_stamp(instant)} UTC; now it is {_stamp(now)} UTC)"
        )


@dataclass(frozen=True)
class PlannedWave:
    """One wave of a plan: recipients in `timezone` (None: everyone) start at `starts_at` UTC."""

    timezone: str | None
    starts_at: datetime


def plan_instant(
    wall: datetime, zone_name: str, now: datetime, rule: DstRule = DstRule.ERROR
) -> PlannedWave:
    """One wave for the whole audience at `wall` in `zone_name`."""
    instant = to_utc(wall, zone_name, rule)
    check_future(instant, now, f"{_stamp(wall)} in {zone(zone_name).key}")
    return PlannedWave(timezone=None, starts_at=instant)


def plan_local(
    wall: datetime, zones: Iterable[str], now: datetime, rule: DstRule = DstRule.ERROR
) -> list[PlannedWave]:
    """One wave per zone, each starting when the clocks there show `wall`; earliest first.

    Every zone is checked before anything is returned, so an editor sees all the
    problems (unknown zones, DST, the past) of a plan at once.
    """
    waves: list[PlannedWave] = []
    problems: list[str] = []
    for name in sorted(set(zones)):
        try:
            instant = to_utc(wall, name, rule)
            check_future(instant, now, f"{_stamp(wall)} in {name}")
        except ScheduleError as exc:
            problems.append(str(exc))
            continue
        waves.append(PlannedWave(timezone=zone(name).key, starts_at=instant))
    if problems:
        raise ScheduleError("; ".join(problems))
    if not waves:
        raise ScheduleError("the audience has no recipients, so there is nothing to schedule")
    return sorted(waves, key=lambda w: (w.starts_at, w.timezone or ""))


class WaveStatus(StrEnum):
    """pending: waiting for its time; started: its recipients were enqueued; missed: due
    while the service was down for longer than the campaign's grace; failed: could not
    be started (the reason says why); cancelled: the campaign was cancelled or ended."""

    PENDING = "pending"
    STARTED = "started"
    MISSED = "missed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CampaignWave(Base):
    """One scheduled start of a campaign: everyone (timezone NULL) or one time zone."""

    __tablename__ = "campaign_waves"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'started', 'missed', 'failed', 'cancelled')", name="status"
        ),
        Index("ix_campaign_waves_status_starts_at", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    timezone: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default=WaveStatus.PENDING.value)
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recipients: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(191))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    @property
    def label(self) -> str:
        """How the wave is named in logs and listings."""
        return f"campaign {self.campaign_id} wave {self.id} ({self.timezone or 'all recipients'})"
