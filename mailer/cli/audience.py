"""`mailer audience`: who a campaign would reach, per country and partner."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailer.app.audiences import audience_from
from mailer.cli.common import JsonOpt, print_json, transaction
from subscribers.audience import check_audience, count_by_country_and_partner
from subscribers.countries import country_name

out = Console(highlight=False, soft_wrap=True)


# --- audience -----------------------------------------------------------------------------


def audience(
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="List slug(s); default: every list.")
    ] = None,
    countries: Annotated[
        list[str] | None, typer.Option("--country", help="Codes or names, e.g. VN,LA.")
    ] = None,
    partners: Annotated[
        list[str] | None, typer.Option("--partner", help="Partner name (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude-list", help="Leave out members of these lists.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count who would receive a campaign, per country and partner.

    Only active subscribers with an active subscription are counted; suppressed,
    unsubscribed, bounced and complained addresses never are.
    """
    with transaction() as session:
        selection = audience_from(session, lists, countries, partners, exclude)
        check_audience(session, selection)
        counts = count_by_country_and_partner(session, selection)
    total = sum(c.count for c in counts)
    if as_json:
        print_json(
            {
                "audience": json.loads(selection.to_json()),
                "total": total,
                "counts": [
                    {"country": c.country, "partner": c.partner, "count": c.count} for c in counts
                ],
            }
        )
        return
    table = Table("country", "partner", "recipients", title=selection.describe())
    for c in counts:
        label = f"{c.country} {country_name(c.country)}" if c.country else "-"
        table.add_row(label, c.partner or "-", str(c.count))
    out.print(table)
    out.print(f"total: {total}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.command(
        "audience",
        epilog="Example: mailer audience --list newsletter --country VN,LA --exclude-list staff",
    )(audience)
