"""The failed recipients of a campaign as CSV: one writer for `mailer campaign report
--failures-csv` and the web app's `/campaigns/{id}/failures.csv`.

The file is opened in a spreadsheet to follow up by hand, and names and SMTP replies
come from outside (a subscriber's name, a remote server's text): a cell starting with
`=`, `+`, `-`, `@`, a tab or a CR would run as a formula, so every text cell goes
through the subscriber export's `neutralise`, whichever way the file is made.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Protocol

from subscribers.csvformat import neutralise

HEADER = ("email", "name", "country", "attempts", "last_reply")


class FailedRow(Protocol):
    """What the CSV needs of a ledger row (`mailer.delivery.ledger.LedgerRow` has it)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_reply(self) -> str | None: ...


class _Writable(Protocol):
    def write(self, text: str, /) -> int: ...


def write_failures(handle: _Writable, rows: Iterable[FailedRow]) -> int:
    """Write the header and one line per failed row to `handle`; the number of rows."""
    writer = csv.writer(handle)
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(
            [
                neutralise(row.email),
                neutralise(row.name or ""),
                neutralise(row.country or ""),
                row.attempts,
                neutralise(row.last_reply or ""),
            ]
        )
        count += 1
    return count
