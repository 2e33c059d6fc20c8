"""`mailer lists`: mailing lists, public or private (add, list, edit).

Removing (or archiving) a list is in mailer.cli.list_removal: it alone needs to know
what a removal takes with it (mailer.people.removals, and through it the ledger and
the campaigns), which `mailer lists list` should not load. The group's help is in
mailer.cli.main's registry."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mailer.cli.common import JsonOpt, print_json, transaction
from subscribers import mailing_lists

out = Console(highlight=False, soft_wrap=True)


# --- lists --------------------------------------------------------------------------------

lists_app = typer.Typer()

PUBLIC_HELP = (
    "Public: offered to every subscriber on the preferences page, and its campaigns "
    "published in the archive. Private: shown only to the people on it; campaigns "
    "sent to it are never published."
)


def _visibility(public: bool) -> str:
    return "public" if public else "private"


@lists_app.command(
    "add",
    epilog=(
        'Example: mailer lists add newsletter --name "LMEC Newsletter" --public\n\n'
        'Example: mailer lists add partners-only --name "Partners only" --private'
    ),
)
def lists_add(
    slug: Annotated[str, typer.Argument(help="Short id: lower-case letters, digits, '-'.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    description: Annotated[str, typer.Option(help="Shown on the preferences page.")] = "",
    public: Annotated[bool, typer.Option("--public/--private", help=PUBLIC_HELP)] = False,
) -> None:
    """Add a list (private unless --public)."""
    with transaction() as session:
        created = mailing_lists.add_list(session, slug, name, description, public=public)
        out.print(f"added {_visibility(created.public)} list {created.slug}: {created.name}")


@lists_app.command("list", epilog="Example: mailer lists list --json")
def lists_list(as_json: JsonOpt = False) -> None:
    """List lists with their visibility and their active and unsubscribed counts."""
    with transaction() as session:
        rows: list[dict[str, Any]] = [
            {
                "slug": c.slug,
                "name": c.name,
                "public": c.public,
                "active": c.active,
                "unsubscribed": c.unsubscribed,
            }
            for c in mailing_lists.list_counts(session)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("slug", "name", "visibility", "active", "unsubscribed")
    for row in rows:
        table.add_row(
            row["slug"],
            row["name"],
            _visibility(row["public"]),
            str(row["active"]),
            str(row["unsubscribed"]),
        )
    out.print(table)


@lists_app.command(
    "edit",
    epilog=(
        'Example: mailer lists edit newsletter --name "News"\n\n'
        "Example: mailer lists edit partners-only --private"
    ),
)
def lists_edit(
    slug: str,
    name: Annotated[str | None, typer.Option(help="New display name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    public: Annotated[
        bool | None,
        typer.Option("--public/--private", help=f"{PUBLIC_HELP} Default: unchanged."),
    ] = None,
) -> None:
    """Change a list's name, description or visibility."""
    with transaction() as session:
        updated = mailing_lists.update_list(
            session, slug, name=name, description=description, public=public
        )
        out.print(f"list {updated.slug}: {updated.name} ({_visibility(updated.public)})")


def register(app: typer.Typer) -> None:
    """Add these commands to `mailer lists` (its help is in the registry)."""
    app.add_typer(lists_app, name="lists")
