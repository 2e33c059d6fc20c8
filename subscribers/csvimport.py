"""CSV import of subscribers (reading a file is `subscribers.csvformat`, writing one
`subscribers.csvexport`).

Import is all-or-nothing by default: every row is read and validated first, each
bad row reported with its line number, and only when none is bad are the changes
written, set-based (bulk INSERT / UPDATE in batches), inside the caller's
transaction. Duplicates inside the file and against the store are merged; running
the same import twice changes nothing the second time; an unsubscribed
subscription is never re-activated by an import.

One concern, kept whole although it is over 400 lines: `import_csv` is one pass
(read, validate, merge, write set-based) whose steps share the file's rows and the
store's current state; its helpers are the writes it makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from subscribers.base import utcnow
from subscribers.countries import default_timezone, normalise_country
from subscribers.csvformat import Row, decode, read_rows
from subscribers.errors import ImportRejected, Problem, StoreInputError
from subscribers.models import (
    MailingList,
    Partner,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from subscribers.validation import clean_name, email_hash

BATCH = 500
ANALYZE_AFTER = 5000  # rows written by one import


def _count(number: int, noun: str) -> str:
    """`1 invalid row`, `2 invalid rows`, `1 suppressed address`: the report reads as English."""
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


@dataclass
class ImportReport:
    """What an import did (or, with dry_run, would do)."""

    file: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    subscribed: int = 0
    kept_unsubscribed: int = 0
    suppressed_skipped: int = 0
    duplicates: list[tuple[int, int, str]] = field(default_factory=list)  # line, first line, email
    partners_created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # rows skipped by --skip-invalid
    dry_run: bool = False

    def summary(self) -> str:
        parts = [
            _count(self.rows, "row") + " read",
            _count(self.created, "subscriber") + " created",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
            _count(self.subscribed, "subscription") + " added",
        ]
        if self.duplicates:
            parts.append(_count(len(self.duplicates), "duplicate row") + " merged")
        if self.kept_unsubscribed:
            parts.append(f"{self.kept_unsubscribed} unsubscribed left as they were")
        if self.suppressed_skipped:
            parts.append(_count(self.suppressed_skipped, "suppressed address") + " skipped")
        if self.partners_created:
            parts.append(f"partners created: {', '.join(self.partners_created)}")
        if self.problems:
            parts.append(_count(len(self.problems), "invalid row") + " skipped")
        head = "dry run, nothing written: " if self.dry_run else ""
        return f"{head}{self.file}: " + "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "subscribed": self.subscribed,
            "kept_unsubscribed": self.kept_unsubscribed,
            "suppressed_skipped": self.suppressed_skipped,
            "duplicates": [
                {"line": line, "first_line": first, "email": email}
                for line, first, email in self.duplicates
            ],
            "partners_created": self.partners_created,
            "skipped": [str(p) for p in self.problems],
            "warnings": self.warnings,
        }


# --- importing --------------------------------------------------------------------------

SUBSCRIBERS = cast(Table, Subscriber.__table__)
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
_STORED_COLUMNS = (
    Subscriber.id,
    Subscriber.email_key,
    Subscriber.name,
    Subscriber.country,
    Subscriber.partner_id,
    Subscriber.language,
    Subscriber.timezone,
    Subscriber.status,
    Subscriber.attributes,
)


@dataclass(frozen=True, slots=True)
class _Stored:
    """The fields of a stored subscriber an import compares (plain values, not ORM objects)."""

    id: int
    email_key: str
    name: str
    country: str | None
    partner_id: int | None
    language: str
    timezone: str
    status: SubscriberStatus
    attributes: dict[str, Any]


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def import_csv(
    session: Session,
    source: Path | bytes,
    *,
    list_slug: str | None = None,
    partner: str | None = None,
    country: str | None = None,
    language: str = "en",
    encoding: str | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    create_partners: bool = False,
    name: str | None = None,
    consent_source: str | None = None,
) -> ImportReport:
    """Import subscribers from CSV into the caller's transaction (the caller commits).

    Every row goes on `list_slug` (if given) and on the lists in its own `lists`
    column. `partner` and `country` fill rows that have none. Raises
    `ImportRejected` (nothing written) when any row is bad, unless `skip_invalid`.
    """
    if isinstance(source, Path):
        name = name or str(source)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise StoreInputError(f"{source}: cannot read: {exc.strerror}") from None
    else:
        data = source
        name = name or "upload.csv"
    text = decode(data, name, encoding)
    existing: dict[str, _Stored] = {}
    looked_up: set[str] = set()

    def known_keys(keys: list[str]) -> set[str]:
        looked_up.update(keys)
        for chunk in _chunks(keys):
            query = select(*_STORED_COLUMNS).where(Subscriber.email_key.in_(chunk))
            for stored_row in session.execute(query):
                existing[stored_row.email_key] = _Stored(*stored_row)
        return set(existing)

    rows, problems, _columns = read_rows(text, name, known_keys)
    report = ImportReport(file=name, rows=len(rows) + len(problems), dry_run=dry_run)

    # Names given on the command line are checked before anything else.
    default_country = normalise_country(country) if country else None
    # Archived (removed) lists are offered nowhere: naming one is an unknown list.
    lists = {
        ml.slug: ml.id
        for ml in session.scalars(select(MailingList).where(MailingList.archived_at.is_(None)))
    }
    list_slug = list_slug.strip().lower() if list_slug is not None else None  # slugs are lower
    partners = {p.name.lower(): p for p in session.scalars(select(Partner))}
    if list_slug is not None and list_slug not in lists:
        raise StoreInputError(
            f"no list {list_slug!r} (lists: {', '.join(sorted(lists)) or 'none'})"
        )
    default_partner = clean_name(partner) if partner else None
    if default_partner and default_partner.lower() not in partners and not create_partners:
        raise StoreInputError(
            f"no partner {default_partner!r}: add it first (mailer partners add) "
            "or pass --create-partners"
        )

    # Merge duplicates inside the file (case-insensitive), checking names per row.
    merged: dict[str, Row] = {}
    new_partners: dict[str, tuple[str, str | None]] = {}  # key -> (name, country)
    for row in rows:
        unknown_lists = sorted(row.lists - set(lists))
        if unknown_lists:
            problems.append(Problem(name, row.line, "lists", f"unknown list(s) {unknown_lists}"))
            continue
        if row.partner and row.partner.lower() not in partners:
            if not create_partners:
                problems.append(
                    Problem(
                        name,
                        row.line,
                        "partner",
                        f"unknown partner {row.partner!r}: add it first (mailer partners add) "
                        "or pass --create-partners",
                    )
                )
                continue
            new_partners.setdefault(row.partner.lower(), (row.partner, row.country))
        first = merged.get(row.key)
        if first is None:
            merged[row.key] = row
        else:
            report.duplicates.append((row.line, first.line, row.email))
            first.merge(row)
    problems.sort(key=lambda p: p.line)
    if problems and not skip_invalid:
        raise ImportRejected(problems, rows=True)
    report.problems = problems
    if default_partner and default_partner.lower() not in partners:
        new_partners.setdefault(default_partner.lower(), (default_partner, None))

    # Partners named in the file (with --create-partners) are created first, in the
    # country of the first row naming them (or --country).
    report.partners_created = sorted(name for name, _ in new_partners.values())
    if not dry_run:
        for key, (partner_name, partner_country) in sorted(new_partners.items()):
            created = Partner(name=partner_name, country=partner_country or default_country)
            session.add(created)
            session.flush()
            partners[key] = created
    partner_ids = {key: p.id for key, p in partners.items()}
    if dry_run:  # stand-in ids, so rows naming a partner still to be created count as changed
        partner_ids.update({key: -n for n, key in enumerate(sorted(new_partners), start=1)})

    # What the store already holds, looked up in batches.
    keys = list(merged)
    for chunk in _chunks([key for key in keys if key not in looked_up]):
        query = select(*_STORED_COLUMNS).where(Subscriber.email_key.in_(chunk))
        for stored_row in session.execute(query):
            existing[stored_row.email_key] = _Stored(*stored_row)
    hashes = {email_hash(row.email): key for key, row in merged.items() if key not in existing}
    suppressed: set[str] = set()
    hash_list = list(hashes)
    for chunk in _chunks(hash_list):
        for digest in session.scalars(
            select(Suppression.email_hash).where(Suppression.email_hash.in_(chunk))
        ):
            suppressed.add(hashes[digest])
    report.suppressed_skipped = len(suppressed)

    now = utcnow()
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    for key, row in merged.items():
        if key in suppressed:
            continue
        partner_key = (row.partner or default_partner or "").lower()
        partner_id = partner_ids.get(partner_key) if partner_key else None
        stored = existing.get(key)
        if stored is None:
            code = row.country or default_country
            if code is None and partner_key in partners:
                code = partners[partner_key].country
            to_insert.append(
                {
                    "email": row.email,
                    "email_key": key,
                    "email_hash": email_hash(row.email),
                    "name": row.name or "",
                    "country": code,
                    "partner_id": partner_id,
                    "language": row.language or language,
                    "timezone": row.timezone or default_timezone(code),
                    "status": row.status or SubscriberStatus.ACTIVE,
                    "attributes": row.attributes,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        changes = _changes(stored, row, partner_id, default_country)
        if changes:
            changes.update(id=stored.id, updated_at=now)
            to_update.append(changes)
        else:
            report.unchanged += 1
    report.created = len(to_insert)
    report.updated = len(to_update)

    # Subscriptions: one per (subscriber, list) that does not exist in any state yet.
    new_status = {r["email_key"]: r["status"] for r in to_insert}
    ids: dict[str, int] = {key: s.id for key, s in existing.items()}
    current = _existing_subscriptions(session, list(ids.values()))
    to_subscribe: list[tuple[str, int]] = []
    for key, row in merged.items():
        if key in suppressed:
            continue
        known = existing.get(key)
        status = known.status if known is not None else new_status[key]
        for slug in sorted(({list_slug} if list_slug else set()) | row.lists):
            previous = current.get((ids[key], lists[slug])) if key in ids else None
            if previous is not None:
                if previous == SubscriptionStatus.UNSUBSCRIBED:
                    report.kept_unsubscribed += 1
            elif status != SubscriberStatus.ACTIVE:
                report.kept_unsubscribed += 1
            else:
                to_subscribe.append((key, lists[slug]))
    report.subscribed = len(to_subscribe)
    if list_slug is None and to_insert and not any(row.lists for row in merged.values()):
        report.warnings.append(
            "no list given (--list) and no lists column: new subscribers are on no list, "
            "so no campaign will reach them until they are subscribed"
        )
    if dry_run:
        return report

    # Core executemany without RETURNING (with it, SQLite inserts row by row and
    # psycopg spends its time parsing huge statements); the new ids are then read
    # back in one range scan above the highest id seen before.
    if to_insert:
        highest = session.scalar(select(func.max(Subscriber.id))) or 0
        _bulk_insert(session, SUBSCRIBERS, to_insert)
        new_keys = {values["email_key"] for values in to_insert}
        query = select(Subscriber.id, Subscriber.email_key).where(Subscriber.id > highest)
        for subscriber_id, key in session.execute(query):
            if key in new_keys:
                ids[key] = subscriber_id
    for chunk in _chunks(to_update):
        session.execute(update(Subscriber), chunk)
    source_label = (consent_source or f"import:{Path(name).name}")[:64]
    subscriptions = [
        {
            "subscriber_id": ids[key],
            "list_id": list_id,
            "status": SubscriptionStatus.ACTIVE,
            "consent_source": source_label,
            "consent_at": now,
            "consent_ip": None,
        }
        for key, list_id in to_subscribe
    ]
    _bulk_insert(session, SUBSCRIPTIONS, subscriptions)
    if len(to_insert) + len(subscriptions) > ANALYZE_AFTER and _dialect(session) == "postgresql":
        # Fresh planner statistics, or the next lookups by key scan the whole table.
        session.execute(sql("ANALYZE subscribers"))
        session.execute(sql("ANALYZE subscriptions"))
    session.flush()
    session.expire_all()
    return report


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows built by this module (same keys, plain values), fast.

    PostgreSQL: COPY, measured 2.7x faster (wall and CPU) than psycopg's pipelined
    executemany for 100,000 subscribers. Elsewhere Core executemany in batches
    (on SQLite, the driver's own executemany was no faster).
    """
    if not rows:
        return
    if _dialect(session) != "postgresql":
        for chunk in _chunks(rows):
            session.execute(insert(table), chunk)
        return
    columns = list(rows[0])
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([_copy_value(row[column]) for column in columns])


