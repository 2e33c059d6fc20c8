"""Who holds a ledger row, and whether that worker is still alive.

A worker claims rows under its name (`ledger.worker`) and leases them for
`MAILER_WORKER_LEASE_SECONDS`; a worker that dies holding rows would leave them idle
until the lease ran out (five minutes by default). So each worker also records who
it is in `workers`: its host, the machine it runs on (the kernel's boot id and the
process's pid namespace, the scope in which a process id means one process), its
process id and the process's start time (`starttime` in /proc/<pid>/stat, so a
reused process id is never taken for the old process). On PostgreSQL it holds, for
as long as it lives, a session advisory lock with the record's key on a connection
of its own, and stamps the record (`seen_at`) through that connection every second.

Another worker takes the rows back at once (makes them due, so the usual claim
picks them up) when their owner is certainly gone:

- on the same machine, when the owner's process is gone (no such process id, a
  process with another start time, or a zombie);
- on PostgreSQL, from any machine, when the owner's lock is free
  (`pg_try_advisory_xact_lock` succeeds) and its record was not stamped for
  `STALE_SECONDS`.

Anything else (another machine on SQLite, a record missing) waits for the lease, as
before. A live process is never judged dead: a stopped (SIGSTOP) or busy process
still exists, and its lock connection still holds the lock. The one way a live
worker loses its lock is its connection dropping; it then sends nothing more once
`FENCE_SECONDS` have passed since its lock was last confirmed (`Presence.holds`),
which is sooner than anyone may take its rows back, and registers again under a
new name.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    String,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from mailer.delivery import ledger
from mailer.delivery.campaigns import Campaign, CampaignState
from mailer.timestamps import UTCDateTime, utcnow
from subscribers.base import Base

log = logging.getLogger(__name__)

#: How often a live PostgreSQL worker stamps its record through its lock connection.
HEARTBEAT_SECONDS = 1.0
#: A worker whose lock was not confirmed for this long sends nothing until it is.
FENCE_SECONDS = 3.0
#: A record not stamped for this long, with its lock free, belongs to a dead worker.
STALE_SECONDS = 6.0
#: How often a running worker looks for rows held by dead workers.
SWEEP_SECONDS = 2.0
#: States of campaigns whose rows a dead worker may still hold.
_UNFINISHED = (CampaignState.SENDING.value, CampaignState.PAUSED.value)


class WorkerRecord(Base):
    """One running worker (deleted when it stops cleanly or is found dead)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # = ledger.worker
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    machine: Mapped[str] = mapped_column(String(100), nullable=False)  # boot id + pid namespace
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started: Mapped[int] = mapped_column(BigInteger, nullable=False)  # /proc starttime (ticks)
    lock_key: Mapped[int | None] = mapped_column(BigInteger)  # PostgreSQL advisory lock
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


@dataclass(frozen=True)
class Process:
    """A process as another process on the same machine can recognise it."""

    host: str
    machine: str  # "" when unknown: then no one can judge it by its process id
    pid: int
    started: int  # 0 when unknown


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def _machine() -> str:
    """The scope in which a process id names one process: this boot of this kernel
    and this pid namespace (containers on one host share the boot id, not the
    namespace). Empty when either cannot be read (not Linux)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot else ""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, starttime) of a process from /proc/<pid>/stat; None if there is none.
    The command name may hold spaces and parentheses: the fields follow the last ')'."""
    line = _read(f"/proc/{pid}/stat")
    if ")" not in line:
        return None
    fields = line.rsplit(")", 1)[1].split()
    try:
        return fields[0], int(fields[19])  # field 3 (state) and field 22 (starttime)
    except (IndexError, ValueError):
        return None


def this_process() -> Process:
    pid = os.getpid()
    stat = _stat(pid)
    machine = _machine() if stat else ""
    return Process(socket.gethostname(), machine, pid, stat[1] if stat else 0)


def process_gone(pid: int, started: int) -> bool:
    """True if the process (pid, start time) no longer runs on this machine: no such
    pid, the pid now names a later process, or only its zombie is left."""
    stat = _stat(pid)
    if stat is None:  # no such process, or /proc hides it (hidepid): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # another user's process: it exists, so count it alive
            return False
        return False
    state, start = stat
    return start != started or state in ("Z", "X", "x")


def _gone_here(record: WorkerRecord, me: Process) -> bool:
    """The record's process is on this machine and certainly gone."""
    if not me.machine or record.machine != me.machine or not record.started:
        return False
    if record.pid == me.pid:
        return record.started != me.started  # this very process is alive
    return process_gone(record.pid, record.started)


