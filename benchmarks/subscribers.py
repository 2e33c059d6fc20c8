"""Benchmark of the subscriber store: CSV import and audience selection.

    .venv/bin/python -m benchmarks.subscribers [--rows 100000] [--small 10000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--skip-postgres]

For each database (a fresh SQLite file; a fresh PostgreSQL schema, dropped after):
- import a generated CSV of `--rows` rows (names in six scripts, 24 partners, two
  lists) in one transaction, and re-import it (idempotent: nothing changes);
- stream an audience of every subscriber (`--rows` recipients) and one of
  `--small` recipients, timing each and measuring the Python heap peak with
  tracemalloc, to show memory stays flat as the audience grows.
Targets (DESIGN.md): import 100,000 rows under 10 s on SQLite; select a 100,000
audience under 1 s with flat memory. The reference line (csv.reader plus
validate_email over the same file, nothing stored) is the floor any validating
importer pays, to read the import time as a ratio on a busy machine. Run it with
-m from the checkout: as a script, this file would shadow the `subscribers` package.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from email_validator import validate_email
from sqlalchemy import Engine, create_engine, text

from mailer import db
from subscribers.audience import Audience, count_audience, iter_audience
from subscribers.csvimport import import_csv
from subscribers.mailing_lists import add_list

GIVEN = {
    "CN": ["王", "李", "张", "刘", "陈"],
    "KH": ["សុខ", "ចាន់", "ហេង", "គឹម"],
    "LA": ["ສົມພອນ", "ບຸນມີ", "ຄຳຫຼ້າ"],
    "MM": ["အောင်", "ကျော်", "မင်း"],
    "TH": ["สมชาย", "สุดารัตน์", "วิชัย"],
    "VN": ["Nguyễn", "Trần", "Lê", "Phạm"],
}


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    countries = list(GIVEN)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "country", "partner", "lists"])
        for i in range(rows):
            country = countries[i % len(countries)]
            name = " ".join(rng.choice(GIVEN[country]) for _ in range(2)) + f" {i}"
            partner = f"Partner {country} {(i // 12) % 4}" if (i // 6) % 2 else ""
            lists = "newsletter;partners-only" if partner else "newsletter"
            writer.writerow([f"person{i}@example.org", name, country, partner, lists])


@contextmanager
def database(kind: str, workdir: Path, postgres: str) -> Iterator[Engine]:
    if kind == "sqlite":
        engine = db.make_engine(f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}")
        db.upgrade(engine)
        yield engine
        engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(db.normalise_url(postgres))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{db.normalise_url(postgres)}?options={quote(f'-csearch_path={schema}')}"
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def timed_import(engine: Engine, path: Path) -> tuple[float, str]:
    sessions = db.session_factory(engine)
    start = time.perf_counter()
    with sessions.begin() as session:
        report = import_csv(session, path, create_partners=True)
    return time.perf_counter() - start, report.summary()


def timed_audience(engine: Engine) -> tuple[float, float, int, int]:
    """Streaming seconds, seconds to count it in SQL, rows, and the tracemalloc peak.

    The peak comes from a second pass: tracemalloc slows every allocation, so the
    timed pass runs without it.
    """
    sessions = db.session_factory(engine)
    audience = Audience(lists=("newsletter",))
    with sessions() as session:
        start = time.perf_counter()
        count = sum(1 for _row in iter_audience(session, audience, batch_size=1000))
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        assert count_audience(session, audience) == count
        in_sql = time.perf_counter() - start
        tracemalloc.start()
        for _row in iter_audience(session, audience, batch_size=1000):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, in_sql, count, peak


def reference(path: Path) -> float:
    """The floor for any validating importer: csv.reader + validate_email, nothing stored."""
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            validate_email(row[0], check_deliverability=False)
    return time.perf_counter() - start


def run(kind: str, rows: int, small: int, workdir: Path, postgres: str) -> list[str]:
    big_csv = workdir / f"subscribers-{rows}.csv"
    small_csv = workdir / f"subscribers-{small}.csv"
    lines = []
    for size, path in ((rows, big_csv), (small, small_csv)):
        with database(kind, workdir, postgres) as engine:
            with db.session_factory(engine).begin() as session:
                add_list(session, "newsletter")
                add_list(session, "partners-only")
            seconds, summary = timed_import(engine, path)
            lines.append(f"{kind}: import {size:,} rows: {seconds:.2f} s ({summary})")
            again, summary = timed_import(engine, path)
            lines.append(f"{kind}: re-import {size:,} rows (no change): {again:.2f} s")
            timed_audience(engine)  # warm caches
            seconds, in_sql, count, peak = timed_audience(engine)
            lines.append(
                f"{kind}: audience of {count:,}: streamed {seconds:.3f} s, "
                f"counted in SQL {in_sql:.3f} s, tracemalloc peak {peak / 1024:.0f} KiB"
            )
            print("\n".join(lines[-3:]), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        make_csv(workdir / f"subscribers-{args.rows}.csv", args.rows)
        make_csv(workdir / f"subscribers-{args.small}.csv", args.small)
        floor = reference(workdir / f"subscribers-{args.rows}.csv")
        print(f"reference: csv.reader + validate_email of {args.rows:,} rows: {floor:.2f} s")
        kinds = ["sqlite"] if args.skip_postgres else ["sqlite", "postgresql"]
        for kind in kinds:
            run(kind, args.rows, args.small, workdir, args.postgres)
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
