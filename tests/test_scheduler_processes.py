"""Real processes: `mailer scheduler`, `mailer worker`, `mailer serve`, the schedule
commands, a real SMTP server in this process, on SQLite and PostgreSQL.

Due times are a few seconds ahead; waits are polls with a generous safety limit,
never assertions on how long something took.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mailer import campaigns
from mailer.campaigns import CampaignState
from mailer.ledger import LedgerRow, LedgerStatus
from mailer.waves import CampaignWave
from subscribers import repository
from tests.smtpd import SMTPTestServer, free_port
from tests.test_scheduler import new_campaign, populate

pytestmark = pytest.mark.slow


class Processes:
    """Starts `mailer ...` subprocesses against one database and SMTP port; stops them."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "MAILER_DATABASE_URL": database_url,
            "MAILER_DATA_DIR": str(tmp_path / "data"),
            "MAILER_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "MAILER_PUBLIC_BASE_URL": "https://news.example.org",
            "MAILER_SCHEDULER_POLL_SECONDS": "0.5",
            "MAILER_WORKER_BATCH_SIZE": "5",
            "MAILER_SMTP_CONNECTIONS": "1",
        }
        self.started: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", "from mailer.cli.main import main; main()", *args],
            cwd=self.tmp_path,  # no .env here: settings come from the environment
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        return process

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from mailer.cli.main import main; main()", *args],
            cwd=self.tmp_path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)


@pytest.fixture
def procs(tmp_path: Path, database_url: str) -> Iterator[Processes]:
    processes = Processes(tmp_path, database_url)
    yield processes
    processes.stop_all()


@pytest.fixture
def db_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return sessions


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def ahead(seconds: float) -> tuple[str, datetime]:
    """`--at` text in Asia/Shanghai for `seconds` from now, and that instant."""
    instant = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    local = instant.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{local:%Y-%m-%d %H:%M:%S}", instant


def wave_status(sessions: sessionmaker[Session], cid: int) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(select(CampaignWave.status).where(CampaignWave.campaign_id == cid))
        )


def ledger_count(sessions: sessionmaker[Session], cid: int, status: str | None = None) -> int:
    query = select(func.count()).select_from(LedgerRow).where(LedgerRow.campaign_id == cid)
    if status:
        query = query.where(LedgerRow.status == status)
    with sessions() as session:
        return int(session.scalar(query) or 0)


def stored_jobs(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(text("SELECT id FROM apscheduler_jobs")))


