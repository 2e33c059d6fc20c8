"""`mailer subscribers purge-unconfirmed`: delete sign-ups nobody confirmed in time.

The scheduler runs the same purge once an hour (`mailer.people.signups.PurgeChore`);
this command is for installations without one, or to purge now.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mailer.cli.common import opened
from mailer.people.signups import purge


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
    with opened() as root:
        done = purge(root.sessions, days or root.settings.signup_expiry_days)
    typer.echo(
        f"deleted {done.signups} unconfirmed sign-up{'s' if done.signups != 1 else ''}"
        f" and {done.throttle_rows} old throttle count{'s' if done.throttle_rows != 1 else ''}"
    )


def register(app: typer.Typer) -> None:
    """Add `purge-unconfirmed` to the `subscribers` group (registered before this)."""
    for group in app.registered_groups:
        if group.name == "subscribers" and group.typer_instance is not None:
            group.typer_instance.command(
                "purge-unconfirmed",
                epilog="Example: mailer subscribers purge-unconfirmed --days 7",
            )(purge_unconfirmed)
            return
    raise RuntimeError("register the `subscribers` group (mailer.cli.store) first")