def _copy_value(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _changes(
    current: _Stored,
    row: Row,
    partner_id: int | None,
    default_country: str | None,
) -> dict[str, Any]:
    """Column -> new value for fields the file changes (empty cells change nothing)."""
    changes: dict[str, Any] = {}
    if row.name is not None and row.name != current.name:
        changes["name"] = row.name
    country = row.country or (None if current.country else default_country)
    if country is not None and country != current.country:
        changes["country"] = country
        if row.timezone is None and current.timezone == default_timezone(current.country):
            changes["timezone"] = default_timezone(country)
    if partner_id is not None and partner_id != current.partner_id:
        if row.partner is not None or current.partner_id is None:
            changes["partner_id"] = partner_id
    if row.language is not None and row.language != current.language:
        changes["language"] = row.language
    if row.timezone is not None and row.timezone != current.timezone:
        changes["timezone"] = row.timezone
    if row.attributes:
        merged = {**current.attributes, **row.attributes}
        if merged != current.attributes:
            changes["attributes"] = merged
    return changes


def _existing_subscriptions(
    session: Session, subscriber_ids: list[int]
) -> dict[tuple[int, int], SubscriptionStatus]:
    found: dict[tuple[int, int], SubscriptionStatus] = {}
    for chunk in _chunks(subscriber_ids):
        query = select(Subscription.subscriber_id, Subscription.list_id, Subscription.status)
        for subscriber_id, list_id, status in session.execute(
            query.where(Subscription.subscriber_id.in_(chunk))
        ):
            found[(subscriber_id, list_id)] = status
    return found
