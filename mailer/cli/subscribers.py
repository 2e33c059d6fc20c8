"""`mailer subscribers`: add, show, edit, remove, search, unsubscribe and resubscribe.

Thin wrappers over `subscribers.*` and the application layer's filters
(`mailer.app.subscribers`): each command opens one transaction, calls the library,
and prints a short result (or JSON with `--json`). The group's other commands live
where their imports do, so that `mailer subscribers show` loads neither the CSV
reader nor the ledger: import and export in mailer.cli.subscriber_files, the
data-protection commands in mailer.cli.subscriber_privacy (the group's help is in
mailer.cli.main's registry).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from mailer.app import subscribers as finder
from mailer.app.audiences import split
from mailer.cli.common import JsonOpt, fail, not_utf8, print_json, transaction
from subscribers import repository as repo
from subscribers.models import Subscriber
from subscribers.privacy import subscriber_record, subscription_records
from subscribers.suppression import is_suppressed

out = Console(highlight=False, soft_wrap=True)


# --- subscribers --------------------------------------------------------------------------

subscribers_app = typer.Typer()


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


def register(app: typer.Typer) -> None:
    """Add these commands to `mailer subscribers` (its help is in the registry)."""
    app.add_typer(subscribers_app, name="subscribers")
