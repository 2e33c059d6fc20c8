"""Send benchmark: personalised ~20 KB messages to Postfix's smtp-sink, ledger kept.

    .venv/bin/python benchmarks/send.py --memory   # 100,000 (and 10,000) on SQLite and PostgreSQL
    .venv/bin/python benchmarks/send.py --count 30000 --db sqlite --processes 2 --connections 8

For each database: fresh schema, N subscribers in the six countries, one campaign
with a ~20 KB rendered issue (slots in both parts), then
  * enqueue: `lifecycle.start_sending` (one INSERT … SELECT of N ledger rows), timed;
  * send: worker processes (`Root.worker()`, `smtp_connections` connections each)
    until the campaign is `sent`; messages per second from first claim to last
    outcome, every outcome recorded in the ledger; peak RSS of each worker process.
The reference is `smtp-source` sending the same number of 20 KB messages to the
same sink over the same number of connections (processes x connections), in the
same run.

`smtp-sink` and `smtp-source` come with Debian's Postfix, which is not installed by
`./run setup` (nothing else needs it). As root:

    DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
    service postfix stop    # if it started: the benchmark needs only the two tools
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, insert, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer import db  # noqa: E402
from mailer.compose import Root, build  # noqa: E402
from mailer.delivery import campaigns, ledger, lifecycle  # noqa: E402
from mailer.delivery.message import Recipient  # noqa: E402
from mailer.settings import load_settings  # noqa: E402
from subscribers.audience import Audience  # noqa: E402
from subscribers.models import MailingList, Subscriber, Subscription  # noqa: E402
from subscribers.validation import email_hash  # noqa: E402

POSTGRES = os.environ.get("MAILER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
COUNTRIES = {
    "CN": ("张玉军", "Asia/Shanghai"),
    "KH": ("ស្រី សុនលាង", "Asia/Phnom_Penh"),
    "LA": ("ລອນຄຳ ອັດສະນາວົງ", "Asia/Vientiane"),
    "MM": ("သော်သော်ဟန်", "Asia/Yangon"),
    "TH": ("นฤมล โอริส", "Asia/Bangkok"),
    "VN": ("Lê Ngọc Tuấn", "Asia/Ho_Chi_Minh"),
}
PARAGRAPH = (
    "The Work Meeting at the Fifth Anniversary of the Lancang-Mekong Environmental "
    "Cooperation Center was held in Beijing on 23 November, 2022. 澜沧江-湄公河环境合作中心. "
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def content() -> tuple[str, str]:
    """An HTML and a text part with every slot, together about 20 KB on the wire."""
    html = (
        "<html><body><p>Dear %%NAME%% (%%EMAIL%%)</p>"
        + "".join(f"<p>{PARAGRAPH * 2}</p>\n" for _ in range(28))
        + '<a href="%%VIEW_URL%%">View in browser</a> '
        + '<a href="%%PREFERENCES_URL%%">Preferences</a> '
        + '<a href="%%UNSUBSCRIBE_URL%%">Unsubscribe</a></body></html>'
    )
    plain = "Dear %%NAME%%\n\n" + (PARAGRAPH + "\n\n") * 16 + "Unsubscribe: %%UNSUBSCRIBE_URL%%\n"
    return html, plain


@dataclass
class Database:
    kind: str
    url: str
    cleanup: object = None


def fresh_database(kind: str, workdir: Path) -> Database:
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:6]}.db"
        url = f"sqlite:///{path}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        return Database(kind, url, path)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(db.normalise_url(POSTGRES))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = f"{db.normalise_url(POSTGRES)}?options={quote(f'-csearch_path={schema}')}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return Database(kind, url, schema)


def drop_database(database: Database) -> None:
    if database.kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database.cleanup}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(db.normalise_url(POSTGRES))
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{database.cleanup}" CASCADE'))
    admin.dispose()


def settings_for(
    database: Database, port: int, workdir: Path, connections: int
) -> dict[str, object]:
    return {
        "database_url": database.url,
        "data_dir": workdir / "data",
        "secret_key": "bench-secret-0123456789abcdef0123456789",
        "public_base_url": "https://news.lmec.example.org",
        "smtp_port": port,
        "smtp_connections": connections,
        "smtp_messages_per_connection": 0,
        "worker_batch_size": 500,
    }


def populate(root: Root, count: int) -> None:
    """`count` active subscribers on one list, inserted in bulk (not what is measured)."""
    with root.sessions.begin() as session:
        newsletter = MailingList(slug="newsletter", name="Newsletter")
        session.add(newsletter)
        session.flush()
        list_id = newsletter.id
    codes = sorted(COUNTRIES)
    chunk = 10_000
    for start in range(0, count, chunk):
        people = []
        for index in range(start, min(start + chunk, count)):
            code = codes[index % len(codes)]
            name, zone = COUNTRIES[code]
            email = f"reader{index}@{code.lower()}.example.org"
            people.append(
                {
                    "id": index + 1,
                    "email": email,
                    "email_key": email,
                    "email_hash": email_hash(email),
                    "name": f"{name} {index}",
                    "country": code,
                    "language": "en",
                    "timezone": zone,
                    "status": "active",
                    "attributes": {},
                }
            )
        with root.sessions.begin() as session:
            session.execute(insert(Subscriber), people)
            session.execute(
                insert(Subscription),
                [
                    {"subscriber_id": p["id"], "list_id": list_id, "consent_source": "bench"}
                    for p in people
                ],
            )
    if root.engine.dialect.name == "postgresql":
        with root.engine.begin() as connection:
            connection.execute(text("SELECT setval('subscribers_id_seq', :n)"), {"n": count})
            connection.execute(text("ANALYZE"))


def make_campaign(root: Root) -> int:
    html, plain = content()

    class Issue:
        slug, number, language = "2022-15", 15, "en"

    class Rendered:
        subject = "Issue 15, 2022: Fifth Anniversary of the LMEC Work Meeting"
        preheader = "Views of experts"
        language = "en"

    Rendered.html, Rendered.text = html, plain  # type: ignore[attr-defined]
    with root.sessions.begin() as session:
        campaign = campaigns.create_campaign(
            session,
            name="bench",
            issue_path=REPO / "examples" / "issues" / "2022-15.yaml",
            issue=Issue(),  # type: ignore[arg-type]
            sender="LMEC Newsletter <newsletter@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        campaigns.freeze(session, campaign.id, Rendered())  # type: ignore[arg-type]
        return campaign.id


def work(
    overrides: dict[str, object], results: multiprocessing.Queue[tuple[float, float, int]]
) -> None:
    """One worker process: send until nothing is due; report timing and peak RSS."""
    root = build(load_settings(env_file=None, **overrides))
    worker = root.worker(idle_seconds=0.05)
    started = time.perf_counter()
    worker.run(threading.Event(), until_idle=True)
    finished = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put((started, finished, peak_kib))
    root.close()


def smtp_source(port: int, count: int, sessions: int) -> float:
    """Messages per second of Postfix's smtp-source: same count, 20 KB, same sink."""
    started = time.perf_counter()
    subprocess.run(
        ["/usr/sbin/smtp-source", "-s", str(sessions), "-d", "-l", "20480", "-m", str(count),
         "-f", "bench@lmec.example.org", "-t", "reader@example.org", f"127.0.0.1:{port}"],
        check=True,
    )  # fmt: skip
    return count / (time.perf_counter() - started)


