"""`mailer partners`: partner organisations (add, list with contact counts, edit, remove)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mailer.cli.common import JsonOpt, print_json, transaction
from subscribers import partners as partner_store

out = Console(highlight=False, soft_wrap=True)


# --- partners -----------------------------------------------------------------------------

partners_app = typer.Typer(help="Partner organisations.", no_args_is_help=True)


@partners_app.command(
    "add", epilog='Example: mailer partners add "Green Mekong Institute" --country "Lao PDR"'
)
def partners_add(
    name: Annotated[str, typer.Argument(help="Organisation name, in any script.")],
    country: Annotated[
        str | None, typer.Option(help="ISO code or name, e.g. VN or Viet Nam.")
    ] = None,
) -> None:
    """Add a partner organisation."""
    with transaction() as session:
        partner = partner_store.add_partner(session, name, country)
        out.print(f"added partner {partner.id}: {partner.name} ({partner.country or '-'})")


@partners_app.command("list", epilog="Example: mailer partners list --json")
def partners_list(as_json: JsonOpt = False) -> None:
    """List partners with how many subscribers each has."""
    with transaction() as session:
        counts = partner_store.partner_contact_counts(session)
        rows: list[dict[str, Any]] = [
            {"id": p.id, "name": p.name, "country": p.country, "subscribers": counts.get(p.id, 0)}
            for p in partner_store.list_partners(session)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "country", "subscribers")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["country"] or "", str(row["subscribers"]))
    out.print(table)


@partners_app.command("edit", epilog='Example: mailer partners edit "Green Delta" --country VN')
def partners_edit(
    partner: Annotated[str, typer.Argument(help="Name or id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    country: Annotated[str | None, typer.Option(help="New country ('' to clear).")] = None,
) -> None:
    """Rename a partner or change its country."""
    with transaction() as session:
        kwargs: dict[str, Any] = {"name": name}
        if country is not None:
            kwargs["country"] = country
        updated = partner_store.update_partner(session, partner, **kwargs)
        out.print(f"partner {updated.id}: {updated.name} ({updated.country or '-'})")


@partners_app.command("remove", epilog='Example: mailer partners remove "Green Delta"')
def partners_remove(partner: Annotated[str, typer.Argument(help="Name or id.")]) -> None:
    """Delete a partner; its contacts stay, with no partner."""
    with transaction() as session:
        partner_store.remove_partner(session, partner)
        out.print(f"removed partner {partner}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.add_typer(partners_app, name="partners")
