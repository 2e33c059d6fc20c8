"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and settings.

Every test that asks for `database_url`, `engine`, `sessions`, `settings` or `root`
runs twice: once on a fresh SQLite file and once in a fresh PostgreSQL schema, so
runs (and xdist workers) never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from mailer import db
from mailer.compose import Root, build
from mailer.settings import Settings, load_settings

POSTGRES_URL = os.environ.get(
    "MAILER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(db.normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{db.normalise_url(POSTGRES_URL)}?options={quote(f'-csearch_path={schema}')}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test: nothing read from a `.env`, data kept under tmp_path."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "secret_key": "test-secret-key-0123456789abcdef",
        "public_base_url": "https://news.example.org",
    }
    values.update(overrides)
    return load_settings(env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
def root(settings: Settings) -> Iterator[Root]:
    root = build(settings)
    yield root
    root.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests save what a person should look at (screenshots, rendered mail)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