def scheduler_up(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "scheduler running against" in line, line + (
        process.stderr.read() if process.stderr else ""
    )


@pytest.fixture
def cid(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        populate(session)
        return new_campaign(session)


def test_scheduled_campaign_is_sent_once_at_its_time_by_scheduler_and_worker(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        scheduler = procs.start("scheduler")
        scheduler_up(scheduler)
        procs.start("worker")
        at, due = ahead(8)
        done = procs.run("campaign", "schedule", str(cid), "--at", at, "--tz", "Asia/Shanghai")
        assert done.returncode == 0, done.stderr
        assert "scheduled at" in done.stdout and "everyone, 5 recipient(s)" in done.stdout
        listing = procs.run("schedule", "list", "--all")  # pending, or started on a slow day
        assert "scheduler: running" in listing.stdout
        assert f"campaign {cid}: Issue 15" in listing.stdout
        wait_until(lambda: smtp.count() >= 5, "five messages")
        time.sleep(2.0)  # a few more polls: nothing is sent twice
        assert sorted(smtp.arrivals().values()) == [1, 1, 1, 1, 1]
        assert all(m.at >= due for m in smtp.messages)  # not before its time
        assert wave_status(sessions, cid) == ["started"]
        wait_until(lambda: ledger_count(sessions, cid, LedgerStatus.SENT) == 5, "all recorded")
        report = procs.run("campaign", "report", str(cid))
        assert report.returncode == 0, report.stderr
        assert "scheduler waves" in report.stdout
        assert "everyone" in report.stdout and "started" in report.stdout
        scheduler.send_signal(signal.SIGTERM)
        out, err = scheduler.communicate(timeout=30)
        assert scheduler.returncode == 0, err
        assert "scheduler stopped" in out
        assert "wave" in err and "end (started)" in err  # the job's start and end are logged


def test_scheduler_stopped_and_started_before_the_due_time_sends_once_on_time(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        procs.start("worker")
        first = procs.start("scheduler")
        scheduler_up(first)
        at, due = ahead(10)
        assert procs.run("campaign", "schedule", str(cid), "--at", at).returncode == 0
        wait_until(lambda: len(stored_jobs(sessions)) == 1, "the job stored")
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
        assert first.returncode == 0
        assert stored_jobs(sessions), "the job survives the stop"
        second = procs.start("scheduler")
        scheduler_up(second)
        assert datetime.now(UTC) < due, "the machine was too slow to restart it in time"
        wait_until(lambda: smtp.count() >= 5, "five messages")
        time.sleep(1.5)
        assert sorted(smtp.arrivals().values()) == [1, 1, 1, 1, 1]
        assert all(m.at >= due for m in smtp.messages)


def test_killed_scheduler_restarted_after_the_due_time_sends_once(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        procs.start("worker")
        first = procs.start("scheduler")
        scheduler_up(first)
        at, due = ahead(8)
        assert procs.run("campaign", "schedule", str(cid), "--at", at).returncode == 0
        wait_until(lambda: len(stored_jobs(sessions)) == 1, "the job stored")
        first.send_signal(signal.SIGKILL)  # down hard, its job stored, before the due time
        first.communicate(timeout=30)
        assert datetime.now(UTC) < due, "the machine was too slow to kill it in time"
        wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=1), "the due time")
        assert smtp.count() == 0 and ledger_count(sessions, cid) == 0
        second = procs.start("scheduler")
        scheduler_up(second)
        wait_until(lambda: smtp.count() >= 5, "five messages")
        time.sleep(1.5)
        assert sorted(smtp.arrivals().values()) == [1, 1, 1, 1, 1]


def test_killed_scheduler_restarted_after_the_grace_marks_missed(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    first = procs.start("scheduler")
    scheduler_up(first)
    at, due = ahead(6)
    done = procs.run("campaign", "schedule", str(cid), "--at", at, "--grace", "1")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: len(stored_jobs(sessions)) == 1, "the job stored")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=3), "the grace to pass")
    second = procs.start("scheduler")
    scheduler_up(second)
    wait_until(lambda: wave_status(sessions, cid) == ["missed"], "the wave marked missed")
    assert ledger_count(sessions, cid) == 0
    listing = procs.run("schedule", "list")
    assert "missed" in listing.stdout and "the service was not running" in listing.stdout
    with sessions() as session:
        assert campaigns.get_campaign(session, cid).state == CampaignState.MISSED


def test_second_scheduler_refuses_to_start(procs: Processes) -> None:
    first = procs.start("scheduler")
    scheduler_up(first)
    second = procs.run("scheduler")
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("error: another scheduler is already running against")
    assert "Traceback" not in second.stderr
    serve = procs.run("serve", "--port", str(free_port()))
    assert serve.returncode == 1 and "another scheduler is already running" in serve.stderr


def test_schedule_command_errors_are_one_line(procs: Processes, cid: int) -> None:
    cases = {
        ("--at", "2026-03-29 02:30", "--tz", "Europe/Berlin"): "does not exist",
        ("--at", "2020-01-01 09:00"): "is in the past",
        ("--at", "2030-01-01 09:00", "--tz", "Mars/Base"): "unknown time zone 'Mars/Base'",
        ("--at", "tomorrow"): "write it as YYYY-MM-DD HH:MM",
        ("--local-time", "2030-01-01 09:00", "--at", "2030-01-01 09:00"): "exactly one of",
        ("--local-time", "2030-01-01 09:00", "--tz", "UTC"): "--tz goes with --at",
        # An unset shell variable (--tz "$ZONE") was read as the default zone.
        ("--at", "2030-01-01 09:00", "--tz", ""): "unknown time zone ''",
        ("--local-time", "2030-01-01 09:00", "--tz", ""): "--tz goes with --at",
    }
    for args, expected in cases.items():
        done = procs.run("campaign", "schedule", str(cid), *args)
        assert done.returncode == 1, (args, done.stdout)
        assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    done = procs.run("campaign", "schedule", "999", "--at", "2030-01-01 09:00")
    assert done.returncode == 1 and "no campaign with id 999" in done.stderr


def test_cancel_while_sending_stops_the_workers(
    procs: Processes, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        populate(session, [])
        for n in range(40):
            repository.add_subscriber(
                session, f"p{n}@example.vn", name=f"P {n}", country="VN", lists=["newsletter"]
            )
        cid = new_campaign(session)
    with SMTPTestServer(delay=0.15) as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        scheduler = procs.start("scheduler")
        scheduler_up(scheduler)
        procs.start("worker")
        at, _ = ahead(6)
        assert procs.run("campaign", "schedule", str(cid), "--at", at).returncode == 0
        wait_until(lambda: smtp.count() >= 5, "the first messages")
        cancelled = procs.run("campaign", "cancel", str(cid))
        assert cancelled.returncode == 0, cancelled.stderr
        time.sleep(3.0)  # whatever was on the wire at the cancel has landed by now
        arrived = smtp.count()
        time.sleep(2.0)
        assert smtp.count() == arrived < 40  # nothing more is taken from the campaign
        assert sorted(set(smtp.arrivals().values())) == [1]
        sent = ledger_count(sessions, cid, LedgerStatus.SENT)
        assert sent == arrived  # what was sent stays recorded
        assert ledger_count(sessions, cid) == 40  # the rest stay queued, never sent
        with sessions() as session:
            assert campaigns.get_campaign(session, cid).state == CampaignState.CANCELLED


def test_serve_runs_web_scheduler_and_worker_and_stops_on_sigterm(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    port = free_port()
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        serve = procs.start("serve", "--port", str(port))

        def web_answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/archive", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                assert serve.poll() is None, serve.communicate()[1]
                return False

        wait_until(web_answers, "the web app")
        at, due = ahead(6)
        assert procs.run("campaign", "schedule", str(cid), "--at", at).returncode == 0
        wait_until(lambda: smtp.count() >= 5, "five messages")
        assert all(m.at >= due for m in smtp.messages)
        assert procs.run("scheduler").returncode == 1  # serve holds the scheduler lock
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
        assert serve.returncode == 0, err
        assert "scheduler stopped" in err and "stopped" in out
    # The lock went with it: a scheduler may start now.
    again = procs.start("scheduler")
    scheduler_up(again)


def test_serve_on_a_port_in_use_is_one_line_before_anything_starts(procs: Processes) -> None:
    """The port was bound by uvicorn after the scheduler and the worker had started:
    uvicorn's own log lines and exit status 3."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = procs.run("serve", "--port", str(port))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "scheduler" not in result.stderr + result.stdout  # it never started
