"""Engine, sessions and schema migrations.

SQLite is the embedded default (WAL, foreign keys on, a busy timeout so a web
request and a worker can share the file); PostgreSQL is the scale-out store. The
schema is created and upgraded only by the Alembic migrations in
`mailer/migrations`, never by `create_all`.

Every command checks that the schema is current before it touches the database, so
that check must be cheap: it reads Alembic's version table with one query and takes
the head revision from the migration files' names (`NNNN_what.py` holds revision
"NNNN"; tests/test_db.py checks that this agrees with Alembic's own view). Alembic
itself is imported only by `upgrade` and `downgrade`, when the schema changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, String, column, create_engine, event, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which mailer/migrations/env.py keeps
_MIGRATION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def normalise_url(url: str) -> str:
    """Let operators write `postgresql://…`; we always drive PostgreSQL with psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": 30}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # only to migrate: see the module docstring

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no schema yet), as Alembic records it."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        query = select(column("version_num", String)).select_from(table(VERSION_TABLE))
        revisions = sorted(connection.execute(query).scalars())
    return "+".join(revisions) or None  # several rows: branches, never current here


def head_revision() -> str | None:
    """The newest migration's revision: the highest `NNNN` of `versions/NNNN_*.py`."""
    numbers = [
        found.group(1)
        for path in (MIGRATIONS_DIR / "versions").iterdir()
        if (found := _MIGRATION_FILE.match(path.name))
    ]
    return max(numbers, default=None)


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
