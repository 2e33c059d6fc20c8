"""A batch's leases while it goes out: renewed in time, and rows lost noticed before sending.

Apart from the send loop (mailer.delivery.dispatch) because it is its own concern,
timing against the lease, and talks to the loop only through the three callables it
is given (renew the rows, check the campaigns, re-check who left).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from mailer.delivery.ledger import Job

log = logging.getLogger(__name__)


class LeaseKeeper:
    """As the batch goes: renew its leases every third of the lease, and about once a
    second look at its campaigns' states and at who of its waiting rows left.

    A worker that stalled past its lease (stopped, suspended, starved) may find some
    rows taken by another worker meanwhile: `holds` renews before a message goes out
    once half the lease has passed, and rows no longer ours are dropped, not sent.
    """

    def __init__(
        self,
        lease_seconds: float,
        ids: list[int],
        campaign_ids: list[int],
        waiting: deque[Job],
        *,
        renew: Callable[[list[int]], set[int]],
        check: Callable[[list[int]], None],
        recheck: Callable[[deque[Job]], None],
    ) -> None:
        self.ids = ids
        self.campaign_ids = campaign_ids
        self.waiting = waiting
        self.lease = lease_seconds
        self._renew_rows = renew  # the rows still ours, their leases extended
        self._check = check  # notes campaigns paused or cancelled meanwhile
        self._recheck = recheck  # drops waiting rows whose person left
        self.check_every = min(1.0, self.lease / 3)
        self.renewed = self.checked = time.monotonic()
        self.lost: set[int] = set()  # rows of the batch that are no longer ours

    def add(self, jobs: list[Job]) -> None:
        """Keep the leases of rows claimed into the batch as it goes, too."""
        if not jobs:
            return
        self.ids = sorted({*self.ids, *(job.row_id for job in jobs)})
        self.campaign_ids = sorted({*self.campaign_ids, *(job.campaign_id for job in jobs)})

    def tend(self) -> None:
        now = time.monotonic()
        if now - self.checked < self.check_every:
            return
        self.checked = now
        self._check(self.campaign_ids)
        self._recheck(self.waiting)
        if now - self.renewed >= self.lease / 3:
            self._renew(now)

    def _renew(self, now: float) -> None:
        try:
            kept = self._renew_rows(self.ids)
        except SQLAlchemyError as exc:
            log.warning("could not renew leases: %s", exc)
            return
        self.renewed = now
        gone = set(self.ids) - kept  # recorded since, or taken by another worker
        if not gone:
            return
        self.ids = sorted(kept)
        self.lost |= gone
        taken = [job for job in self.waiting if job.row_id in gone]
        if taken:
            log.warning("%d row(s) of this batch were taken by another worker", len(taken))
            kept_jobs = [job for job in self.waiting if job.row_id not in gone]
            self.waiting.clear()
            self.waiting.extend(kept_jobs)

    def holds(self, job: Job) -> bool:
        """Is `job`'s row still ours by a lease that has surely not run out?"""
        now = time.monotonic()
        if now - self.renewed >= self.lease / 2 and now - self.checked >= self.check_every:
            self.checked = now
            self._renew(now)
        return job.row_id not in self.lost and time.monotonic() - self.renewed < self.lease * 0.9
