"""`mailer user ...`: accounts from the command line, errors as one line on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli.main import app
from tests.web_harness import FAST_HASHER


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    env = {"MAILER_DATABASE_URL": database_url, "MAILER_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None):
        return runner.invoke(app, list(args), input=stdin, env=env)

    return invoke


def test_user_commands(run) -> None:
    created = run(
        "user",
        "create",
        "Li.Xia@lmec.example.org",
        "--role",
        "admin",
        "--name",
        "Li Xia",
        "--password-stdin",
        stdin="a long password here\n",
    )
    assert created.exit_code == 0, created.output
    assert "created admin li.xia@lmec.example.org" in created.stdout
    short = run("user", "create", "ed@lmec.example.org", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1
    assert short.stderr.strip() == "error: the password must have at least 10 characters"
    bad_role = run(
        "user",
        "create",
        "ed@lmec.example.org",
        "--role",
        "boss",
        "--password-stdin",
        stdin="a long password here\n",
    )
    assert bad_role.exit_code == 1 and "unknown role 'boss'" in bad_role.stderr
    listed = run("user", "list")
    assert "li.xia@lmec.example.org" in listed.stdout and "admin" in listed.stdout
    last = run("user", "remove", "li.xia@lmec.example.org")
    assert last.exit_code == 1
    assert "Traceback" not in last.output and "last admin" in last.stderr
    changed = run(
        "user",
        "set-password",
        "li.xia@lmec.example.org",
        "--password-stdin",
        stdin="another long password\n",
    )
    assert changed.exit_code == 0


def test_the_stored_hash_is_argon2(run, database_url: str) -> None:
    run("user", "create", "a@example.org", "--password-stdin", stdin="a long password here\n")
    from sqlalchemy import select

    from mailer import db
    from mailer.people.accounts import User

    engine = db.make_engine(database_url)
    with db.session_factory(engine)() as session:
        stored = session.scalars(select(User.password_hash)).one()
    engine.dispose()
    assert stored.startswith("$argon2id$")
    assert FAST_HASHER.verify(stored, "a long password here")


def test_help_has_examples(run) -> None:
    for command in (["user", "create"], ["user", "list"], ["user", "remove"], ["web"]):
        result = run(*command, "--help")
        assert result.exit_code == 0 and "Example: mailer" in result.stdout, command
