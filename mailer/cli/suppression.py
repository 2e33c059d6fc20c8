"""`mailer suppression`: addresses never to be mailed again (add, remove, list, check)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mailer.cli.common import JsonOpt, print_json, transaction
from subscribers.suppression import is_suppressed, list_suppressions, suppress, unsuppress

out = Console(highlight=False, soft_wrap=True)


# --- suppression --------------------------------------------------------------------------

suppression_app = typer.Typer(help="Addresses never to be mailed again.", no_args_is_help=True)


@suppression_app.command(
    "add", epilog='Example: mailer suppression add x@example.org --reason "asked by phone"'
)
def suppression_add(
    email: str, reason: Annotated[str, typer.Option(help="Why.")] = "added by hand"
) -> None:
    """Suppress an address (it need not be a subscriber)."""
    with transaction() as session:
        entry = suppress(session, email, reason)
        out.print(f"suppressed {entry.email}: {entry.reason}")


@suppression_app.command("remove", epilog="Example: mailer suppression remove x@example.org")
def suppression_remove(email: str) -> None:
    """Remove an address from the suppression list."""
    with transaction() as session:
        unsuppress(session, email)
        out.print(f"{email} can be mailed again")


@suppression_app.command("list", epilog="Example: mailer suppression list --json")
def suppression_list(
    limit: Annotated[int | None, typer.Option(min=1)] = None, as_json: JsonOpt = False
) -> None:
    """List suppressed addresses, newest first (erased people show only as a hash)."""
    with transaction() as session:
        rows: list[dict[str, Any]] = [
            {
                "email": e.email,
                "hash": e.email_hash,
                "reason": e.reason,
                "created_at": e.created_at.isoformat(),
            }
            for e in list_suppressions(session, limit=limit)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("address", "reason", "since")
    for r in rows:
        table.add_row(
            r["email"] or f"(erased) {r['hash'][:12]}…", r["reason"], r["created_at"][:19]
        )
    out.print(table)


@suppression_app.command("check", epilog="Example: mailer suppression check x@example.org")
def suppression_check(email: str) -> None:
    """Exit 0 and say so if the address is suppressed (plain or erased), else exit 1."""
    with transaction() as session:
        suppressed = is_suppressed(session, email)
    out.print(f"{email}: {'suppressed' if suppressed else 'not suppressed'}")
    if not suppressed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.add_typer(suppression_app, name="suppression")
