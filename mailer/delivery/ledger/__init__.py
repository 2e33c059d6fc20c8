"""The delivery ledger: one row per (campaign, subscriber), the record of who got what,
and the only code that reads or writes it in SQL (`tests/test_architecture.py`).

- `rows`: the table, its statuses and indexes;
- `enqueuing`: the audience into the ledger, one INSERT … SELECT when sending starts;
- `claims`: a worker's hold on rows (claim, lease renewal, release, skip);
- `outcomes`: sent / retry / failed and suppressions, recorded in groups;
- `withdrawn`: who of the claimed rows left after they were queued;
- `people`: a later bounce, an erasure;
- `store`: all of that as the delivery worker's store (`store.SqlLedger`; not
  imported here, as it reads the campaigns, which import this package);
- `reports`: progress, the per-country / partner / time-zone report, failures.

Everything else (the worker, the campaign pages, the CLI, the scheduler) goes through
the functions exported here.
"""

from mailer.delivery.ledger.claims import Job, retry_now, take_back
from mailer.delivery.ledger.enqueuing import AUDIENCE_COLUMNS, enqueue
from mailer.delivery.ledger.outcomes import Outcome
from mailer.delivery.ledger.people import count_of_person, forget, mark_bounced
from mailer.delivery.ledger.reports import (
    Report,
    Tally,
    deliveries_to,
    failures,
    has_open_rows,
    holders,
    open_counts,
    progress,
    progress_of,
    report,
    status_counts,
    unsettled,
)
from mailer.delivery.ledger.rows import OPEN_STATUSES, AnySelect, LedgerRow, LedgerStatus

__all__ = [
    "AUDIENCE_COLUMNS",
    "OPEN_STATUSES",
    "AnySelect",
    "Job",
    "LedgerRow",
    "LedgerStatus",
    "Outcome",
    "Report",
    "Tally",
    "count_of_person",
    "deliveries_to",
    "enqueue",
    "failures",
    "forget",
    "has_open_rows",
    "holders",
    "mark_bounced",
    "open_counts",
    "progress",
    "progress_of",
    "report",
    "retry_now",
    "status_counts",
    "take_back",
    "unsettled",
]
