"""`mailer db`: create, upgrade and inspect the database schema."""

from __future__ import annotations

import typer
from rich.console import Console

from mailer import db
from mailer.cli.common import store_opened

out = Console(highlight=False, soft_wrap=True)


# --- db -----------------------------------------------------------------------------------

db_app = typer.Typer(help="Create and upgrade the database schema.", no_args_is_help=True)


@db_app.command("upgrade", epilog="Example: mailer db upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the latest migration (safe to run again)."""
    with store_opened(check_schema=False) as the_root:
        before = db.current_revision(the_root.engine)
        the_root.upgrade_database()
        after = db.current_revision(the_root.engine)
        url = the_root.engine.url.render_as_string(hide_password=True)
        if before == after:
            out.print(f"database {url} is up to date (revision {after})")
        else:
            out.print(f"database {url} upgraded from {before or 'empty'} to {after}")


@db_app.command("status", epilog="Example: mailer db status")
def db_status() -> None:
    """Show the database, its schema revision and whether an upgrade is due."""
    with store_opened(check_schema=False) as the_root:
        current = db.current_revision(the_root.engine)
        head = db.head_revision()
        url = the_root.engine.url.render_as_string(hide_password=True)
        state = "up to date" if current == head else "upgrade due: run `mailer db upgrade`"
        out.print(f"database: {url}\nrevision: {current or 'empty'} (latest {head}): {state}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.add_typer(db_app, name="db")
