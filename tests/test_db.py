from __future__ import annotations

from sqlalchemy import Engine, text

from mailer import db


def test_migrations_reach_head(engine: Engine) -> None:
    assert db.is_up_to_date(engine)


def test_sqlite_pragmas(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert db.normalise_url("postgresql://u@h/d").startswith("postgresql+psycopg://")