def run_one(
    kind: str, count: int, port: int, workdir: Path, connections: int, processes: int
) -> dict[str, float]:
    database = fresh_database(kind, workdir)
    overrides = settings_for(database, port, workdir, connections)
    root = build(load_settings(env_file=None, **overrides))
    try:
        populate(root, count)
        campaign_id = make_campaign(root)
        started = time.perf_counter()
        added = lifecycle.start_sending(root.sessions, campaign_id)
        enqueue = time.perf_counter() - started
        assert added == count, (added, count)
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[tuple[float, float, int]] = context.Queue()
        children = [
            context.Process(target=work, args=(overrides, results)) for _ in range(processes)
        ]
        wall = time.perf_counter()
        for child in children:
            child.start()
        reports = [results.get() for _ in children]
        for child in children:
            child.join()
        wall = time.perf_counter() - wall
        with root.sessions() as session:
            tally = ledger.progress(session, campaign_id)
            state = campaigns.get_campaign(session, campaign_id).state
        assert tally.sent == count and state == "sent", (tally, state)
        send_seconds = max(r[1] for r in reports) - min(r[0] for r in reports)
        sample = Recipient(1, "reader1@kh.example.org", "ស្រី សុនលាង 1")
        size = len(root.worker().template(campaign_id).personalise(sample).data)
        return {
            "enqueue_s": enqueue,
            "send_s": send_seconds,
            "rate": count / send_seconds,
            "wall_s": wall,
            "peak_rss_mib": max(r[2] for r in reports) / 1024,
            "message_bytes": size,
        }
    finally:
        root.close()
        drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--connections", type=int, default=16, help="per worker process")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--memory", action="store_true", help="also run 10,000 to compare peak RSS")
    args = parser.parse_args()
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink_process = subprocess.Popen([sink, *user, f"127.0.0.1:{port}", "1024"])
    time.sleep(0.3)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            sessions = args.connections * args.processes  # the same number of open connections
            for kind in args.db.split(","):
                counts = [args.count] + ([10_000] if args.memory else [])
                for count in counts:
                    # The reference runs right before ours, so both see the same machine load.
                    reference = smtp_source(port, count, sessions)
                    result = run_one(kind, count, port, workdir, args.connections, args.processes)
                    load = os.getloadavg()[0]
                    print(
                        f"{kind:10} {count:>7} recipients: enqueue {result['enqueue_s']:.2f} s, "
                        f"send {result['send_s']:.1f} s = {result['rate']:,.0f} msg/s; "
                        f"smtp-source {reference:,.0f} msg/s over {sessions} sessions "
                        f"(ours {result['rate'] / reference:.0%} of it); "
                        f"message {result['message_bytes'] / 1024:.1f} KB; "
                        f"peak RSS {result['peak_rss_mib']:.0f} MiB per worker process "
                        f"({args.processes} x {args.connections} connections); load {load:.1f}",
                        flush=True,
                    )
    finally:
        sink_process.terminate()
        sink_process.wait()


if __name__ == "__main__":
    main()
