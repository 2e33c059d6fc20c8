from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from mailer import db


def test_migrations_reach_head(engine: Engine) -> None:
    assert db.is_up_to_date(engine)


def test_head_revision_from_file_names_is_alembics_head() -> None:
    """The schema check takes the head from the migration files' names, without Alembic;
    Alembic reads the revisions inside the files: both must name the same head, and
    every file must hold the revision its name starts with."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    assert db.head_revision() == script.get_current_head()
    for revision in script.walk_revisions():
        assert Path(revision.path).name.startswith(f"{revision.revision}_"), revision.path


def test_current_revision_reads_what_alembic_recorded(engine: Engine) -> None:
    """The cheap read of the version table agrees with Alembic's, at head, after a
    downgrade (not current any more) and with no schema at all."""
    from alembic.runtime.migration import MigrationContext

    def alembic_says() -> str | None:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    assert db.current_revision(engine) == alembic_says() == db.head_revision()
    db.downgrade(engine, "0005")
    assert db.current_revision(engine) == alembic_says() == "0005"
    assert not db.is_up_to_date(engine)
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert alembic_says() is None
    assert not db.is_up_to_date(engine)
    db.upgrade(engine)
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


def test_migration_0006_keeps_existing_lists_public_and_makes_new_ones_private(
    engine: Engine,
) -> None:
    """An installation upgraded with lists in it keeps them public (every list was
    public before 0006); a list created afterwards is private unless said otherwise.
    Going back down and up again keeps every list and subscription."""
    from subscribers import mailing_lists

    db.downgrade(engine, "0005")
    with engine.begin() as connection:
        assert "public" not in {c["name"] for c in inspect(connection).get_columns("lists")}
        now = datetime.now(UTC)
        for slug in ("newsletter", "partners-only"):
            connection.execute(
                text(
                    "INSERT INTO lists (slug, name, description, created_at)"
                    " VALUES (:slug, :slug, '', :now)"
                ),
                {"slug": slug, "now": now},
            )
        connection.execute(
            text(
                "INSERT INTO subscribers (email, email_key, email_hash, name, language,"
                " timezone, status, attributes, created_at, updated_at) VALUES ('a@example.org',"
                " 'a@example.org', 'h', 'A', 'en', 'UTC', 'active', '{}', :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source,"
                " consent_at) SELECT s.id, l.id, 'active', 'test', :now FROM subscribers s, lists l"
            ),
            {"now": now},
        )
    db.upgrade(engine)
    assert db.is_up_to_date(engine)

    def flags() -> dict[str, bool]:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT slug, public FROM lists")).all()
        return {slug: bool(public) for slug, public in rows}

    assert flags() == {"newsletter": True, "partners-only": True}
    with engine.begin() as connection:  # the column's default, for any other writer
        connection.execute(
            text(
                "INSERT INTO lists (slug, name, description, created_at)"
                " VALUES ('raw', 'Raw', '', :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    with db.session_factory(engine).begin() as session:
        assert mailing_lists.add_list(session, "staff").public is False
        assert mailing_lists.add_list(session, "events", public=True).public is True
    assert flags() == {
        "newsletter": True,
        "partners-only": True,
        "raw": False,
        "staff": False,
        "events": True,
    }
    db.downgrade(engine, "0005")
    db.upgrade(engine)
    assert set(flags()) == {"newsletter", "partners-only", "raw", "staff", "events"}
    with engine.connect() as connection:
        subscriptions = connection.execute(text("SELECT count(*) FROM subscriptions")).scalar()
    assert subscriptions == 2
