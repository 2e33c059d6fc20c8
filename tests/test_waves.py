"""Wave computation: wall times to UTC across the partners' zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailer.errors import UserInputError
from mailer.schedule.waves import (
    DstRule,
    PlannedWave,
    ScheduleError,
    describe,
    parse_wall_time,
    plan_instant,
    plan_local,
    to_utc,
    zone,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone_name", "expected"),
    [
        ("Asia/Shanghai", utc(2026, 12, 1, 1, 0)),  # UTC+8
        ("Asia/Bangkok", utc(2026, 12, 1, 2, 0)),  # UTC+7
        ("Asia/Ho_Chi_Minh", utc(2026, 12, 1, 2, 0)),
        ("Asia/Phnom_Penh", utc(2026, 12, 1, 2, 0)),
        ("Asia/Vientiane", utc(2026, 12, 1, 2, 0)),
        ("Asia/Yangon", utc(2026, 12, 1, 2, 30)),  # UTC+6:30
        ("Europe/Berlin", utc(2026, 12, 1, 8, 0)),  # CET in winter
    ],
)
def test_nine_in_the_morning_in_each_partner_zone(zone_name: str, expected: datetime) -> None:
    assert to_utc(datetime(2026, 12, 1, 9, 0), zone_name) == expected


def test_berlin_offsets_either_side_of_the_changes() -> None:
    # 2026: summer time from Sunday 29 March to Sunday 25 October.
    assert to_utc(datetime(2026, 3, 28, 9, 0), "Europe/Berlin") == utc(2026, 3, 28, 8, 0)
    assert to_utc(datetime(2026, 3, 29, 9, 0), "Europe/Berlin") == utc(2026, 3, 29, 7, 0)
    assert to_utc(datetime(2026, 10, 24, 9, 0), "Europe/Berlin") == utc(2026, 10, 24, 7, 0)
    assert to_utc(datetime(2026, 10, 25, 9, 0), "Europe/Berlin") == utc(2026, 10, 25, 8, 0)


def test_a_skipped_time_is_an_error_naming_zone_and_date() -> None:
    with pytest.raises(ScheduleError) as caught:
        to_utc(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")
    message = str(caught.value)
    assert "02:30 on 2026-03-29 in Europe/Berlin does not exist" in message
    assert "UTC+01:00 to UTC+02:00" in message
    assert isinstance(caught.value, UserInputError)


def test_a_repeated_time_is_an_error_naming_both_offsets() -> None:
    with pytest.raises(ScheduleError) as caught:
        to_utc(datetime(2026, 10, 25, 2, 30), "Europe/Berlin")
    message = str(caught.value)
    assert "02:30 on 2026-10-25 in Europe/Berlin happens twice" in message
    assert "UTC+02:00" in message and "UTC+01:00" in message


def test_dst_rules_pick_the_stated_instant() -> None:
    gap, fold = datetime(2026, 3, 29, 2, 30), datetime(2026, 10, 25, 2, 30)
    # The gap: 02:30 read with the winter offset is 01:30 UTC (03:30 CEST), with the
    # summer offset 00:30 UTC (01:30 CET).
    assert to_utc(gap, "Europe/Berlin", DstRule.LATER) == utc(2026, 3, 29, 1, 30)
    assert to_utc(gap, "Europe/Berlin", DstRule.EARLIER) == utc(2026, 3, 29, 0, 30)
    # The fold: first 02:30 CEST = 00:30 UTC, second 02:30 CET = 01:30 UTC.
    assert to_utc(fold, "Europe/Berlin", DstRule.EARLIER) == utc(2026, 10, 25, 0, 30)
    assert to_utc(fold, "Europe/Berlin", DstRule.LATER) == utc(2026, 10, 25, 1, 30)


def test_zones_without_dst_never_complain() -> None:
    for hour in range(24):
        wall = datetime(2026, 3, 29, hour, 30)
        assert to_utc(wall, "Asia/Yangon").strftime("%M") == "00"


def test_unknown_zone_is_a_clear_error() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Asia/Beijing'"):
        zone("Asia/Beijing")
    with pytest.raises(ScheduleError, match="did you mean Asia/Yangon"):
        zone("yangon")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        zone("../../etc/passwd")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        zone("")


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Factory"])
def test_the_servers_own_zone_files_are_no_zone(name: str) -> None:
    """'localtime' is whatever zone the server is set to (UTC here, something else on
    the next machine), and was stored and shown as if it were a place."""
    with pytest.raises(ScheduleError, match=f"unknown time zone '{name}'"):
        zone(name)


def test_parse_wall_time() -> None:
    assert parse_wall_time("2026-12-01 09:00") == datetime(2026, 12, 1, 9, 0)
    assert parse_wall_time(" 2026-12-01T09:00:30 ") == datetime(2026, 12, 1, 9, 0, 30)
    with pytest.raises(ScheduleError, match="YYYY-MM-DD HH:MM"):
        parse_wall_time("1 Dec 2026 9am")
    with pytest.raises(ScheduleError, match="cannot read the time '2026-02-30 09:00'"):
        parse_wall_time("2026-02-30 09:00")


def test_instant_plan_and_the_past() -> None:
    wave = plan_instant(datetime(2026, 12, 1, 9, 0), "Asia/Shanghai", NOW)
    assert wave == PlannedWave(timezone=None, starts_at=utc(2026, 12, 1, 1, 0))
    with pytest.raises(ScheduleError, match="2025-12-31 09:00 in Asia/Shanghai is in the past"):
        plan_instant(datetime(2025, 12, 31, 9, 0), "Asia/Shanghai", NOW)


def test_local_plan_for_the_partner_audience_is_ordered_by_start() -> None:
    zones = ["Europe/Berlin", "Asia/Yangon", "Asia/Shanghai", "Asia/Ho_Chi_Minh", "Asia/Yangon"]
    waves = plan_local(datetime(2026, 12, 1, 9, 0), zones, NOW)
    assert [(w.timezone, w.starts_at) for w in waves] == [
        ("Asia/Shanghai", utc(2026, 12, 1, 1, 0)),
        ("Asia/Ho_Chi_Minh", utc(2026, 12, 1, 2, 0)),
        ("Asia/Yangon", utc(2026, 12, 1, 2, 30)),
        ("Europe/Berlin", utc(2026, 12, 1, 8, 0)),
    ]


def test_local_plan_reports_every_problem_at_once() -> None:
    now = utc(2026, 3, 29, 1, 15)  # 09:15 in Shanghai: its 09:00 has passed
    with pytest.raises(ScheduleError) as caught:
        plan_local(datetime(2026, 3, 29, 9, 0), ["Asia/Shanghai", "Mars/Olympus"], now)
    message = str(caught.value)
    assert "09:00 in Asia/Shanghai is in the past" in message
    assert "unknown time zone 'Mars/Olympus'" in message
    with pytest.raises(ScheduleError, match="02:30 on 2026-03-29 in Europe/Berlin does not exist"):
        plan_local(datetime(2026, 3, 29, 2, 30), ["Asia/Yangon", "Europe/Berlin"], NOW)
    with pytest.raises(ScheduleError, match="no recipients"):
        plan_local(datetime(2026, 12, 1, 9, 0), [], NOW)


def test_describe_shows_the_local_clock() -> None:
    assert describe(utc(2026, 12, 1, 2, 30), "Asia/Yangon") == "2026-12-01 09:00 +0630"
    assert describe(utc(2026, 7, 1, 7, 0), "Europe/Berlin") == "2026-07-01 09:00 CEST"


ZONES = [
    "Asia/Shanghai",
    "Asia/Yangon",
    "Asia/Kathmandu",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a half-hour daylight-saving shift
    "America/Santiago",
]


@settings(max_examples=400, deadline=None)
@given(
    wall=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
    zone_name=st.sampled_from(ZONES),
)
@example(wall=datetime(2026, 3, 29, 2, 30), zone_name="Europe/Berlin")
@example(wall=datetime(2026, 10, 25, 2, 30), zone_name="Europe/Berlin")
@example(wall=datetime(2026, 10, 4, 2, 15), zone_name="Australia/Lord_Howe")
@example(wall=datetime(2026, 4, 5, 1, 45), zone_name="Australia/Lord_Howe")
@example(wall=datetime(2026, 9, 6, 0, 30), zone_name="America/Santiago")
def test_every_wall_time_maps_back_or_is_refused_by_name(wall: datetime, zone_name: str) -> None:
    try:
        instant = to_utc(wall, zone_name)
    except ScheduleError as exc:
        assert zone_name in str(exc)
        assert "does not exist" in str(exc) or "happens twice" in str(exc)
        earlier = to_utc(wall, zone_name, DstRule.EARLIER)
        later = to_utc(wall, zone_name, DstRule.LATER)
        assert earlier < later <= earlier + timedelta(hours=1)
        if "happens twice" in str(exc):  # both instants show the wall time
            for moment in (earlier, later):
                assert moment.astimezone(zone(zone_name)).replace(tzinfo=None) == wall
        return
    assert instant.tzinfo is UTC
    assert instant.astimezone(zone(zone_name)).replace(tzinfo=None) == wall
    assert (
        to_utc(wall, zone_name, DstRule.EARLIER)
        == instant
        == to_utc(wall, zone_name, DstRule.LATER)
    )
