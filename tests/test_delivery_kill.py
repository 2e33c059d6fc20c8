"""The kill test: SIGKILL a worker process at random moments; nobody is missed or doubled.

A `mailer worker` subprocess sends to a slow aiosmtpd server in this process. It is
killed with SIGKILL several times while messages are on the wire, and restarted;
rows a dead worker held come back when their (short) lease expires. At the end
every recipient has the issue, and the duplicates are at most one per open
connection per kill (a message the server accepted just before the kill, whose
outcome the worker could not record).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailer.delivery import campaigns, ledger
from mailer.delivery.campaigns import CampaignState
from tests.smtpd import SMTPTestServer
from tests.test_delivery_send import add_recipients, delivery_root, seed_campaign
from tests.waiting import LIMIT

CONNECTIONS = 2
KILLS = 4
RECIPIENTS = 160


def start_worker(tmp_path: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": database_url,
        "MAILER_DATA_DIR": str(tmp_path / "data"),
        "MAILER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "MAILER_PUBLIC_BASE_URL": "https://news.example.org",
        "MAILER_SMTP_PORT": str(port),
        "MAILER_SMTP_CONNECTIONS": str(CONNECTIONS),
        "MAILER_WORKER_LEASE_SECONDS": "1",
        "MAILER_WORKER_BATCH_SIZE": "10",
        "MAILER_RETRY_BASE_SECONDS": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from mailer.cli.main import main; main()", "worker"],
        cwd=tmp_path,  # no .env here: settings come from the environment above
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(condition, what: str, limit: float = LIMIT) -> None:
    """Poll a condition (a safety net against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, database_url: str) -> None:
    rng = random.Random(os.environ.get("KILL_SEED", "lmec"))
    with SMTPTestServer(delay=0.03) as server:
        root = delivery_root(tmp_path, database_url, server.port)
        with root.sessions.begin() as session:
            emails = add_recipients(session, RECIPIENTS)
        campaign_id = seed_campaign(root)
        kills = 0
        for _ in range(KILLS):
            before = server.count()
            worker = start_worker(tmp_path, database_url, server.port)
            # Kill only once this process is sending, at a random moment after that.
            wait_until(lambda: server.count() > before + 3, "the worker to send")  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.4))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
        assert server.count() < RECIPIENTS, "the kills came too late to test anything"
        worker = start_worker(tmp_path, database_url, server.port)
        try:

            def finished() -> bool:
                with root.sessions() as session:
                    state = campaigns.get_campaign(session, campaign_id).state
                return state == CampaignState.SENT

            wait_until(finished, "the campaign to finish")
        finally:
            worker.terminate()
            _, stderr = worker.communicate(timeout=30)
        assert worker.returncode == 0, stderr.decode()
        arrivals = server.arrivals()

    missing = set(emails) - set(arrivals)
    assert not missing
    duplicates = sum(count - 1 for count in arrivals.values())
    assert duplicates <= kills * CONNECTIONS, arrivals.most_common(10)
    with root.sessions() as session:
        tally = ledger.progress(session, campaign_id)
        assert (tally.sent, tally.failed, tally.total) == (RECIPIENTS, 0, RECIPIENTS)
    root.close()
