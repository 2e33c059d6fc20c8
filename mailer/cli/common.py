"""What every command that opens the database needs: the composition root, and errors
printed without tracebacks (`fail`, `friendly_errors`: from mailer.cli.output, which
commands that need no database import alone, and re-exported here)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from mailer.authoring.problems import ContentError
from mailer.cli.output import err_console
from mailer.cli.output import fail as fail
from mailer.cli.output import friendly_errors as friendly_errors
from mailer.compose import Root, build
from mailer.settings import Settings, load_settings
from subscribers.errors import ImportRejected

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from sqlalchemy.orm import Session


# Arguments of the editors' commands (render, check, preview).
IssueArg = Annotated[
    Path, typer.Argument(help="The issue's YAML content file.", dir_okay=False, show_default=False)
]
EnvOpt = Annotated[
    Path | None, typer.Option("--env-file", help="Settings file (default: .env).", dir_okay=False)
]


def root(env_file: Path | None = None, *, database: bool = True) -> Root:
    """Build the composition root from `.env` (or the given file) and the environment.

    A setting that cannot be used (a bad value, an unparseable database URL, a data
    folder that cannot be made) is one line on stderr and exit status 1.
    """
    try:
        settings = load_settings(env_file or ".env")
    except ValidationError as exc:
        problems = "; ".join(
            f"MAILER_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise fail(f"error: settings: {problems}") from None
    return _build(settings, database)


def _build(settings: Settings, database: bool) -> Root:
    """The root; with `database`, its engine made now, so a bad URL is reported here.
    (SQLAlchemy is imported with the database, not before: see Root.)"""
    try:
        the_root = build(settings)
    except OSError as exc:  # e.g. a data directory that cannot be made
        raise fail(f"error: {exc.filename}: {exc.strerror} (see MAILER_DATA_DIR)") from None
    if database:
        from sqlalchemy.exc import ArgumentError

        try:
            the_root.engine  # noqa: B018  (made now: a bad URL is this command's error)
        except ArgumentError as exc:  # the URL is not echoed: it may hold a password
            raise fail(f"error: database URL: {exc} (see MAILER_DATABASE_URL)") from None
    return the_root


@contextmanager
def opened(env_file: Path | None = None, *, check_schema: bool = True) -> Iterator[Root]:
    """The composition root for one command, closed afterwards.

    Errors a person can act on become one line on stderr (a content file's problems,
    one line each) and exit status 1, never a traceback.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from mailer import db

    with friendly_errors():
        the_root = root(env_file)
        try:
            if check_schema and not db.is_up_to_date(the_root.engine):
                raise fail(
                    "error: the database schema is not up to date: run `mailer db upgrade` first"
                )
            yield the_root
        except ContentError as exc:
            for problem in exc.problems:
                err_console.print(
                    f"error: {problem}", markup=False, highlight=False, soft_wrap=True
                )
            raise typer.Exit(1) from None
        except SQLAlchemyError as exc:  # e.g. the server went away; the URL hides a password
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise fail(f"error: database {the_root.engine.url!r}: {reason}") from None
        finally:
            the_root.close()


def run_until_stopped(controller: Controller, listening: str) -> None:
    """Start an SMTP server (aiosmtpd), say where it listens, and serve until Ctrl-C or
    SIGTERM; a port that cannot be taken is one line and exit status 1.

    SIGTERM is handled before the server starts: whoever reads the "listening" line
    may stop it at once, and must find it stopping cleanly, not killed mid-reply."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        controller.start()
    except (OSError, RuntimeError) as exc:
        where = f"{controller.hostname}:{controller.port}"
        raise fail(f"error: cannot listen on {where}: {exc}") from None
    Console(highlight=False, soft_wrap=True).print(f"{listening} (Ctrl-C to stop)", markup=False)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


# --- the store's commands (db, partners, lists, subscribers, suppression, audience) --------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def not_utf8(text: str) -> str:
    """The message for text a terminal that is not UTF-8 handed over (0xE9 -> '\\udce9')."""
    return f"error: {text!r} is not UTF-8 text (is the terminal set to UTF-8?)"


@contextmanager
def store_opened(check_schema: bool = True) -> Iterator[Root]:
    """The composition root, with import rejections and races as one line on stderr."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    with opened(check_schema=check_schema) as the_root:
        try:
            yield the_root
        except ImportRejected as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            if not exc.rows:  # the file as a whole: skipping rows would not help
                raise fail(
                    "error: the file cannot be imported as it is; nothing was imported"
                ) from None
            raise fail(
                f"error: {len(exc.problems)} problem(s) in the file; nothing was imported "
                "(fix them, or pass --skip-invalid to import the good rows)"
            ) from None
        except IntegrityError:
            raise fail(
                "error: the store changed while this command ran (another import or edit?); "
                "nothing was written: run it again"
            ) from None
        except OperationalError as exc:
            raise fail(f"error: database: {str(exc.orig).strip().splitlines()[0]}") from None
        except UnicodeEncodeError as exc:  # raised while writing: the transaction rolls back
            raise fail(not_utf8(exc.object if isinstance(exc.object, str) else "?")) from None


@contextmanager
def transaction(check_schema: bool = True) -> Iterator[Session]:
    """One transaction of the store's commands, committed when the command succeeds."""
    with store_opened(check_schema) as the_root, the_root.sessions.begin() as session:
        yield session
