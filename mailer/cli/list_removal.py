"""`mailer lists remove`: remove a list, or archive it if a campaign used it.

Apart from the group's other commands (mailer.cli.lists) because it alone needs
mailer.people.removals (what a destructive action takes with it: the ledger, the
campaigns), which `mailer lists list` should not load.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mailer.cli.common import fail, transaction
from mailer.people import removals

out = Console(highlight=False, soft_wrap=True)
lists_app = typer.Typer()


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
    with transaction() as session:
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


def register(app: typer.Typer) -> None:
    """Add this command to `mailer lists` (its help is in the registry)."""
    app.add_typer(lists_app, name="lists")
