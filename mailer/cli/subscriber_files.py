"""`mailer subscribers import` and `export`: subscribers from and to CSV files.

Apart from the group's other commands (mailer.cli.subscribers) because they alone
need the CSV import and export (subscribers.csvimport, subscribers.csvexport).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mailer.app import subscribers as finder
from mailer.cli.common import JsonOpt, fail, print_json, transaction
from subscribers.csvexport import export_csv
from subscribers.csvimport import import_csv

out = Console(highlight=False, soft_wrap=True)
subscribers_app = typer.Typer()


@subscribers_app.command(
    "import",
    epilog="Example: mailer subscribers import partners.csv --list newsletter "
    "--partner 'Green Delta' --dry-run",
)
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header row naming an email column.")],
    list_slug: Annotated[
        str | None, typer.Option("--list", help="Subscribe every row to this list.")
    ] = None,
    partner: Annotated[str | None, typer.Option(help="Partner for rows without one.")] = None,
    country: Annotated[str | None, typer.Option(help="Country for rows without one.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="File encoding if not UTF-8, e.g. cp1252, gb18030.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Check and report; write nothing.")] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the good rows and report the bad ones.")
    ] = False,
    create_partners: Annotated[
        bool, typer.Option(help="Create partners the file names that do not exist yet.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import subscribers from CSV: all or nothing, duplicates merged, safe to run twice.

    Columns (case-insensitive, with aliases): email (e-mail, mail), name (full name,
    or first name + last name), country, partner (organisation), language, timezone,
    status, lists, attributes; any other column is kept as an attribute. Nobody who
    unsubscribed is subscribed again.
    """
    with transaction() as session:
        report = import_csv(
            session,
            file,
            list_slug=list_slug,
            partner=partner,
            country=country,
            encoding=encoding,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            create_partners=create_partners,
        )
    if as_json:
        print_json(report.as_dict())
        return
    for problem in report.problems:
        typer.echo(f"skipped {problem}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for line, first, email in report.duplicates:
        out.print(f"{file}:{line}: {email} merged with line {first}")
    typer.echo(report.summary())


@subscribers_app.command(
    "export", epilog="Example: mailer subscribers export subscribers.csv --list newsletter"
)
def subscribers_export(
    file: Annotated[str, typer.Argument(help="Output file, or - for standard output.")] = "-",
    list_slug: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
    country: Annotated[str | None, typer.Option()] = None,
    partner: Annotated[str | None, typer.Option()] = None,
    active_only: Annotated[bool, typer.Option(help="Only active subscribers.")] = False,
) -> None:
    """Export subscribers as CSV (UTF-8, the columns import reads; formulas neutralised)."""
    wanted = finder.SubscriberFilter.parse(
        country=country,
        partner=partner,
        list_slug=list_slug,
        status="active" if active_only else None,
    )
    with transaction() as session:
        # Unknown filters are errors (as in `mailer audience`), found before the file is made.
        resolved = finder.resolve(session, wanted, removed_lists=False)
        options = resolved.export_options(active_on_list=False)
        if file == "-":
            count = export_csv(session, sys.stdout, **options)
            sys.stdout.flush()
            typer.echo(f"{count} subscribers exported", err=True)
            return
        try:
            handle = open(file, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise fail(f"error: {file}: cannot write: {exc.strerror}") from None
        with handle:
            count = export_csv(session, handle, **options)
        out.print(f"{count} subscribers exported to {file}")


def register(app: typer.Typer) -> None:
    """Add these commands to `mailer subscribers` (its help is in the registry)."""
    app.add_typer(subscribers_app, name="subscribers")
