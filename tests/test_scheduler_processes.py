"""Real processes: `mailer scheduler`, `mailer worker`, `mailer serve`, the schedule
commands, a real SMTP server in this process, on SQLite and PostgreSQL.

Nothing here assumes how fast a process starts or a command runs: on a busy machine
either takes many seconds. Each process is waited for until it says it is ready (its
start-up line, or its web port answering); a due time is set only then, with a lead
derived from how long this test's own start-ups and commands took (tests/waiting.py);
and a scenario whose premise a slow moment broke (the scheduler was to be stopped or
killed before the due time, and was not) is run again on a fresh campaign with a
longer lead. Real time is waited for only where it is the point: a due time or a
grace period to pass, and a few seconds in which nothing more may arrive.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns, lifecycle
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from mailer.schedule import plan
from mailer.schedule.waves import CampaignWave
from subscribers import repository
from tests.smtpd import Received, SMTPTestServer, free_port
from tests.test_scheduler import new_campaign, populate
from tests.waiting import LIMIT, Pace, wait_until

pytestmark = pytest.mark.slow

SCHEDULER_READY = "scheduler running against"  # printed once its first re-read is done
WORKER_READY = ": sending to "
# Seconds in which nothing more may happen (more polls of every process): real time
# is the point, and a slow machine makes the check weaker, never wrong.
QUIET = 1.5


class Proc:
    """A running `mailer ...` process whose output lines are read as they come."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,  # no .env here: settings come from the environment
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._closed = 0
        self._changed = threading.Condition()
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self.popen.stdout), ("stderr", self.popen.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self._lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed += 1
            self._changed.notify_all()

    @property
    def out(self) -> str:
        with self._changed:
            return "".join(self._lines["stdout"])

    @property
    def err(self) -> str:
        with self._changed:
            return "".join(self._lines["stderr"])

    def wait_for(self, text: str, stream: str = "stdout", limit: float = LIMIT) -> None:
        """Block until a line with `text` appears; fail at once if the process ends first."""
        deadline = time.monotonic() + limit
        with self._changed:
            while not any(text in line for line in self._lines[stream]):
                if self._closed == 2:
                    raise AssertionError(
                        f"the process ended without {text!r}:\n{''.join(self._lines['stdout'])}"
                        f"{''.join(self._lines['stderr'])}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"gave up waiting for {text!r} after {limit:.0f} s")
                self._changed.wait(min(remaining, 1.0))

    def running(self) -> bool:
        return self.popen.poll() is None

    def finish(self, signum: int | None = None) -> int:
        """Send `signum` (if still running), wait for the exit and the last output."""
        if signum is not None and self.running():
            self.popen.send_signal(signum)
        code = self.popen.wait(timeout=LIMIT)
        for reader in self._readers:
            reader.join(timeout=LIMIT)
        return code


class Processes:
    """Starts `mailer ...` subprocesses against one database and SMTP port, times how
    long they take to be ready (`pace`), and stops them."""

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
        self.started: list[Proc] = []
        self.pace = Pace()

    @staticmethod
    def argv(*args: str) -> list[str]:
        return [sys.executable, "-c", "from mailer.cli.main import main; main()", *args]

    def start(self, *args: str, ready: str | None = None) -> Proc:
        """Start `mailer *args`; with `ready`, wait for that line on its stdout."""
        done = self.pace.timed()
        process = Proc(self.argv(*args), self.tmp_path, self.env)
        self.started.append(process)
        if ready is not None:
            process.wait_for(ready)
            done()
        return process

    def scheduler(self) -> Proc:
        return self.start("scheduler", ready=SCHEDULER_READY)

    def worker(self) -> Proc:
        return self.start("worker", ready=WORKER_READY)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.pace.timed()
        result = subprocess.run(
            self.argv(*args),
            cwd=self.tmp_path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=LIMIT,
        )
        done()
        return result

    def stop_all(self) -> None:
        for process in self.started:
            process.finish(signal.SIGKILL)


@pytest.fixture
def procs(tmp_path: Path, database_url: str) -> Iterator[Processes]:
    processes = Processes(tmp_path, database_url)
    yield processes
    processes.stop_all()


def ahead(seconds: float) -> tuple[str, datetime]:
    """`--at` text in Asia/Shanghai for `seconds` from now, and that instant."""
    instant = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    local = instant.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{local:%Y-%m-%d %H:%M:%S}", instant


def schedule_ahead(
    procs: Processes, cid: int, lead: float, *options: str
) -> tuple[subprocess.CompletedProcess[str], datetime]:
    """`mailer campaign schedule --at` `lead` seconds ahead, and the due instant. A
    command that took longer than the lead to start says the time is in the past:
    then it is run again with a longer lead (the command is what is slow, not wrong)."""
    for _ in range(4):
        at, due = ahead(lead)
        done = procs.run(
            "campaign", "schedule", str(cid), "--at", at, "--tz", "Asia/Shanghai", *options
        )
        if done.returncode == 1 and "is in the past" in done.stderr:
            lead = max(2 * lead, procs.pace.lead(1))
            continue
        assert done.returncode == 0, done.stderr
        return done, due
    raise AssertionError(f"`campaign schedule` never ran within its lead: {done.stderr}")


def schedule_due_now(sessions: sessionmaker[Session], cid: int) -> None:
    """Schedule through the library with its clock set a minute back, so the wave is
    due at once: the running scheduler starts it at its next re-read."""
    now = datetime.now(UTC).replace(microsecond=0)
    with sessions.begin() as session:
        plan.schedule(
            session, cid, now.replace(tzinfo=None), tz="UTC", now=now - timedelta(minutes=1)
        )


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


def jobs_of(sessions: sessionmaker[Session], cid: int) -> list[str]:
    """The stored APScheduler jobs of this campaign's waves."""
    with sessions() as session:
        ids = session.scalars(select(CampaignWave.id).where(CampaignWave.campaign_id == cid))
        mine = {f"wave-{wave_id}" for wave_id in ids}
    return [job for job in stored_jobs(sessions) if job in mine]


def job_stored_in_time(sessions: sessionmaker[Session], cid: int) -> bool:
    """Wait until the running scheduler stored the wave's job, or settled the wave
    without one (it found it due already: the machine was slower than the lead)."""
    wait_until(
        lambda: bool(jobs_of(sessions, cid)) or wave_status(sessions, cid) != ["pending"],
        "the job stored or the wave settled",
    )
    return bool(jobs_of(sessions, cid)) and wave_status(sessions, cid) == ["pending"]


MESSAGE_ID = re.compile(rb"^Message-ID: <(\d+)\.", re.MULTILINE | re.IGNORECASE)


def sent(smtp: SMTPTestServer, cid: int) -> list[Received]:
    """What arrived from campaign `cid` (by its Message-ID), not from earlier attempts."""
    mine = []
    for message in list(smtp.messages):
        found = MESSAGE_ID.search(message.data)
        if found is not None and int(found.group(1)) == cid:
            mine.append(message)
    return mine


def arrivals(smtp: SMTPTestServer, cid: int) -> list[int]:
    """How many messages of campaign `cid` each recipient got, sorted."""
    return sorted(Counter(r.lower() for m in sent(smtp, cid) for r in m.rcpt_tos).values())


def fresh_campaign(sessions: sessionmaker[Session], attempt: int) -> int:
    with sessions.begin() as session:
        return new_campaign(session, "Issue 15" if attempt == 0 else f"Issue 15 ({attempt})")


def give_up(sessions: sessionmaker[Session], cid: int, *running: Proc) -> None:
    """End an attempt whose premise did not hold: no scheduler left, its campaign
    cancelled (whatever it sent is told apart from the next attempt's by Message-ID)."""
    for process in running:
        process.finish(signal.SIGKILL)
    with sessions.begin() as session:
        if CampaignState(campaigns.get_campaign(session, cid).state) not in plan.ENDED:
            lifecycle.cancel(session, cid, "a slow moment broke this attempt's premise")


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        populate(session)


@pytest.fixture
def cid(sessions: sessionmaker[Session], people: None) -> int:
    return fresh_campaign(sessions, 0)


def test_scheduled_campaign_is_sent_once_at_its_time_by_scheduler_and_worker(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        running = procs.scheduler()
        procs.worker()
        done, due = schedule_ahead(procs, cid, procs.pace.lead(1))
        assert "scheduled at" in done.stdout and "everyone, 5 recipient(s)" in done.stdout
        listing = procs.run("schedule", "list", "--all")  # pending, or started on a slow day
        assert "scheduler: running" in listing.stdout
        assert f"campaign {cid}: Issue 15" in listing.stdout
        wait_until(lambda: smtp.count() >= 5, "five messages")
        wait_until(lambda: ledger_count(sessions, cid, LedgerStatus.SENT) == 5, "all recorded")
        time.sleep(QUIET)  # a few more polls: nothing is sent twice
        assert sorted(smtp.arrivals().values()) == [1, 1, 1, 1, 1]
        assert all(m.at >= due for m in smtp.messages)  # not before its time
        assert wave_status(sessions, cid) == ["started"]
        report = procs.run("campaign", "report", str(cid))
        assert report.returncode == 0, report.stderr
        assert "scheduler waves" in report.stdout
        assert "everyone" in report.stdout and "started" in report.stdout
        assert running.finish(signal.SIGTERM) == 0, running.err
        assert "scheduler stopped" in running.out
        assert "wave" in running.err and "end (started)" in running.err  # start and end logged


def test_scheduler_stopped_and_started_before_the_due_time_sends_once_on_time(
    procs: Processes, sessions: sessionmaker[Session], people: None
) -> None:
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        procs.worker()
        first = procs.scheduler()
        # Before the due time: the command, the job stored, the stop, the new start-up.
        for attempt, lead in enumerate(procs.pace.attempts(4, "a restart before the due time")):
            cid = fresh_campaign(sessions, attempt)
            _, due = schedule_ahead(procs, cid, lead)
            if not job_stored_in_time(sessions, cid):
                give_up(sessions, cid, first)
                first = procs.scheduler()
                continue
            assert first.finish(signal.SIGTERM) == 0, first.err
            if datetime.now(UTC) < due:  # stopped before its job could fire
                assert jobs_of(sessions, cid), "the job survives the stop"
                second = procs.scheduler()
                if datetime.now(UTC) < due and wave_status(sessions, cid) == ["pending"]:
                    break
                give_up(sessions, cid, second)
            else:
                give_up(sessions, cid)
            first = procs.scheduler()
        wait_until(lambda: len(sent(smtp, cid)) >= 5, "five messages")
        wait_until(lambda: ledger_count(sessions, cid, LedgerStatus.SENT) == 5, "all recorded")
        time.sleep(QUIET)
        assert arrivals(smtp, cid) == [1, 1, 1, 1, 1]
        assert all(m.at >= due for m in sent(smtp, cid))


def test_killed_scheduler_restarted_after_the_due_time_sends_once(
    procs: Processes, sessions: sessionmaker[Session], people: None
) -> None:
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        procs.worker()
        # Before the due time: the command, the job stored (then the kill, at once).
        for attempt, lead in enumerate(procs.pace.attempts(2, "a kill before the due time")):
            cid = fresh_campaign(sessions, attempt)
            first = procs.scheduler()
            _, due = schedule_ahead(procs, cid, lead)
            stored = job_stored_in_time(sessions, cid)
            first.finish(signal.SIGKILL)  # down hard, its job stored, before the due time
            if stored and datetime.now(UTC) < due:
                break
            give_up(sessions, cid)
        # Real time is the point: the due time passes while no scheduler runs.
        wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=1), "the due time")
        assert not sent(smtp, cid) and ledger_count(sessions, cid) == 0
        assert jobs_of(sessions, cid), "the killed scheduler's job is still stored"
        procs.scheduler()
        wait_until(lambda: len(sent(smtp, cid)) >= 5, "five messages")
        wait_until(lambda: ledger_count(sessions, cid, LedgerStatus.SENT) == 5, "all recorded")
        time.sleep(QUIET)
        assert arrivals(smtp, cid) == [1, 1, 1, 1, 1]


def test_killed_scheduler_restarted_after_the_grace_marks_missed(
    procs: Processes, sessions: sessionmaker[Session], people: None
) -> None:
    for attempt, lead in enumerate(procs.pace.attempts(2, "a kill before the due time")):
        cid = fresh_campaign(sessions, attempt)
        first = procs.scheduler()
        _, due = schedule_ahead(procs, cid, lead, "--grace", "1")
        stored = job_stored_in_time(sessions, cid)
        first.finish(signal.SIGKILL)
        if stored and datetime.now(UTC) < due:
            break
        give_up(sessions, cid)
    # Real time is the point: the due time and the grace pass while no scheduler runs.
    wait_until(lambda: datetime.now(UTC) > due + timedelta(seconds=3), "the grace to pass")
    assert jobs_of(sessions, cid), "the killed scheduler's job is still stored"
    procs.scheduler()
    wait_until(lambda: wave_status(sessions, cid) == ["missed"], "the wave marked missed")
    assert ledger_count(sessions, cid) == 0
    listing = procs.run("schedule", "list")
    assert "missed" in listing.stdout and "the service was not running" in listing.stdout
    with sessions() as session:
        assert campaigns.get_campaign(session, cid).state == CampaignState.MISSED


def test_second_scheduler_refuses_to_start(procs: Processes) -> None:
    procs.scheduler()
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


def test_a_refused_schedule_names_the_command_to_use(procs: Processes, cid: int) -> None:
    """The library says what is wrong; the command adds which command to use instead."""
    done = procs.run("campaign", "reschedule", str(cid), "--at", "2030-01-01 09:00")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"campaign {cid} is draft; only a scheduled or missed campaign" in done.stderr
    assert "schedule it instead (use `mailer campaign schedule`)" in done.stderr
    assert procs.run("campaign", "schedule", str(cid), "--at", "2030-01-01 09:00").returncode == 0
    done = procs.run("campaign", "schedule", str(cid), "--at", "2030-01-02 09:00")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert (
        f"error: campaign {cid} is scheduled already: reschedule it instead "
        "(use `mailer campaign reschedule`)"
    ) in done.stderr
    # A refusal with no command to advise is passed on as the library said it.
    done = procs.run("campaign", "unschedule", str(cid))
    assert done.returncode == 0, done.stderr
    done = procs.run("campaign", "unschedule", str(cid))
    assert done.returncode == 1 and "use `" not in done.stderr, done.stderr
    assert f"campaign {cid} is draft; only a scheduled or missed campaign can be unsch" in (
        done.stderr
    )


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
        procs.scheduler()
        procs.worker()
        schedule_due_now(sessions, cid)
        wait_until(lambda: smtp.count() >= 5, "the first messages")
        # Cancelled in this process: a `mailer campaign cancel` (tests/test_delivery_cli.py)
        # may take longer to start on a busy machine than the send takes to finish.
        with sessions.begin() as session:
            lifecycle.cancel(session, cid)

        def nothing_on_the_wire() -> bool:
            """No row held by the worker: what it was sending landed and was recorded,
            and the rest of its batch went back to the queue."""
            return ledger_count(sessions, cid, LedgerStatus.SENDING) == 0

        wait_until(nothing_on_the_wire, "the worker to let go of the cancelled campaign")
        time.sleep(QUIET)  # the worker polls on
        wait_until(nothing_on_the_wire, "the worker to let go of the cancelled campaign")
        arrived = smtp.count()
        time.sleep(QUIET)
        assert smtp.count() == arrived < 40  # nothing more is taken from the campaign
        assert sorted(set(smtp.arrivals().values())) == [1]
        sent_rows = ledger_count(sessions, cid, LedgerStatus.SENT)
        assert sent_rows == arrived  # what was sent stays recorded
        assert ledger_count(sessions, cid) == 40  # the rest stay queued, never sent
        with sessions() as session:
            assert campaigns.get_campaign(session, cid).state == CampaignState.CANCELLED


def test_serve_runs_web_scheduler_and_worker_and_stops_on_sigterm(
    procs: Processes, sessions: sessionmaker[Session], cid: int
) -> None:
    port = free_port()
    with SMTPTestServer() as smtp:
        procs.env["MAILER_SMTP_PORT"] = str(smtp.port)
        started = procs.pace.timed()
        serve = procs.start("serve", "--port", str(port))

        def web_answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/archive", timeout=5) as r:
                    return bool(r.status == 200)
            except OSError:
                assert serve.running(), serve.err
                return False

        wait_until(web_answers, "the web app")  # it starts the scheduler before the web app
        started()
        _, due = schedule_ahead(procs, cid, procs.pace.lead(1))
        wait_until(lambda: smtp.count() >= 5, "five messages")
        assert all(m.at >= due for m in smtp.messages)
        assert procs.run("scheduler").returncode == 1  # serve holds the scheduler lock
        assert serve.finish(signal.SIGTERM) == 0, serve.err
        assert "scheduler stopped" in serve.err and "stopped" in serve.out
    # The lock went with it: a scheduler may start now.
    procs.scheduler()


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
