"""Commands of the subscriber store: database, partners, lists, subscribers, suppression, audience.

Thin wrappers over `subscribers.*`: each command opens one transaction, calls the
library, and prints a short result (or JSON with `--json`). Errors of the store
become one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mailer import db
from mailer.cli.common import fail, opened
from mailer.compose import Root
from mailer.people import removals
from mailer.people.privacy import erase_person, export_everything
from subscribers import repository as repo
from subscribers.audience import Audience, check_audience, count_by_country_and_partner
from subscribers.countries import country_name, normalise_country
from subscribers.csvio import export_csv, import_csv
from subscribers.errors import ImportRejected
from subscribers.models import Subscriber, SubscriberStatus
from subscribers.privacy import subscriber_record, subscription_records
from subscribers.suppression import is_suppressed, list_suppressions, suppress, unsuppress

out = Console(highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _split(values: list[str] | None) -> tuple[str, ...]:
    """`--country VN,LA --country TH` -> ('VN', 'LA', 'TH')."""
    items: list[str] = []
    for value in values or []:
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(items)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _not_utf8(text: str) -> str:
    """The message for text a terminal that is not UTF-8 handed over (0xE9 -> '\\udce9')."""
    return f"error: {text!r} is not UTF-8 text (is the terminal set to UTF-8?)"


@contextmanager
def _opened(check_schema: bool = True) -> Iterator[Root]:
    """The composition root, with import rejections and races as one line on stderr."""
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
            raise fail(_not_utf8(exc.object if isinstance(exc.object, str) else "?")) from None


@contextmanager
def _transaction(check_schema: bool = True) -> Iterator[Session]:
    with _opened(check_schema) as the_root, the_root.sessions.begin() as session:
        yield session


# --- db -----------------------------------------------------------------------------------

db_app = typer.Typer(help="Create and upgrade the database schema.", no_args_is_help=True)


@db_app.command("upgrade", epilog="Example: mailer db upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the latest migration (safe to run again)."""
    with _opened(check_schema=False) as the_root:
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
    with _opened(check_schema=False) as the_root:
        current = db.current_revision(the_root.engine)
        head = db.head_revision()
        url = the_root.engine.url.render_as_string(hide_password=True)
        state = "up to date" if current == head else "upgrade due: run `mailer db upgrade`"
        out.print(f"database: {url}\nrevision: {current or 'empty'} (latest {head}): {state}")


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
    with _transaction() as session:
        partner = repo.add_partner(session, name, country)
        out.print(f"added partner {partner.id}: {partner.name} ({partner.country or '-'})")


@partners_app.command("list", epilog="Example: mailer partners list --json")
def partners_list(as_json: JsonOpt = False) -> None:
    """List partners with how many subscribers each has."""
    with _transaction() as session:
        counts = {
            row.partner_id: row.count
            for row in session.execute(
                select(Subscriber.partner_id, func.count().label("count")).group_by(
                    Subscriber.partner_id
                )
            )
        }
        rows: list[dict[str, Any]] = [
            {"id": p.id, "name": p.name, "country": p.country, "subscribers": counts.get(p.id, 0)}
            for p in repo.list_partners(session)
        ]
    if as_json:
        _print_json(rows)
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
    with _transaction() as session:
        kwargs: dict[str, Any] = {"name": name}
        if country is not None:
            kwargs["country"] = country
        updated = repo.update_partner(session, partner, **kwargs)
        out.print(f"partner {updated.id}: {updated.name} ({updated.country or '-'})")


@partners_app.command("remove", epilog='Example: mailer partners remove "Green Delta"')
def partners_remove(partner: Annotated[str, typer.Argument(help="Name or id.")]) -> None:
    """Delete a partner; its contacts stay, with no partner."""
    with _transaction() as session:
        repo.remove_partner(session, partner)
        out.print(f"removed partner {partner}")


# --- lists --------------------------------------------------------------------------------

