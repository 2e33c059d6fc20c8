"""The single-scheduler lock: at most one scheduler process per database.

APScheduler 3 does not share a job store safely between processes, so a second
scheduler must refuse to start. On PostgreSQL the lock is a session-level advisory
lock held on a dedicated connection (keyed by the schema, so databases that hold
several schemas keep them apart); on SQLite it is an exclusive `flock` on a file
next to the database. Either lock dies with the process that holds it, so a killed
scheduler never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Self

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from mailer.errors import TemporaryError

# First half of the two-part advisory lock key: "mailer scheduler"; the second half
# is a hash of the current schema.
ADVISORY_CLASS = 0x6D5C


class SchedulerAlreadyRunning(TemporaryError):
    """Another scheduler holds the lock for this database."""


class SchedulerLock:
    """Acquire with `acquire()` (or `with`); release with `release()`. Not reentrant."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._file: IO[str] | None = None
        self._held = False

    @property
    def where(self) -> str:
        """The database the lock guards, without its password."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def held(self) -> bool:
        return self._held

    def lock_file(self) -> Path | None:
        """For SQLite, the lock file next to the database file (None for in-memory)."""
        database = make_url(str(self._engine.url)).database
        if self._engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database).with_name(Path(database).name + ".scheduler.lock")

    def acquire(self) -> None:
        """Take the lock or raise SchedulerAlreadyRunning naming the database."""
        if self._held:
            raise RuntimeError("this scheduler lock is already held")
        if self._engine.dialect.name == "postgresql":
            self._acquire_advisory()
        elif self._engine.dialect.name == "sqlite":
            self._acquire_file()
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise SchedulerAlreadyRunning(f"no scheduler lock for {self._engine.dialect.name}")
        self._held = True

    def _acquire_advisory(self) -> None:
        connection = self._engine.connect()
        try:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))"),
                {"cls": ADVISORY_CLASS},
            ).scalar_one()
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not got:
            holder = self._advisory_holder(connection)
            connection.close()
            raise SchedulerAlreadyRunning(
                f"another scheduler is already running against {self.where}{holder}; "
                "only one scheduler may run per database (stop it, or run only workers here)"
            )
        self._connection = connection

    def _advisory_holder(self, connection: Connection) -> str:
        try:
            row = connection.execute(
                text(
                    "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.classid = :cls "
                    "AND l.objid = hashtext(current_schema())::oid AND l.granted LIMIT 1"
                ),
                {"cls": ADVISORY_CLASS},
            ).first()
            connection.commit()
        except Exception:  # the message is only a courtesy
            return ""
        if row is None:
            return ""
        return (
            f" (database session {row.pid}, connected since {row.backend_start:%Y-%m-%d %H:%M %Z})"
        )

    def _acquire_file(self) -> None:
        path = self.lock_file()
        if path is None:
            return  # an in-memory database lives in one process only
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            handle.close()
            by = f" (process {pid}, lock file {path})" if pid else f" (lock file {path})"
            raise SchedulerAlreadyRunning(
                f"another scheduler is already running against {self.where}{by}; "
                "only one scheduler may run per database"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Give the lock back; safe to call when not held."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:cls, hashtext(current_schema()))"),
                    {"cls": ADVISORY_CLASS},
                )
                connection.commit()
            except Exception:
                connection.invalidate()  # closing the session drops the lock anyway
            finally:
                connection.close()
        if self._file is not None:
            handle, self._file = self._file, None
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        self._held = False

    def is_free(self) -> bool:
        """True if no scheduler holds the lock now (probes by taking and giving it back)."""
        if self._held:
            return False
        try:
            self.acquire()
        except SchedulerAlreadyRunning:
            return False
        self.release()
        return True

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
