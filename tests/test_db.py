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


def test_public_base_url_follows_the_web_port_unless_set() -> None:
    from mailer.settings import load_settings

    assert load_settings(env_file=None, web_port=8123).public_base_url == "http://127.0.0.1:8123"
    chosen = load_settings(env_file=None, web_port=8123, public_base_url="https://news.x.org/")
    assert chosen.public_base_url == "https://news.x.org"
