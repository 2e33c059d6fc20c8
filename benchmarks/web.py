"""Staff pages at scale: median and p95 of every signed-in GET page, SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.web [--subscribers 100000] [--repeat 20]
        [--db sqlite,postgresql] [--only /campaigns ...]

For each database (a fresh SQLite file; a fresh PostgreSQL schema, dropped after):
`--subscribers` active subscribers in the six countries and 24 partners on one list
(bulk inserts, as benchmarks/send.py builds them), a campaign to all of them whose
ledger holds one row each, part way through sending (70% sent, 2% failed, 1%
retrying, the rest queued), and a second campaign scheduled at 09:00 local time
(one pending wave per zone). Then the app is driven in process through Starlette's
TestClient, signed in as an admin: every GET route of mailer/web/*.py that answers
an anonymous client with a redirect to the login page (that is, every staff page) is
asked for `--repeat` times after two warm-up requests; CSV downloads `--repeat-csv`
times. Target (DESIGN.md): every staff page under 100 ms median on both databases.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import insert, text, update

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.send import drop_database, fresh_database, make_campaign, populate  # noqa: E402
from mailer.authoring.importer import import_file  # noqa: E402
from mailer.compose import Root, build  # noqa: E402
from mailer.delivery import lifecycle  # noqa: E402
from mailer.delivery.ledger import LedgerRow  # noqa: E402
from mailer.drafts.store import create_draft, save_draft  # noqa: E402
from mailer.people.accounts import Accounts  # noqa: E402
from mailer.schedule import plan  # noqa: E402
from mailer.schedule.waves import parse_wall_time  # noqa: E402
from mailer.settings import load_settings  # noqa: E402
from mailer.web.app import create_app  # noqa: E402
from subscribers.models import Partner, Subscriber  # noqa: E402

PASSWORD = "a long benchmark password"
ADMIN = "admin@lmec.example.org"
PARTNERS = 24


def build_data(root: Root, count: int) -> dict[str, str]:
    """Subscribers, partners, a half-sent 100% campaign and a local-time scheduled one;
    returns the values for the routes' path parameters."""
    populate(root, count)
    codes = ["CN", "KH", "LA", "MM", "TH", "VN"]
    with root.sessions.begin() as session:
        session.execute(
            insert(Partner),
            [
                {"id": n + 1, "name": f"Partner {codes[n % 6]} {n}", "country": codes[n % 6]}
                for n in range(PARTNERS)
            ],
        )
        session.execute(update(Subscriber).values(partner_id=Subscriber.id % PARTNERS + 1))
    sending = make_campaign(root)
    lifecycle.start_sending(root.sessions, sending)
    with root.sessions.begin() as session:
        now = datetime.now(UTC)
        for status, condition, reply in (
            ("sent", LedgerRow.id % 100 < 70, "250 2.0.0 Ok"),
            ("failed", (LedgerRow.id % 100 >= 70) & (LedgerRow.id % 100 < 72), "550 5.1.1 no"),
            ("retry", LedgerRow.id % 100 == 72, "451 4.3.0 try later"),
        ):
            session.execute(
                update(LedgerRow)
                .where(LedgerRow.campaign_id == sending, condition)
                .values(status=status, attempts=1, last_reply=reply, sent_at=now)
            )
    scheduled = make_campaign(root)
    with root.sessions.begin() as session:
        plan.schedule(
            session, scheduled, parse_wall_time(f"{now.year + 1}-01-15 09:00"), local_time=True
        )
    draft = make_campaign(root)  # a campaign in state draft, for its edit page
    # A draft document (the browser editor's), from Issue 15, with two revisions.
    issue15 = import_file(REPO / "examples" / "issues" / "2022-15.yaml", root.profile)
    with root.sessions.begin() as session:
        document = create_draft(session, issue15.document, author_id=None, now=datetime.now(UTC))
        retitled = {**issue15.document, "title": issue15.document["title"] + " (revised)"}
        save_draft(
            session,
            document.id,
            retitled,
            base_version=document.version,
            author_id=None,
            now=datetime.now(UTC),
            autosave=False,
        )
    # What autovacuum does after a bulk change on PostgreSQL (the visibility map lets
    # counts be read from indexes alone); statistics for SQLite's planner.
    vacuum = "VACUUM ANALYZE" if root.engine.dialect.name == "postgresql" else "ANALYZE"
    with root.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(vacuum))
    return {
        "campaign_id": str(sending),
        "campaign_draft_id": str(draft),
        "draft_id": str(document.id),
        "number": "1",
        "key": "2022-15",
        "subscriber_id": "1",
        "partner_id": "1",
        "slug": "newsletter",
        "user_id": "2",  # the editor signed_in adds after the admin (user 1)
    }


