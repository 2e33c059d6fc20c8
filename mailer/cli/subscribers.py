"""`mailer subscribers`: add, show, edit, remove, search, import, export, unsubscribe,
resubscribe, privacy export and erase.

Thin wrappers over `subscribers.*` and the application layer's filters
(`mailer.app.subscribers`): each command opens one transaction, calls the library,
and prints a short result (or JSON with `--json`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from mailer.app import subscribers as finder
from mailer.app.audiences import split
from mailer.cli.common import JsonOpt, fail, not_utf8, opened, print_json, transaction
from mailer.people.privacy import erase_person, export_everything
from mailer.people.signup_purge import purge  # the scheduler's hourly chore runs it too
from subscribers import repository as repo
from subscribers.csvio import export_csv, import_csv
from subscribers.models import Subscriber
from subscribers.privacy import subscriber_record, subscription_records
from subscribers.suppression import is_suppressed

out = Console(highlight=False, soft_wrap=True)


# --- subscribers --------------------------------------------------------------------------

subscribers_app = typer.Typer(
    help="Subscribers: add, find, edit, import, export.", no_args_is_help=True
)


def _attributes(pairs: list[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"error: --attr {pair!r}: use KEY=VALUE, e.g. --attr title=Dr.")
        if pair != pair.encode("utf-8", "replace").decode("utf-8"):  # stored as JSON escapes
            raise fail(not_utf8(pair))
        result[key.strip()] = value
    return result


def _subscriber_data(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    return {
        **subscriber_record(session, subscriber),
        "suppressed": is_suppressed(session, subscriber.email),
        "subscriptions": subscription_records(session, subscriber.id),
    }


@subscribers_app.command(
    "add",
    epilog="Example: mailer subscribers add an@example.org --name 'Nguyễn Văn An' "
    "--country 'Viet Nam' --partner 'Green Delta' --list newsletter",
)
def subscribers_add(
    email: str,
    name: Annotated[str | None, typer.Option(help="Name in any script.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO code or name.")] = None,
    partner: Annotated[str | None, typer.Option(help="Partner name or id.")] = None,
    language: Annotated[str | None, typer.Option(help="Language tag, e.g. en, zh, vi.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone; default: from the country.")
    ] = None,
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="Subscribe to this list (repeatable).")
    ] = None,
    attr: Annotated[list[str] | None, typer.Option(help="Extra KEY=VALUE (repeatable).")] = None,
    consent: Annotated[str, typer.Option(help="Where consent was given.")] = "manual",
    as_json: JsonOpt = False,
) -> None:
    """Add one subscriber (optionally to lists, recording the consent source)."""
    with transaction() as session:
        subscriber = repo.add_subscriber(
            session,
            email,
            name=name,
            country=country,
            partner=partner,
            language=language,
            timezone=timezone,
            attributes=_attributes(attr),
            lists=split(lists),
            consent_source=consent,
        )
        data = _subscriber_data(session, subscriber)
    if data["suppressed"]:  # e.g. an erased person added again by hand
        typer.echo(
            f"warning: {data['email']} is on the suppression list and will not be mailed"
            f" (mailer suppression remove {data['email']}, if they asked to come back)",
            err=True,
        )
    if as_json:
        print_json(data)
    else:
        out.print(f"added subscriber {data['id']}: {data['email']} ({data['timezone']})")


@subscribers_app.command("show", epilog="Example: mailer subscribers show an@example.org --json")
def subscribers_show(
    subscriber: Annotated[str, typer.Argument(help="Address or id.")], as_json: JsonOpt = False
) -> None:
    """Show one subscriber with their subscriptions and consent records."""
    with transaction() as session:
        data = _subscriber_data(session, repo.get_subscriber(session, subscriber))
    if as_json:
        print_json(data)
        return
    for key in ("id", "email", "name", "country", "partner", "language", "timezone", "status"):
        out.print(f"{key:>10}: {data[key] if data[key] is not None else '-'}")
    if data["suppressed"]:
        out.print(" suppressed: yes (never mailed)")
    for key, value in data["attributes"].items():
        out.print(f"{key:>10}: {value}")
    for s in data["subscriptions"]:
        consent = f"consent {s['consent_source']}, {s['consent_at']}"
        out.print(f"      list: {s['list']} {s['status']} ({consent})")


@subscribers_app.command(
    "edit", epilog="Example: mailer subscribers edit an@example.org --country LA --name 'An'"
)
def subscribers_edit(
    subscriber: Annotated[str, typer.Argument(help="Address or id.")],
    email: Annotated[str | None, typer.Option(help="New address.")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    country: Annotated[str | None, typer.Option(help="'' clears it.")] = None,
    partner: Annotated[str | None, typer.Option(help="'' clears it.")] = None,
    language: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    status: Annotated[
        str | None, typer.Option(help="active, unsubscribed, bounced or complained.")
    ] = None,
    attr: Annotated[list[str] | None, typer.Option(help="Set KEY=VALUE (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a subscriber's fields; a new country moves a default time zone with it."""
    with transaction() as session:
        kwargs: dict[str, Any] = {}
        if country is not None:
            kwargs["country"] = country
        if partner is not None:
            kwargs["partner"] = partner
        updated = repo.update_subscriber(
            session,
            subscriber,
            email=email,
            name=name,
            language=language,
            timezone=timezone,
            status=status,
            attributes=_attributes(attr) or None,
            **kwargs,
        )
        data = _subscriber_data(session, updated)
    if as_json:
        print_json(data)
    else:
        out.print(f"updated subscriber {data['id']}: {data['email']}")