@dataclass(frozen=True)
class Held:
    """Rows of one campaign held by a worker that is gone, for the report."""

    worker: str
    rows: int
    why: str  # "its process is gone" / "its lock is gone" / "" when unknown
    lease_until: datetime | None  # when the lease ends if nobody takes them back sooner


def _dead_names(session: Session, records: list[WorkerRecord], me: Process) -> dict[str, str]:
    """Names of the records' workers that are certainly gone, with the reason."""
    dead = {r.name: "its process is gone" for r in records if _gone_here(r, me)}
    bind = session.get_bind()
    keyed = [r for r in records if r.name not in dead and r.lock_key is not None]
    if bind.dialect.name == "postgresql" and keyed:
        # Free lock (taken here only until this transaction ends) and no recent stamp.
        rows = session.execute(
            text(
                "SELECT name FROM workers WHERE name = ANY(:names)"
                " AND seen_at < timezone('utc', now()) - make_interval(secs => :stale)"
                " AND pg_try_advisory_xact_lock(lock_key)"
            ),
            {"names": [r.name for r in keyed], "stale": STALE_SECONDS},
        )
        dead.update({name: "its lock is gone" for (name,) in rows})
    return dead


def take_back(session: Session, me: Process, own: str, now: datetime) -> dict[str, int]:
    """Make due at once the rows held by workers that are certainly gone, and forget
    those workers; return rows taken back per worker. Call inside a transaction."""
    records = list(session.scalars(select(WorkerRecord).where(WorkerRecord.name != own)))
    dead = _dead_names(session, records, me)
    taken: dict[str, int] = {}
    unfinished = select(Campaign.id).where(Campaign.state.in_(_UNFINISHED))
    for name in sorted(dead):
        count = ledger.take_back(session, name, unfinished.scalar_subquery(), now)
        session.execute(delete(WorkerRecord).where(WorkerRecord.name == name))
        if count:
            taken[name] = count
            log.warning("took back %d row(s) of worker %s: %s", count, name, dead[name])
    return taken


def held_by_dead(session: Session, campaign_id: int) -> list[Held]:
    """The campaign's rows held (status sending) by workers known to be gone, or by
    workers without a record (their lease decides), for `mailer campaign report`."""
    holders = ledger.holders(session, campaign_id)
    if not holders:
        return []
    names = [str(name) for name, _, _ in holders if name is not None]
    records = list(session.scalars(select(WorkerRecord).where(WorkerRecord.name.in_(names))))
    dead = _dead_names(session, records, this_process())
    known = {r.name for r in records}
    held = []
    for name, count, until in holders:
        if name in dead:
            held.append(Held(str(name), int(count), dead[name], until))
        elif name not in known:
            held.append(Held(str(name or "?"), int(count), "", until))
    return held


def _close_connection(connection: Connection) -> None:
    try:
        connection.invalidate()  # closed, not pooled: the session lock goes with it
    except Exception as exc:  # already gone
        log.debug("closing a worker's lock connection: %s", exc)


