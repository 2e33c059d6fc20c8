"""Several workers share one campaign: no duplicates, all sent.

On PostgreSQL claims use FOR UPDATE SKIP LOCKED; on SQLite each claim is one UPDATE
statement under SQLite's single write lock, so workers on one machine are safe too.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from mailer.delivery import campaigns, ledger, lifecycle
from mailer.delivery.campaigns import CampaignState
from mailer.delivery.dispatch import RecordingFailed
from mailer.delivery.ledger import LedgerRow, LedgerStatus
from subscribers import repository, suppression
from tests.smtpd import SMTPTestServer
from tests.test_delivery_send import add_recipients, delivery_root, seed_campaign


def test_two_workers_send_each_message_once(tmp_path: Path, database_url: str) -> None:
    with SMTPTestServer(delay=0.002) as server:
        root = delivery_root(tmp_path, database_url, server.port, worker_batch_size=7)
        with root.sessions.begin() as session:
            emails = add_recipients(session, 300)
        campaign_id = seed_campaign(root)
        workers = [root.worker(name=f"w{i}", idle_seconds=0.01) for i in range(2)]
        start = threading.Barrier(len(workers))
        errors: list[BaseException] = []

        def run(worker) -> None:
            start.wait()
            try:
                worker.run(threading.Event(), until_idle=True)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails)
    assert set(arrivals.values()) == {1}
    with root.sessions() as session:
        assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENT
        assert ledger.progress(session, campaign_id).sent == 300
        per_worker = dict(
            session.execute(select(LedgerRow.worker, func.count()).group_by(LedgerRow.worker)).all()
        )
    assert set(per_worker) == {"w0", "w1"}, per_worker  # both took part
    root.close()


def test_operator_pause_stops_a_running_batch(tmp_path: Path, database_url: str) -> None:
    with SMTPTestServer(delay=0.03) as server:
        root = delivery_root(
            tmp_path, database_url, server.port, smtp_connections=1, worker_batch_size=200
        )
        with root.sessions.begin() as session:
            emails = add_recipients(session, 100)
        campaign_id = seed_campaign(root)
        worker = root.worker(idle_seconds=0.01)
        batch = threading.Thread(target=worker.run_once)
        batch.start()
        assert server.wait_for(5)
        with root.sessions.begin() as session:
            lifecycle.pause(session, campaign_id, "typo in the subject")
        batch.join()
        stopped_at = server.count()
        assert stopped_at < 100  # the rest of the claimed batch was given back untried
        with root.sessions() as session:
            tally = ledger.progress(session, campaign_id)
            assert tally.sent == stopped_at and tally.pending == 100 - stopped_at
            rows = session.scalars(select(LedgerRow).where(LedgerRow.status == "queued")).all()
            assert {r.attempts for r in rows} == {0}
        with root.sessions.begin() as session:
            lifecycle.resume(session, campaign_id)
        worker.run(threading.Event(), until_idle=True)
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails) and set(arrivals.values()) == {1}
    root.close()


def test_stopping_a_worker_gives_the_rest_of_its_batch_back(
    tmp_path: Path, database_url: str
) -> None:
    """Ctrl-C or SIGTERM sent the whole claimed batch first (200 rows to a slow relay is
    minutes, past a service manager's stop timeout, and `mailer send` said 'interrupted'
    while it went on); now the rows not yet sent go back untried for the next worker."""
    with SMTPTestServer(delay=0.03) as server:
        root = delivery_root(
            tmp_path, database_url, server.port, smtp_connections=1, worker_batch_size=200
        )
        with root.sessions.begin() as session:
            emails = add_recipients(session, 100)
        campaign_id = seed_campaign(root)
        worker = root.worker(idle_seconds=0.01)
        stop = threading.Event()
        running = threading.Thread(target=worker.run, args=(stop,))
        running.start()
        assert server.wait_for(5)
        stop.set()
        running.join()
        stopped_at = server.count()
        assert stopped_at < 100
        with root.sessions() as session:
            tally = ledger.progress(session, campaign_id)
            assert tally.sent == stopped_at and tally.pending == 100 - stopped_at
            assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENDING
        root.worker(idle_seconds=0.01).run(threading.Event(), until_idle=True)  # no lease wait
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails) and set(arrivals.values()) == {1}
    root.close()


def test_unsubscribing_while_a_batch_goes_out_stops_the_messages_not_yet_sent(
    tmp_path: Path, database_url: str
) -> None:
    """The batch is claimed and going out (one connection, held by the server on the
    second message) when five people further down unsubscribe or are suppressed: their
    messages are never sent, and their rows say skipped and why. The worker looks again
    about once a second at the rows of its batch not yet begun."""
    with SMTPTestServer() as server:
        root = delivery_root(
            tmp_path, database_url, server.port, smtp_connections=1, worker_batch_size=50
        )
        with root.sessions.begin() as session:
            emails = add_recipients(session, 20)
        campaign_id = seed_campaign(root)
        gate = server.hold(emails[1])
        worker = root.worker(idle_seconds=0.01)
        running = threading.Thread(
            target=worker.run, args=(threading.Event(),), kwargs={"until_idle": True}
        )
        running.start()
        try:
            assert server.wait_for(1)  # the batch is claimed; the worker waits on emails[1]
            leaving = emails[10:15]
            with root.sessions.begin() as session:
                for email in leaving[:4]:
                    person = repository.get_subscriber(session, email)
                    repository.unsubscribe(session, person.id, source="one-click")
                suppression.suppress(session, leaving[4], "complaint")
            skipped = select(func.count()).where(LedgerRow.status == LedgerStatus.SKIPPED)
            deadline = time.monotonic() + 60  # a safety net: the worker looks every second
            while time.monotonic() < deadline:
                with root.sessions() as session:
                    if session.scalar(skipped) == 5:
                        break
                time.sleep(0.05)
        finally:
            gate.set()
            running.join()
        arrivals = server.arrivals()
    assert arrivals == Counter({email: 1 for email in emails if email not in leaving})
    with root.sessions() as session:
        rows = {r.email: r for r in session.scalars(select(LedgerRow))}
        assert {email for email, r in rows.items() if r.status == LedgerStatus.SKIPPED} == set(
            leaving
        )
        assert rows[leaving[0]].last_reply == (
            "skipped, not sent: the subscriber became unsubscribed after it was queued"
        )
        assert rows[leaving[4]].last_reply == (
            "skipped, not sent: the address was suppressed after it was queued"
        )
        tally = ledger.progress(session, campaign_id)
        assert (tally.sent, tally.skipped, tally.done) == (15, 5, 20)
        assert campaigns.get_campaign(session, campaign_id).state == CampaignState.SENT
    root.close()


def test_a_slow_batch_keeps_its_lease(tmp_path: Path, database_url: str) -> None:
    """A batch longer than the lease renews it: a second worker takes nothing from it."""
    # The batch takes at least 40 x 0.1 s, twice the lease; renewed every lease / 3,
    # the lease survives the batch thread being held up for over a second on a busy
    # machine (it was 0.6 s, renewed every 0.2 s).
    with SMTPTestServer(delay=0.1) as server:
        root = delivery_root(
            tmp_path,
            database_url,
            server.port,
            smtp_connections=1,
            worker_batch_size=40,
            worker_lease_seconds=2.0,
        )
        with root.sessions.begin() as session:
            add_recipients(session, 40)
        seed_campaign(root)
        slow, other = root.worker(name="slow"), root.worker(name="other")
        batch = threading.Thread(target=slow.run_once)
        batch.start()
        assert server.wait_for(1)  # the slow worker holds the whole batch now
        taken = 0
        while batch.is_alive():
            taken += len(other.claim())
            time.sleep(0.1)
        batch.join()
        other.close()
        assert taken == 0
        assert set(server.arrivals().values()) == {1} and server.count() == 40
    root.close()


def test_an_unexpected_error_retries_the_row_instead_of_losing_it(
    tmp_path: Path, database_url: str, monkeypatch
) -> None:
    with SMTPTestServer() as server:
        root = delivery_root(tmp_path, database_url, server.port)
        with root.sessions.begin() as session:
            emails = add_recipients(session, 5)
        campaign_id = seed_campaign(root)
        worker = root.worker()
        real = worker.template
        failures = iter([True])

        def flaky(cid: int, language: str | None = None):
            if next(failures, False):
                raise RuntimeError("a bug")
            return real(cid, language)

        monkeypatch.setattr(worker, "template", flaky)
        worker.run(threading.Event(), until_idle=True)
        worker.run(threading.Event(), until_idle=True)
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails) and set(arrivals.values()) == {1}
    with root.sessions() as session:
        attempts = sorted(r.attempts for r in session.scalars(select(LedgerRow)))
        assert attempts == [1, 1, 1, 1, 2]
        assert campaigns.get_campaign(session, campaign_id).state == "sent"
    root.close()


def test_the_recording_connection_goes_back_to_the_pool_as_it_came(
    tmp_path: Path, database_url: str
) -> None:
    """Outcomes are committed durably (synchronous_commit on); the recorder's prepared
    statement goes with it, so the pooled connections come back as they went."""
    with SMTPTestServer() as server:
        root = delivery_root(tmp_path, database_url, server.port)
        with root.sessions.begin() as session:
            add_recipients(session, 3)
        seed_campaign(root)
        root.worker().run(threading.Event(), until_idle=True)
    pooled = root.engine.pool.checkedin()  # type: ignore[attr-defined]
    connections = [root.engine.connect() for _ in range(pooled + 1)]
    try:
        if root.engine.dialect.name == "postgresql":
            settings = {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in connections}
            assert settings == {"on"}
            prepared = (
                "SELECT count(*) FROM pg_prepared_statements WHERE starts_with(name, 'ledger_')"
            )
            assert {c.exec_driver_sql(prepared).scalar() for c in connections} == {0}
        else:
            modes = {c.exec_driver_sql("PRAGMA journal_mode").scalar() for c in connections}
            assert modes == {"wal"}
    finally:
        for connection in connections:
            connection.close()
    root.close()


def test_stopping_a_worker_waiting_for_its_hourly_quota(tmp_path: Path, database_url: str) -> None:
    """The hourly limit is spent: stopping the worker gives the waiting rows back untried
    instead of hanging until the next hour."""
    with SMTPTestServer() as server:
        root = delivery_root(tmp_path, database_url, server.port, smtp_rate_per_hour=2)
        with root.sessions.begin() as session:
            add_recipients(session, 5)
        campaign_id = seed_campaign(root)
        worker = root.worker(idle_seconds=0.01)
        stop = threading.Event()
        running = threading.Thread(target=worker.run, args=(stop,))
        running.start()
        assert server.wait_for(2)
        stop.set()
        running.join(timeout=60)  # a safety net: without the interrupt this waits an hour
        assert not running.is_alive()
        assert server.count() == 2
    with root.sessions() as session:
        tally = ledger.progress(session, campaign_id)
        assert (tally.sent, tally.pending) == (2, 3)
        rows = session.scalars(select(LedgerRow).where(LedgerRow.status == "queued")).all()
        assert {r.attempts for r in rows} == {0}
    root.close()


def test_a_database_failure_while_recording_stops_the_worker_and_loses_nothing(
    tmp_path: Path, database_url: str
) -> None:
    with SMTPTestServer() as server:
        root = delivery_root(
            tmp_path, database_url, server.port, worker_batch_size=30, worker_lease_seconds=0.5
        )
        with root.sessions.begin() as session:
            emails = add_recipients(session, 30)
        campaign_id = seed_campaign(root)
        broken = root.worker(name="broken")
        real_write = broken._write
        writes = iter(range(3))

        def failing(outcomes):
            if next(writes, None) is None:
                raise OperationalError(
                    "UPDATE ledger", {}, Exception("server closed the connection")
                )
            real_write(outcomes)

        broken._write = failing  # type: ignore[method-assign]
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                broken.run_once()
            except RecordingFailed as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=60)  # a safety net: a worker that hangs here is the bug
        assert not thread.is_alive() and outcome
        assert "cannot record outcomes" in str(outcome[0])
        broken.close()
        healthy = root.worker(name="healthy", idle_seconds=0.05)
        for _ in range(100):
            healthy.run(threading.Event(), until_idle=True)
            with root.sessions() as session:
                if ledger.progress(session, campaign_id).finished:
                    break
            time.sleep(0.1)  # rows of the broken worker come back when their lease expires
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails)
    duplicates = sum(n - 1 for n in arrivals.values())
    assert duplicates <= root.settings.smtp_connections
    root.close()


def test_the_worker_rides_out_a_database_hiccup(tmp_path: Path, database_url: str) -> None:
    with SMTPTestServer() as server:
        root = delivery_root(tmp_path, database_url, server.port)
        with root.sessions.begin() as session:
            emails = add_recipients(session, 8)
        campaign_id = seed_campaign(root)
        worker = root.worker(idle_seconds=0.01)
        real_claim = worker.claim
        hiccups = iter(range(2))

        def flaky_claim(limit: int | None = None):
            if next(hiccups, None) is not None:
                raise OperationalError(
                    "SELECT", {}, Exception("the database system is starting up")
                )
            return real_claim(limit)

        worker.claim = flaky_claim  # type: ignore[method-assign]
        worker.run(threading.Event(), until_idle=True)
        arrivals = server.arrivals()
    assert set(arrivals) == set(emails) and set(arrivals.values()) == {1}
    with root.sessions() as session:
        assert campaigns.get_campaign(session, campaign_id).state == "sent"
    root.close()
