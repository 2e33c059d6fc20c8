"""Several workers share one campaign on PostgreSQL: SKIP LOCKED claims, no duplicates."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer import campaigns, ledger
from mailer.campaigns import CampaignState
from mailer.ledger import LedgerRow
from tests.smtpd import SMTPTestServer
from tests.test_delivery_send import add_recipients, delivery_root, seed_campaign


def test_two_workers_on_postgresql_send_each_message_once(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL (SQLite runs one worker)")
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
