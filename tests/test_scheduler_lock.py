"""The single-scheduler lock, on SQLite (flock) and PostgreSQL (advisory lock)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailer import db
from mailer.errors import TemporaryError
from mailer.schedule.locks import SchedulerAlreadyRunning, SchedulerLock


def test_second_lock_on_the_same_database_refuses(engine: Engine) -> None:
    first = SchedulerLock(engine)
    first.acquire()
    try:
        other_engine = db.make_engine(str(engine.url.render_as_string(hide_password=False)))
        second = SchedulerLock(other_engine)
        with pytest.raises(SchedulerAlreadyRunning) as caught:
            second.acquire()
        assert "another scheduler is already running" in str(caught.value)
        assert isinstance(caught.value, TemporaryError)
        assert not second.held
        assert not second.is_free()
        other_engine.dispose()
    finally:
        first.release()
    # Released: the next one gets it, and a probe leaves it free.
    with SchedulerLock(engine) as again:
        assert again.held
    assert SchedulerLock(engine).is_free()


def test_lock_held_by_another_process_refuses_and_dies_with_it(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from mailer import db
                from mailer.schedule.locks import SchedulerLock
                lock = SchedulerLock(db.make_engine({url!r}))
                lock.acquire()
                print("locked", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SchedulerAlreadyRunning, match="already running against"):
            SchedulerLock(engine).acquire()
        holder.kill()  # no clean release: the lock must go with the process
        holder.wait(timeout=30)
        with SchedulerLock(engine) as lock:
            assert lock.held
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)


def test_schemas_and_sibling_databases_do_not_share_the_lock(
    database_url: str, tmp_path: Path
) -> None:
    """Each test runs in its own schema of the same PostgreSQL database, and several
    SQLite databases may sit in one directory: holding the lock of one database must
    not block another, while the same database stays locked."""
    engine = db.make_engine(database_url)
    if engine.dialect.name == "postgresql":
        from tests.conftest import POSTGRES_URL

        other_url = POSTGRES_URL  # the public schema of the same database
    else:
        sibling = tmp_path / "other.db"  # next to the test's database, same directory
        assert Path(str(engine.url.database)).parent == sibling.parent
        other_url = f"sqlite:///{sibling}"
    other = db.make_engine(other_url)
    same = db.make_engine(database_url)
    try:
        with SchedulerLock(engine) as held:
            assert held.held
            with SchedulerLock(other) as lock:  # another database: free
                assert lock.held
            with pytest.raises(SchedulerAlreadyRunning):  # this one: still taken
                SchedulerLock(same).acquire()
    finally:
        other.dispose()
        same.dispose()
        engine.dispose()