def signed_in(root: Root) -> tuple[TestClient, TestClient]:
    """An admin's client and an anonymous one (to tell staff pages from public ones)."""
    accounts = Accounts(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app = create_app(root, accounts=accounts)
    with root.sessions.begin() as session:
        accounts.create_user(session, ADMIN, PASSWORD, role="admin", name="Admin")
        accounts.create_user(session, "ed@lmec.example.org", PASSWORD, role="editor", name="Ed")
    base = root.settings.public_base_url
    http = TestClient(app, base_url=base, follow_redirects=False)
    page = http.get("/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = http.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return http, TestClient(app, base_url=base, follow_redirects=False)


# Pages of signing in that a signed-in admin is sent on from; and previews that exist
# only after the editor's last check made them.
SIGN_IN_STEPS = {"/login/code", "/login/recovery"}


def staff_paths(http: TestClient, anonymous: TestClient, values: dict[str, str]) -> list[str]:
    paths = []
    routes = [
        route
        for module in sorted((REPO / "mailer" / "web").glob("*.py"))
        for route in getattr(
            importlib.import_module(f"mailer.web.{module.stem}"), "router", APIRouter()
        ).routes
    ]
    for route in routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        path = route.path
        if path.endswith("{token}.html") or path in SIGN_IN_STEPS:
            continue
        if path.startswith("/campaigns/") and path.endswith("/edit"):  # a draft campaign's
            path = path.replace("{campaign_id:int}", values["campaign_draft_id"])
        for name, value in values.items():
            path = path.replace(f"{{{name}:int}}", value).replace(f"{{{name}}}", value)
        unknown = "{" in path
        answer = anonymous.get(re.sub(r"\{[^}]*\}", "1", path))
        if answer.status_code in (302, 303, 307) and "/login" in answer.headers["location"]:
            if unknown:
                raise SystemExit(f"no value for a parameter of the staff page {route.path}")
            if path in paths:  # a router gathered into another one lists it again
                continue
            if http.get(path).status_code in (302, 303, 307):
                # a step that needs state these data lack (a second factor to reset)
                print(f"skipped {path}: it sends this admin elsewhere", flush=True)
                continue
            paths.append(path)
    return paths


Figures = tuple[float, float, float, int]


def measure(http: TestClient, path: str, repeat: int) -> Figures:
    """Median and p95 wall time in ms, the median CPU time of this process in ms (the app
    and SQLite run in it: on a busy machine it is close to what a quiet one takes), and
    the size of the answer."""
    for _ in range(2):
        http.get(path)
    times, cpu = [], []
    size = 0
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        answer = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        size = len(answer.content)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, statistics.median(cpu), size


def run(
    kind: str, count: int, repeat: int, repeat_csv: int, workdir: Path, only: list[str]
) -> dict[str, Figures]:
    database = fresh_database(kind, workdir)
    settings = load_settings(
        env_file=None,
        database_url=database.url,
        data_dir=workdir / "data",
        secret_key="bench-secret-0123456789abcdef0123456789",
        public_base_url="https://news.lmec.example.org",
        issues_dir=REPO / "examples" / "issues",
    )
    root = build(settings)
    try:
        started = time.perf_counter()
        values = build_data(root, count)
        print(f"{kind}: data built in {time.perf_counter() - started:.1f} s", flush=True)
        http, anonymous = signed_in(root)
        results = {}
        for path in staff_paths(http, anonymous, values):
            if only and not any(path.startswith(prefix) for prefix in only):
                continue
            times = repeat_csv if path.endswith(".csv") else repeat
            results[path] = measure(http, path, times)
            median, p95, cpu, size = results[path]
            print(
                f"{kind:10} {path:34} median {median:7.1f} p95 {p95:7.1f} cpu {cpu:7.1f} ms"
                f" {size / 1024:8.1f} KB, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        return results
    finally:
        root.close()
        drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--repeat-csv", type=int, default=3)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--only", action="append", default=[], help="pages starting so")
    args = parser.parse_args()
    table: dict[str, dict[str, Figures]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db.split(","):
            table[kind] = run(
                kind, args.subscribers, args.repeat, args.repeat_csv, Path(tmp), args.only
            )
    kinds = list(table)
    paths = sorted({p for results in table.values() for p in results})
    head = "".join(f" | {k} median | {k} p95 | {k} cpu" for k in kinds)
    print(f"\n{args.subscribers:,} subscribers, a {args.subscribers:,}-row ledger")
    print(f"| page{head} |")
    print("| --- |" + " ---: | ---: | ---: |" * len(kinds))
    for path in paths:
        cells = "".join(
            " | {:.1f} | {:.1f} | {:.1f}".format(*table[k][path][:3])
            if path in table[k]
            else " | - | - | -"
            for k in kinds
        )
        print(f"| `{path}`{cells} |")
    print(f"\npython {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
