"""Reading the ledger: progress and the per-country / partner / time-zone / language report,
the failed rows for the CSV, and "did this person get it?".

Every count is one grouped query over an index (`ix_ledger_due`, `ix_ledger_report`),
so pages that refresh while 100,000 rows are sent stay cheap.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Exists, SQLColumnExpression, exists, func, select
from sqlalchemy.orm import Session

from mailer.delivery.ledger.rows import LEDGER, OPEN_STATUSES, LedgerRow, LedgerStatus


@dataclass(frozen=True)
class Tally:
    """Counts of one group of rows (a whole campaign, a country, a partner, a time zone)."""

    key: str
    total: int = 0
    sent: int = 0
    pending: int = 0  # queued or being sent
    retrying: int = 0
    failed: int = 0

    @property
    def skipped(self) -> int:
        """Rows never sent because the person left after they were queued: every row
        in none of the other counts."""
        return self.total - self.sent - self.pending - self.retrying - self.failed

    @property
    def done(self) -> int:
        """Rows settled: sent, failed or skipped."""
        return self.total - self.pending - self.retrying

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.retrying == 0


def _tallies(rows: Iterable[tuple[str, str, int]]) -> dict[str, Tally]:
    """Tallies per key from (key, status, count) rows, the grouped counts below."""
    counts: dict[str, dict[str, int]] = {}
    for key, status, count in rows:
        per_status = counts.setdefault(key, {})
        per_status[status] = per_status.get(status, 0) + int(count)
    return {key: _tally(key, per_status) for key, per_status in counts.items()}


def _tally(key: str, counts: Mapping[str, int]) -> Tally:
    return Tally(
        key,
        total=sum(counts.values()),
        sent=counts.get(LedgerStatus.SENT, 0),
        pending=counts.get(LedgerStatus.QUEUED, 0) + counts.get(LedgerStatus.SENDING, 0),
        retrying=counts.get(LedgerStatus.RETRY, 0),
        failed=counts.get(LedgerStatus.FAILED, 0),
    )


def status_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Rows per status, counted on the index `ix_ledger_due` (campaign, status, …)."""
    rows = session.execute(
        select(LedgerRow.status, func.count())
        .where(LedgerRow.campaign_id == campaign_id)
        .group_by(LedgerRow.status)
    )
    return {str(status): int(count) for status, count in rows}


