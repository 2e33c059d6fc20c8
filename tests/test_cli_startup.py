"""What a `mailer` command imports before it answers (issue 16: the CLI starts at once).

Each command runs in a fresh interpreter, as a person or a script runs it, and reports
the modules it loaded. `mailer --help` must load no command module and none of the
heavy libraries; a command loads only what it needs. Speed itself is measured in
benchmarks/cli.py; here only what is imported, which does not depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Runs `mailer ARGS...` and writes the names of the loaded modules to OUT at exit.
PROBE = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["mailer", *sys.argv[2:]]
from mailer.cli.main import main
main()
"""

HEAVY = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "mjml", "apscheduler")


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages and our own modules that `mailer ARGS` imported."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "MAILER_DATA_DIR": str(tmp_path / "data"), "MAILER_DATABASE_URL": ""}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names: list[str] = json.loads(out.read_text())
    return {name.split(".")[0] for name in names} | {
        name for name in names if name.startswith(("mailer.", "subscribers."))
    }


def test_help_imports_no_command_module_and_no_heavy_library(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert not modules & set(HEAVY)
    ours = {m for m in modules if m.startswith(("mailer.", "subscribers"))}
    assert ours == {"mailer.cli", "mailer.cli.main"}


def test_the_probe_sees_what_a_command_imports(tmp_path: Path) -> None:
    """The other tests here assert absences; this one shows that the probe finds a
    library when a command does import it (`mailer db upgrade` runs Alembic)."""
    modules = loaded(tmp_path, "db", "upgrade")
    assert {"alembic", "sqlalchemy", "mailer.cli.database"} <= modules


def test_check_needs_no_database_and_no_web_server(tmp_path: Path) -> None:
    issue = REPO / "examples" / "issues" / "2022-13.yaml"
    modules = loaded(tmp_path, "check", str(issue))
    assert "mjml" in modules  # it lints the email it renders
    assert not modules & {"sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn"}
    assert not modules & {"apscheduler", "aiosmtpd"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A folder with a migrated SQLite database holding one list and one subscriber."""
    for args in (
        ("db", "upgrade"),
        ("lists", "add", "newsletter", "--public"),
        ("subscribers", "add", "x@example.org", "--list", "newsletter"),
    ):
        loaded(tmp_path, *args)
    yield tmp_path


@pytest.mark.parametrize(
    "args", [("subscribers", "show", "x@example.org", "--json"), ("lists", "list")]
)
def test_store_commands_need_no_web_app_renderer_scheduler_or_alembic(
    store: Path, args: tuple[str, ...]
) -> None:
    modules = loaded(store, *args)
    assert "sqlalchemy" in modules
    assert not modules & {"fastapi", "starlette", "uvicorn", "mjml", "jinja2", "apscheduler"}
    assert "alembic" not in modules  # the schema check reads the version table itself


# What the group's other commands need, and these two do not (issue 16: under 0.7 s).
NOT_FOR_SHOW_OR_LIST = {
    "ruamel",  # the content loader's YAML parser: only its errors are caught here
    "mailer.authoring.loader",
    "subscribers.csvimport",  # `subscribers import`
    "subscribers.csvexport",  # `subscribers export`
    "mailer.people.privacy",  # `subscribers privacy-export` and `erase`: the ledger
    "mailer.delivery.ledger",
    "mailer.people.removals",  # `lists remove`: what a removal takes with it
    "mailer.delivery.campaigns",
}


@pytest.mark.parametrize(
    "args", [("subscribers", "show", "x@example.org", "--json"), ("lists", "list")]
)
def test_show_and_list_load_neither_files_nor_ledger_nor_removals(
    store: Path, args: tuple[str, ...]
) -> None:
    modules = loaded(store, *args)
    assert "subscribers.models" in modules  # it does read the store
    assert not modules & NOT_FOR_SHOW_OR_LIST


def test_the_group_commands_that_need_them_still_load_them(store: Path) -> None:
    """The probe above would pass vacuously if these names were wrong: the commands
    cut away from `show` and `list` do load them."""
    assert {"subscribers.csvexport"} <= loaded(store, "subscribers", "export", "-")
    assert {"mailer.people.privacy", "mailer.delivery.ledger"} <= loaded(
        store, "subscribers", "privacy-export", "x@example.org"
    )
    removal = loaded(store, "lists", "remove", "newsletter", "--yes")
    assert {"mailer.people.removals", "mailer.delivery.campaigns"} <= removal