@subscribers_app.command("remove", epilog="Example: mailer subscribers remove an@example.org")
def subscribers_remove(subscriber: Annotated[str, typer.Argument(help="Address or id.")]) -> None:
    """Delete a subscriber and their subscriptions (to forget them for good, use `erase`)."""
    with transaction() as session:
        repo.remove_subscriber(session, subscriber)
        out.print(f"removed subscriber {subscriber}")


@subscribers_app.command(
    "search", epilog="Example: mailer subscribers search nguyen --country VN --list newsletter"
)
def subscribers_search(
    text: Annotated[str, typer.Argument(help="Part of the address or name.")] = "",
    country: Annotated[str | None, typer.Option()] = None,
    partner: Annotated[str | None, typer.Option()] = None,
    list_slug: Annotated[str | None, typer.Option("--list", help="Active on this list.")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Find subscribers by address or name (case-insensitive), with filters."""
    with transaction() as session:
        wanted = finder.SubscriberFilter.parse(
            text, country=country, partner=partner, list_slug=list_slug, status=status
        )
        found = finder.search(session, wanted, limit=limit)
        rows: list[dict[str, Any]] = [
            {
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "country": s.country,
                "partner": s.partner.name if s.partner else None,
                "status": s.status.value,
                "timezone": s.timezone,
            }
            for s in found
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "email", "name", "country", "partner", "status")
    for r in rows:
        table.add_row(
            str(r["id"]), r["email"], r["name"], r["country"] or "", r["partner"] or "", r["status"]
        )
    out.print(table)
    out.print(f"{len(rows)} found" + (f" (limit {limit})" if len(rows) == limit else ""))


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


@subscribers_app.command(
    "unsubscribe", epilog="Example: mailer subscribers unsubscribe an@example.org --list newsletter"
)
def subscribers_unsubscribe(
    subscriber: Annotated[str, typer.Argument(help="Address or id.")],
    list_slug: Annotated[
        str | None, typer.Option("--list", help="Only this list; default: every list.")
    ] = None,
) -> None:
    """Unsubscribe from one list, or from everything (the consent record is kept)."""
    with transaction() as session:
        target = repo.get_subscriber(session, subscriber)
        changed = repo.unsubscribe(session, target.id, list_slug, source="cli")
        out.print(f"{target.email}: {changed} subscription(s) ended")


@subscribers_app.command(
    "resubscribe", epilog="Example: mailer subscribers resubscribe an@example.org --list newsletter"
)
def subscribers_resubscribe(
    subscriber: Annotated[str, typer.Argument(help="Address or id.")],
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="Lists (default: the ones they were on).")
    ] = None,
    consent: Annotated[str, typer.Option(help="Where the new consent was given.")] = "manual",
) -> None:
    """Make an unsubscribed person active again, with a new consent record."""
    with transaction() as session:
        target = repo.get_subscriber(session, subscriber)
        repo.resubscribe(session, target.id, split(lists) or None, source=consent)
        out.print(f"{target.email}: active again")


@subscribers_app.command(
    "privacy-export",
    epilog="Example: mailer subscribers privacy-export an@example.org -o an.json",
)
def subscribers_privacy_export(
    email: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Everything held about one address, as JSON (a data-protection access request)."""
    with transaction() as session:
        data = export_everything(session, email)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
    else:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise fail(f"error: {output}: cannot write: {exc.strerror}") from None
        out.print(f"wrote {output}")


@subscribers_app.command("erase", epilog="Example: mailer subscribers erase an@example.org --yes")
def subscribers_erase(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Erase a person: delete their data; only a hash stays, so they are never mailed again."""
    if not yes:
        raise fail("error: erasing cannot be undone; pass --yes to confirm")
    with transaction() as session:
        result = erase_person(session, email)
    what = "subscriber deleted" if result.subscriber_deleted else "no subscriber held"
    out.print(
        f"{result.email}: {what}, {result.subscriptions_deleted} subscription(s) deleted, "
        f"{result.other_rows_changed} delivery record(s) anonymised; hash kept on the "
        "suppression list"
    )


@subscribers_app.command(
    "purge-unconfirmed", epilog="Example: mailer subscribers purge-unconfirmed --days 7"
)
def purge_unconfirmed(
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            min=1,
            help="Delete sign-ups unconfirmed after this many days "
            "(default: MAILER_SIGNUP_EXPIRY_DAYS, 7).",
        ),
    ] = None,
) -> None:
    """Delete sign-ups whose confirmation link expired unused, and old throttle counts."""
    with opened() as the_root:
        done = purge(the_root.sessions, days or the_root.settings.signup_expiry_days)
    typer.echo(
        f"deleted {done.signups} unconfirmed sign-up{'s' if done.signups != 1 else ''}"
        f" and {done.throttle_rows} old throttle count{'s' if done.throttle_rows != 1 else ''}"
    )


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.add_typer(subscribers_app, name="subscribers")