def open_counts(session: Session, campaign_id: int) -> Tally:
    """Rows still to send (queued, sending, retrying), read from `ix_ledger_due` ranges of
    those statuses only: what a poll needs to notice progress, at a cost that shrinks
    as the campaign completes (sent and failed rows are not read)."""
    rows = session.execute(
        select(LedgerRow.status, func.count())
        .where(
            LedgerRow.campaign_id == campaign_id,
            LedgerRow.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .group_by(LedgerRow.status)
    )
    return _tally("open", {str(status): int(count) for status, count in rows})


def progress(session: Session, campaign_id: int) -> Tally:
    """Where a campaign stands, in one grouped count read from an index."""
    return _tally("all", status_counts(session, campaign_id))


def progress_of(session: Session, campaign_ids: Collection[int]) -> dict[int, Tally]:
    """`progress` of several campaigns in one query (the campaign list)."""
    if not campaign_ids:
        return {}
    rows = session.execute(
        select(LedgerRow.campaign_id, LedgerRow.status, func.count())
        .where(LedgerRow.campaign_id.in_(sorted(campaign_ids)))
        .group_by(LedgerRow.campaign_id, LedgerRow.status)
    )
    tallies = _tallies((str(cid), str(status), int(n)) for cid, status, n in rows)
    return {int(key): tally for key, tally in tallies.items()}


@dataclass(frozen=True)
class Report:
    """Totals and the same counts per country, partner and time zone (the scheduler's waves)."""

    campaign_id: int
    total: Tally
    by_country: list[Tally] = field(default_factory=list)
    by_partner: list[Tally] = field(default_factory=list)
    by_timezone: list[Tally] = field(default_factory=list)
    by_language: list[Tally] = field(default_factory=list)  # the recipients' languages


def report(session: Session, campaign_id: int) -> Report:
    """Every breakdown from one grouped count over the covering index `ix_ledger_report`
    (campaign, country, partner, zone, status): a few hundred groups, no table rows read,
    so a page that refreshes while 100,000 rows are sent stays cheap."""
    rows = session.execute(
        select(
            LedgerRow.country,
            LedgerRow.partner_id,
            LedgerRow.timezone,
            LedgerRow.status,
            func.count(),
        )
        .where(LedgerRow.campaign_id == campaign_id)
        .group_by(LedgerRow.country, LedgerRow.partner_id, LedgerRow.timezone, LedgerRow.status)
    ).all()

    def grouped(index: int) -> list[Tally]:
        keyed = (("" if row[index] is None else str(row[index]), row[3], row[4]) for row in rows)
        return [tally for _, tally in sorted(_tallies(keyed).items())]

    return Report(
        campaign_id=campaign_id,
        total=_tally("all", _sum_by_status(rows)),
        by_country=grouped(0),
        by_partner=sorted(grouped(1), key=lambda t: (t.key == "", int(t.key or 0))),
        by_timezone=grouped(2),
        by_language=by_language(session, campaign_id),
    )


def by_language(session: Session, campaign_id: int) -> list[Tally]:
    """Counts per recipient language ("" for none), one grouped count over the covering
    index `ix_ledger_language` (campaign, language, status)."""
    rows = session.execute(
        select(LedgerRow.language, LedgerRow.status, func.count())
        .where(LedgerRow.campaign_id == campaign_id)
        .group_by(LedgerRow.language, LedgerRow.status)
    )
    keyed = (("" if lang is None else str(lang), str(status), int(n)) for lang, status, n in rows)
    return [tally for _, tally in sorted(_tallies(keyed).items())]


def _sum_by_status(rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for *_keys, status, count in rows:
        totals[str(status)] = totals.get(str(status), 0) + int(count)
    return totals


def failures(session: Session, campaign_id: int, chunk: int = 1000) -> Iterator[LedgerRow]:
    """Failed rows of a campaign, streamed in id order (for the CSV export)."""
    last = 0
    while True:
        rows: Sequence[LedgerRow] = session.scalars(
            select(LedgerRow)
            .where(
                LedgerRow.campaign_id == campaign_id,
                LedgerRow.status == LedgerStatus.FAILED,
                LedgerRow.id > last,
            )
            .order_by(LedgerRow.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def deliveries_to(session: Session, email: str) -> list[LedgerRow]:
    """Every ledger row for an address, newest campaign first: "did this person get it?"."""
    return list(
        session.scalars(
            select(LedgerRow)
            .where(func.lower(LedgerRow.email) == email.strip().lower())
            .order_by(LedgerRow.campaign_id.desc())
        )
    )


def unsettled(session: Session, campaign_id: int, limit: int = 200) -> list[LedgerRow]:
    """The campaign's failed rows, then those waiting to be retried, oldest first (the
    campaign page's list of problems)."""
    return list(
        session.scalars(
            select(LedgerRow)
            .where(
                LedgerRow.campaign_id == campaign_id,
                LedgerRow.status.in_([LedgerStatus.FAILED.value, LedgerStatus.RETRY.value]),
            )
            .order_by(LedgerRow.status, LedgerRow.id)
            .limit(limit)
        )
    )


def has_open_rows(campaign_id: SQLColumnExpression[int]) -> Exists:
    """A condition for a query over campaigns: the campaign still has rows to send."""
    return exists().where(
        LEDGER.c.campaign_id == campaign_id,
        LEDGER.c.status.in_([s.value for s in OPEN_STATUSES]),
    )


def holders(session: Session, campaign_id: int) -> list[tuple[str | None, int, Any]]:
    """Who holds the campaign's rows being sent: (worker, rows, latest lease end)."""
    return [
        (worker, int(count), until)
        for worker, count, until in session.execute(
            select(LedgerRow.worker, func.count(), func.max(LedgerRow.lease_until))
            .where(
                LedgerRow.campaign_id == campaign_id,
                LedgerRow.status == LedgerStatus.SENDING.value,
            )
            .group_by(LedgerRow.worker)
        )
    ]