lists_app = typer.Typer(
    help=(
        "Mailing lists people subscribe to. A public list is offered on the preferences "
        "page and its campaigns go into the public archive; a private list (the default "
        "for a new list) is shown only to the people on it, and campaigns that reach it "
        "stay out of the archive."
    ),
    no_args_is_help=True,
)

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
    with _transaction() as session:
        created = repo.add_list(session, slug, name, description, public=public)
        out.print(f"added {_visibility(created.public)} list {created.slug}: {created.name}")


@lists_app.command("list", epilog="Example: mailer lists list --json")
def lists_list(as_json: JsonOpt = False) -> None:
    """List lists with their visibility and their active and unsubscribed counts."""
    with _transaction() as session:
        rows: list[dict[str, Any]] = [
            {
                "slug": c.slug,
                "name": c.name,
                "public": c.public,
                "active": c.active,
                "unsubscribed": c.unsubscribed,
            }
            for c in repo.list_counts(session)
        ]
    if as_json:
        _print_json(rows)
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
    with _transaction() as session:
        updated = repo.update_list(session, slug, name=name, description=description, public=public)
        out.print(f"list {updated.slug}: {updated.name} ({_visibility(updated.public)})")


@lists_app.command(
    "remove",
    epilog="Example: mailer lists remove old-list --yes",
    help="Remove a list. A list no campaign used is deleted with its subscriptions (the "
    "subscribers stay). A list any campaign used is archived instead: its active "
    "subscriptions end, it is offered nowhere again, and the campaigns that used it keep "
    "their audience, ledger, archive entry and web copy. Without --yes, says what would "
    "be lost and changes nothing.",
)
def lists_remove(
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: subscriptions end.")] = False,
) -> None:
    with _transaction() as session:
        if not yes:
            plan = removals.list_consequences(removals.list_removal(session, slug))
            raise fail(
                f"error: removing list {slug}: " + " ".join(plan) + " Pass --yes to confirm."
            )
        done = removals.remove_list(session, slug)
    if done.archives:
        out.print(
            f"archived list {done.slug}: {removals.plural(done.active, 'active subscription')}"
            f" ended; kept for the {removals.plural(done.campaigns, 'campaign')} that used it"
        )
    else:
        subscriptions = removals.plural(done.active + done.unsubscribed, "subscription")
        out.print(f"removed list {done.slug} and its {subscriptions}")


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
            raise fail(_not_utf8(pair))
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
    with _transaction() as session:
        subscriber = repo.add_subscriber(
            session,
            email,
            name=name,
            country=country,
            partner=partner,
            language=language,
            timezone=timezone,
            attributes=_attributes(attr),
            lists=_split(lists),
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
        _print_json(data)
    else:
        out.print(f"added subscriber {data['id']}: {data['email']} ({data['timezone']})")


@subscribers_app.command("show", epilog="Example: mailer subscribers show an@example.org --json")
def subscribers_show(
    subscriber: Annotated[str, typer.Argument(help="Address or id.")], as_json: JsonOpt = False
) -> None:
    """Show one subscriber with their subscriptions and consent records."""
    with _transaction() as session:
        data = _subscriber_data(session, repo.get_subscriber(session, subscriber))
    if as_json:
        _print_json(data)
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
    with _transaction() as session:
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
        _print_json(data)
    else:
        out.print(f"updated subscriber {data['id']}: {data['email']}")


@subscribers_app.command("remove", epilog="Example: mailer subscribers remove an@example.org")
def subscribers_remove(subscriber: Annotated[str, typer.Argument(help="Address or id.")]) -> None:
    """Delete a subscriber and their subscriptions (to forget them for good, use `erase`)."""
    with _transaction() as session:
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
    with _transaction() as session:
        wanted = None
        if status is not None:
            try:
                wanted = SubscriberStatus(status)
            except ValueError:
                raise fail(
                    f"error: unknown status {status!r}: "
                    "use active, unsubscribed, bounced or complained"
                ) from None
        found = repo.search_subscribers(
            session,
            text,
            country=country,
            partner=partner,
            list_slug=list_slug,
            status=wanted,
            limit=limit,
        )
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
        _print_json(rows)
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
    with _transaction() as session:
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
        _print_json(report.as_dict())
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
    statuses = [SubscriberStatus.ACTIVE] if active_only else None
    with _transaction() as session:
        # Unknown filters are errors (as in `mailer audience`), found before the file is made.
        if list_slug:
            repo.get_list(session, list_slug)
        if country:
            country = normalise_country(country)
        if partner:
            partner = repo.get_partner(session, partner).name
        if file == "-":
            count = export_csv(
                session,
                sys.stdout,
                list_slug=list_slug,
                country=country,
                partner=partner,
                statuses=statuses,
            )
            sys.stdout.flush()
            typer.echo(f"{count} subscribers exported", err=True)
            return
        try:
            handle = open(file, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise fail(f"error: {file}: cannot write: {exc.strerror}") from None
        with handle:
            count = export_csv(
                session,
                handle,
                list_slug=list_slug,
                country=country,
                partner=partner,
                statuses=statuses,
            )
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
    with _transaction() as session:
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
    with _transaction() as session:
        target = repo.get_subscriber(session, subscriber)
        repo.resubscribe(session, target.id, _split(lists) or None, source=consent)
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
    with _transaction() as session:
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
    with _transaction() as session:
        result = erase_person(session, email)
    what = "subscriber deleted" if result.subscriber_deleted else "no subscriber held"
    out.print(
        f"{result.email}: {what}, {result.subscriptions_deleted} subscription(s) deleted, "
        f"{result.other_rows_changed} delivery record(s) anonymised; hash kept on the "
        "suppression list"
    )


# --- suppression --------------------------------------------------------------------------

suppression_app = typer.Typer(help="Addresses never to be mailed again.", no_args_is_help=True)


@suppression_app.command(
    "add", epilog='Example: mailer suppression add x@example.org --reason "asked by phone"'
)
def suppression_add(
    email: str, reason: Annotated[str, typer.Option(help="Why.")] = "added by hand"
) -> None:
    """Suppress an address (it need not be a subscriber)."""
    with _transaction() as session:
        entry = suppress(session, email, reason)
        out.print(f"suppressed {entry.email}: {entry.reason}")


@suppression_app.command("remove", epilog="Example: mailer suppression remove x@example.org")
def suppression_remove(email: str) -> None:
    """Remove an address from the suppression list."""
    with _transaction() as session:
        unsuppress(session, email)
        out.print(f"{email} can be mailed again")


@suppression_app.command("list", epilog="Example: mailer suppression list --json")
def suppression_list(
    limit: Annotated[int | None, typer.Option(min=1)] = None, as_json: JsonOpt = False
) -> None:
    """List suppressed addresses, newest first (erased people show only as a hash)."""
    with _transaction() as session:
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
        _print_json(rows)
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
    with _transaction() as session:
        suppressed = is_suppressed(session, email)
    out.print(f"{email}: {'suppressed' if suppressed else 'not suppressed'}")
    if not suppressed:
        raise typer.Exit(1)


# --- audience -----------------------------------------------------------------------------


def _partner_name(session: Session, name: str) -> str:
    """The stored name of a partner given in any case (unknown names are checked later)."""
    partner = repo.find_partner(session, name)
    return partner.name if partner else name.strip()


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
    with _transaction() as session:
        selection = Audience(
            lists=tuple(slug.lower() for slug in _split(lists)),
            countries=tuple(normalise_country(c) for c in _split(countries)),
            partners=tuple(_partner_name(session, p) for p in partners or [] if p.strip()),
            exclude_lists=tuple(slug.lower() for slug in _split(exclude)),
        )
        check_audience(session, selection)
        counts = count_by_country_and_partner(session, selection)
    total = sum(c.count for c in counts)
    if as_json:
        _print_json(
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
    """Add this area's commands to the root command."""
    app.add_typer(db_app, name="db")
    app.add_typer(partners_app, name="partners")
    app.add_typer(lists_app, name="lists")
    app.add_typer(subscribers_app, name="subscribers")
    app.add_typer(suppression_app, name="suppression")
    app.command(
        "audience",
        epilog="Example: mailer audience --list newsletter --country VN,LA --exclude-list staff",
    )(audience)