class Presence:
    """This worker's record (and on PostgreSQL its lock), kept while it runs.

    `tend()` registers on first use, stamps the record and now and then takes back
    rows of dead workers; `holds()` says whether the worker may hand a message to
    the server; `close()` deletes the record and lets the lock go.
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.base = name
        self.name = name
        self.me = this_process()
        self._generation = 0
        self._registered = False
        self._lock: Connection | None = None
        self._drop: Callable[[], Any] = lambda: None  # closes the lock's connection once
        self._key: int | None = None
        self._confirmed = 0.0  # monotonic time before the last successful stamp
        self._swept = float("-inf")

    # --- registration ----------------------------------------------------------------
    def _register(self) -> None:
        now = utcnow()
        record = {
            "name": self.name,
            "host": self.me.host[:255],
            "machine": self.me.machine,
            "pid": self.me.pid,
            "started": self.me.started,
            "lock_key": None,
            "started_at": now,
            "seen_at": now,
        }
        if self.postgres:
            before = time.monotonic()
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                key = self._lock_key(connection)
                record["lock_key"] = key
                connection.execute(delete(WorkerRecord).where(WorkerRecord.name == self.name))
                connection.execute(insert(WorkerRecord).values(record))
                # Stamped by the database's clock, the one takers compare with.
                connection.execute(
                    update(WorkerRecord)
                    .where(WorkerRecord.name == self.name)
                    .values(seen_at=text("timezone('utc', now())"))
                )
            except BaseException:
                connection.invalidate()
                raise
            self._lock, self._key, self._confirmed = connection, key, before
            # Also when a worker is dropped without close() (a test's, a failed start):
            # the connection is closed, never left to the pool's garbage collection.
            self._drop = weakref.finalize(self, _close_connection, connection)
        else:
            with Session(self.engine) as session, session.begin():
                session.execute(delete(WorkerRecord).where(WorkerRecord.name == self.name))
                session.execute(insert(WorkerRecord).values(record))
        self._registered = True

    @staticmethod
    def _lock_key(connection: Connection) -> int:
        """A random key, locked for the life of this connection (another if taken)."""
        while True:
            key = secrets.randbits(62) + 1
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
            ).scalar_one()
            if got:
                return key

    def _lost(self, why: str) -> None:
        """The lock is gone while we live: forget it; the next `tend` registers anew."""
        log.error("worker %s lost its lock (%s): registering again", self.name, why)
        self._lock = None
        self._drop()
        self._registered = False
        self._confirmed = 0.0
        self._generation += 1
        self.name = f"{self.base}~{self._generation}"[-100:]

    # --- while running -----------------------------------------------------------------
    def tend(self, now: datetime | None = None) -> str:
        """Register if needed, stamp the record (PostgreSQL) and, every SWEEP_SECONDS,
        take back rows of dead workers. Returns the name to claim under."""
        if not self._registered:
            self._register()
        elif self.postgres and time.monotonic() - self._confirmed >= HEARTBEAT_SECONDS:
            self._stamp()
        if time.monotonic() - self._swept >= SWEEP_SECONDS:
            self._swept = time.monotonic()
            try:
                with Session(self.engine) as session, session.begin():
                    take_back(session, self.me, self.name, now or utcnow())
            except SQLAlchemyError as exc:
                log.warning("could not look for rows of stopped workers: %s", exc)
        return self.name

    def _stamp(self) -> bool:
        if self._lock is None:
            return False
        before = time.monotonic()
        try:
            stamped = self._lock.execute(
                update(WorkerRecord)
                .where(WorkerRecord.name == self.name)
                .values(seen_at=text("timezone('utc', now())"))
            ).rowcount
        except SQLAlchemyError as exc:
            self._lost(f"its connection failed: {exc}")
            return False
        if not stamped:
            self._lost("its record was removed")
            return False
        self._confirmed = before
        return True

    def holds(self) -> bool:
        """May this worker hand a message to the server? Always on SQLite (no lock:
        no one judges a live process dead); on PostgreSQL only while its lock was
        confirmed within FENCE_SECONDS (confirmed now if it is older than a stamp)."""
        if not self.postgres:
            return True
        if not self._registered:  # never ran (a bare claim): no lock anyone could judge
            return self._generation == 0  # lost it: nothing more until registered again
        if time.monotonic() - self._confirmed < HEARTBEAT_SECONDS:
            return True
        return self._stamp() and time.monotonic() - self._confirmed < FENCE_SECONDS

    def close(self) -> None:
        """Delete the record and let the lock go (the rows were recorded or released)."""
        if not self._registered:
            return
        self._registered = False
        connection, self._lock = self._lock, None
        try:
            if connection is not None:
                connection.execute(delete(WorkerRecord).where(WorkerRecord.name == self.name))
            else:
                with Session(self.engine) as session, session.begin():
                    session.execute(delete(WorkerRecord).where(WorkerRecord.name == self.name))
        except SQLAlchemyError as exc:  # the database is gone: the record is judged later
            log.warning("could not remove worker record %s: %s", self.name, exc)
        finally:
            self._drop()  # closes the connection: the session lock goes with it


def lease_note(held: Held, now: datetime) -> str:
    """One line for the report: who holds the rows and when they come back."""
    when = held.lease_until
    ends = "has ended" if when is None or when <= now else f"ends at {when:%Y-%m-%d %H:%M:%S} UTC"
    if held.why:
        return (
            f"{held.rows} row(s) held by worker {held.worker}, which has stopped ({held.why}):"
            f" a running or starting worker takes them back at once (their lease {ends})"
        )
    return (
        f"{held.rows} row(s) held by worker {held.worker}, of which there is no record: "
        f"they come back when their lease ends (it {ends})"
    )
