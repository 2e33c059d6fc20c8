"""Resuming after a crash: a dead worker's rows come back at once, a live one's never.

Real `mailer send` / `mailer worker` processes send to an aiosmtpd server in this
process and are killed with SIGKILL at random moments, then restarted at once with
the default lease (five minutes): the restarted sender takes the dead one's rows
back at once (same machine: its process is gone; PostgreSQL: its lock is gone), so
everything arrives, with at most one duplicate per open connection per kill.

A worker stopped (SIGSTOP) past its lease is alive: nobody takes its rows back early;
after the lease another worker sends them, and the stopped one, continued, must not
send them again (it did: every row of its batch still waiting, far beyond the bound).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from mailer.cli import delivery as delivery_cli
from mailer.cli.main import app
from mailer.delivery import campaigns, ledger, owners
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from mailer.timestamps import utcnow
from tests.smtpd import SMTPTestServer
from tests.test_delivery_send import add_recipients, delivery_root, seed_campaign
from tests.waiting import LIMIT, wait_until

CONNECTIONS = 2


def start(
    tmp_path: Path, database_url: str, port: int, *command: str, **env: str
) -> subprocess.Popen[bytes]:
    """A `mailer` process with settings from the environment only (no lease set:
    the default five minutes, unless `env` says otherwise)."""
    environment = {
        **os.environ,
        "MAILER_DATABASE_URL": database_url,
        "MAILER_DATA_DIR": str(tmp_path / "data"),
        "MAILER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "MAILER_PUBLIC_BASE_URL": "https://news.example.org",
        "MAILER_SMTP_PORT": str(port),
        "MAILER_SMTP_CONNECTIONS": str(CONNECTIONS),
        "MAILER_RETRY_BASE_SECONDS": "0",
        **{f"MAILER_{name.upper()}": value for name, value in env.items()},
    }
    if "worker_lease_seconds" not in env:
        environment.pop("MAILER_WORKER_LEASE_SECONDS", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from mailer.cli.main import main; main()", *command],
        cwd=tmp_path,  # no .env here
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def state_of(root, campaign_id: int) -> CampaignState:
    with root.sessions() as session:
        return CampaignState(campaigns.get_campaign(session, campaign_id).state)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["send", "worker"])
def test_killed_senders_restarted_at_once_resume_with_the_default_lease(
    tmp_path: Path, database_url: str, command: str
) -> None:
    rng = random.Random(os.environ.get("KILL_SEED", f"crash-{command}"))
    recipients, kills = 150, 3
    with SMTPTestServer(delay=0.03) as server:
        root = delivery_root(tmp_path, database_url, server.port)
        assert root.settings.worker_lease_seconds == 300  # the default
        with root.sessions.begin() as session:
            emails = add_recipients(session, recipients)
        campaign_id = seed_campaign(root)
        args = ("send", str(campaign_id)) if command == "send" else ("worker",)
        logs = []
        for _ in range(kills):
            before = server.count()
            sender = start(tmp_path, database_url, server.port, *args)
            # Killed only once it sends (a restarted one must first take rows back: the
            # default batch of 200 is every row, all held by the one killed before).
            wait_until(lambda: server.count() > before + 3, "the sender to send")  # noqa: B023
            threading.Event().wait(rng.uniform(0.0, 0.5))
            sender.send_signal(signal.SIGKILL)
            logs.append(sender.communicate()[1].decode())
        assert server.count() < recipients, "the kills came too late to test anything"
        sender = start(tmp_path, database_url, server.port, *args)
        try:
            wait_until(lambda: state_of(root, campaign_id) == CampaignState.SENT, "all sent")
        finally:
            if command == "worker":  # `mailer send` ends by itself when the campaign is sent
                sender.terminate()
            _, stderr = sender.communicate(timeout=LIMIT)
        logs.append(stderr.decode())
        assert sender.returncode == 0, stderr.decode()
        arrivals = server.arrivals()

    assert not set(emails) - set(arrivals)
    duplicates = sum(count - 1 for count in arrivals.values())
    assert duplicates <= kills * CONNECTIONS, arrivals.most_common(10)
    # Every restart took back what the one before held: the lease did not run out.
    for log in logs[1:]:
        assert "took back" in log, log
    with root.sessions() as session:
        tally = ledger.progress(session, campaign_id)
        assert (tally.sent, tally.total) == (recipients, recipients)
        assert not session.scalars(select(owners.WorkerRecord)).all()  # all forgotten
    root.close()


@pytest.mark.slow
def test_a_stopped_worker_continued_after_its_lease_sends_nothing_taken_from_it(
    tmp_path: Path, database_url: str
) -> None:
    lease = {"worker_lease_seconds": "2", "worker_batch_size": "500"}
    with SMTPTestServer(delay=0.05) as server:
        root = delivery_root(tmp_path, database_url, server.port)
        with root.sessions.begin() as session:
            emails = add_recipients(session, 200)
        campaign_id = seed_campaign(root)
        stalled = start(tmp_path, database_url, server.port, "worker", "--once", **lease)
        wait_until(lambda: server.count() > 5, "the first worker to send")
        stalled.send_signal(signal.SIGSTOP)  # alive, holding the whole batch
        at_stop = server.count()
        other = start(tmp_path, database_url, server.port, "worker", **lease)
        try:
            # The other worker takes the rows once the lease ran out, and is sending
            # them when the stopped one goes on, its batch still waiting.
            wait_until(lambda: server.count() > at_stop + 10, "the other worker to send")
            stalled.send_signal(signal.SIGCONT)
            _, stalled_err = stalled.communicate(timeout=LIMIT)  # --once: exits when idle
            wait_until(lambda: state_of(root, campaign_id) == CampaignState.SENT, "all sent")
        finally:
            stalled.send_signal(signal.SIGCONT)
            other.terminate()
            _, stderr = other.communicate(timeout=LIMIT)
        assert "took back" not in stderr.decode()  # a live process is never judged dead
        assert stalled.returncode == 0, stalled_err.decode()
        arrivals = server.arrivals()

    assert not set(emails) - set(arrivals)
    duplicates = sum(count - 1 for count in arrivals.values())
    assert duplicates <= CONNECTIONS, arrivals.most_common(10)  # what was on its wire
    root.close()


def _another_machine(root, name: str) -> None:
    with root.sessions.begin() as session:
        session.execute(
            update(owners.WorkerRecord)
            .where(owners.WorkerRecord.name == name)
            .values(machine="another-machine", seen_at=utcnow() - timedelta(minutes=5))
        )


def _held_by(root, name: str) -> int:
    with root.sessions() as session:
        rows = session.scalars(
            select(LedgerRow).where(
                LedgerRow.worker == name,
                LedgerRow.status == LedgerStatus.SENDING,
                LedgerRow.lease_until > utcnow() + timedelta(seconds=60),
            )
        ).all()
    return len(rows)


def test_rows_of_a_worker_on_another_machine_come_back_by_its_lock_or_its_lease(
    tmp_path: Path, database_url: str
) -> None:
    """PostgreSQL: taken back once the owner's lock is free (and not before); SQLite:
    no lock, so only the lease can tell."""
    root = delivery_root(tmp_path, database_url, 1, worker_batch_size=5)
    with root.sessions.begin() as session:
        add_recipients(session, 12)
    campaign_id = seed_campaign(root)
    holder, taker = root.worker(name="holder"), root.worker(name="taker")
    holder._presence.tend()
    assert len(holder.claim()) == 5
    _another_machine(root, "holder")  # so its process id tells the taker nothing

    taker._presence.tend()
    assert _held_by(root, "holder") == 5  # alive on PostgreSQL (its lock), unknown on SQLite

    lock = holder._presence._lock
    if lock is not None:  # PostgreSQL: the holder's session ends, as when it is killed
        lock.invalidate()
    taker._presence._swept = float("-inf")
    taker._presence.tend()
    postgres = root.engine.dialect.name == "postgresql"
    assert _held_by(root, "holder") == (0 if postgres else 5)
    with root.sessions() as session:
        held = owners.held_by_dead(session, campaign_id)
    if not postgres:  # judged by the lease alone: not listed as dead
        assert held == []
    taker.close()
    root.close()


def test_report_names_rows_held_by_a_dead_worker_and_when_they_come_back(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = delivery_root(tmp_path, database_url, 1, worker_batch_size=4)
    with root.sessions.begin() as session:
        add_recipients(session, 10)
    campaign_id = seed_campaign(root)
    # A worker process that claims a batch and is then killed.
    code = (
        "import os, signal\n"
        "from mailer.compose import build\n"
        "worker = build().worker(name='doomed')\n"
        "worker._presence.tend()\n"
        "assert len(worker.claim()) == 4\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": database_url,
        "MAILER_DATA_DIR": str(tmp_path / "data"),
        "MAILER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "MAILER_PUBLIC_BASE_URL": "https://news.example.org",
        "MAILER_WORKER_BATCH_SIZE": "4",
    }
    doomed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, timeout=LIMIT
    )
    assert doomed.returncode == -signal.SIGKILL, doomed.stderr.decode()

    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        if name.startswith("MAILER_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(delivery_cli.out, "width", 250)
    result = CliRunner().invoke(app, ["campaign", "report", str(campaign_id)])
    assert result.exit_code == 0, result.output
    assert "4 row(s) held by worker doomed, which has stopped (its process is gone)" in (
        result.output
    )
    assert "takes them back at once (their lease ends at" in result.output

    worker = root.worker()
    worker._presence.tend()  # a worker starting: the rows are due again at once
    assert len(worker.claim()) == 4
    worker.close()
    root.close()


def test_a_process_is_known_by_its_id_and_start_time(tmp_path: Path) -> None:
    me = owners.this_process()
    assert me.started > 0 and me.machine
    assert not owners.process_gone(me.pid, me.started)
    assert owners.process_gone(me.pid, me.started + 1)  # the same pid, another process
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        stat = _start_time(child.pid)
        assert not owners.process_gone(child.pid, stat)
        child.send_signal(signal.SIGSTOP)  # stopped is alive
        assert not owners.process_gone(child.pid, stat)
        child.send_signal(signal.SIGKILL)
        wait_until(lambda: owners.process_gone(child.pid, stat), "the zombie to count as gone")
    finally:
        child.kill()
        child.wait()
    assert owners.process_gone(child.pid, stat)


def _start_time(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19])


def test_a_worker_that_loses_its_lock_sends_nothing_until_it_registers_again(
    tmp_path: Path, database_url: str
) -> None:
    """PostgreSQL: its lock connection ends (here terminated by the server) while it
    lives; it must not send (others may take its rows) and comes back under a new name.
    SQLite has no lock to lose."""
    root = delivery_root(tmp_path, database_url, 1, worker_batch_size=3)
    with root.sessions.begin() as session:
        add_recipients(session, 6)
    campaign_id = seed_campaign(root)
    worker, other = root.worker(name="cut-off"), root.worker(name="other")
    assert worker._presence.tend() == "cut-off"
    assert len(worker.claim()) == 3
    assert worker._presence.holds()
    lock = worker._presence._lock
    if lock is None:  # SQLite
        assert worker._presence.tend() == "cut-off" and worker._presence.holds()
        worker.close()
        root.close()
        return
    backend = lock.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    with root.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        admin.commit()
    worker._presence._confirmed = 0.0  # its last confirmation is old: it must look again
    assert not worker._presence.holds()
    assert not worker._presence.holds()  # and stays fenced until it registers again
    with root.sessions.begin() as session:  # as if the worker had been gone a while
        session.execute(
            update(owners.WorkerRecord)
            .where(owners.WorkerRecord.name == "cut-off")
            .values(seen_at=utcnow() - timedelta(minutes=1))
        )
    other._presence.tend()  # its lock is free and its record old: rows taken back
    assert _held_by(root, "cut-off") == 0
    with root.sessions() as session:  # its record is gone; the rows are due, not yet claimed
        held = owners.held_by_dead(session, campaign_id)
    assert [(h.worker, h.rows, h.why) for h in held] == [("cut-off", 3, "")]
    assert "(it has ended)" in owners.lease_note(held[0], utcnow())
    assert worker._presence.tend() == "cut-off~1"  # registered again, a new lock
    assert worker._presence.holds()
    worker.close()
    other.close()
    root.close()
