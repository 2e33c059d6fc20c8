"""`mailer subscribers privacy-export`, `erase` and `purge-unconfirmed`: data protection.

Apart from the group's other commands (mailer.cli.subscribers) because they alone
reach into the delivery ledger (mailer.people.privacy) and the sign-ups.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mailer.cli.common import fail, opened, transaction
from mailer.people.privacy import erase_person, export_everything
from mailer.people.signup_purge import purge  # the scheduler's hourly chore runs it too

out = Console(highlight=False, soft_wrap=True)
subscribers_app = typer.Typer()


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
    """Add these commands to `mailer subscribers` (its help is in the registry)."""
    app.add_typer(subscribers_app, name="subscribers")
