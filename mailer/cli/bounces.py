"""`mailer bounces`: read delivery reports that come back after a relay accepted a message.

Thin wrappers over `mailer.delivery.bounces`; every error is one line on stderr and exit status 1.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from aiosmtpd.controller import Controller
from rich.console import Console

from mailer.cli.common import fail, opened, run_until_stopped
from mailer.delivery import bounces

out = Console(highlight=False, soft_wrap=True)

bounces_app = typer.Typer(
    help="Process bounces (delivery status reports) sent to the VERP address "
    "bounces+<token>@MAILER_SENDER_DOMAIN (set MAILER_BOUNCE_VERP=true), and abuse "
    "reports from mailbox providers' feedback loops.",
    no_args_is_help=True,
)


@bounces_app.command(
    "process",
    epilog="Examples: mailer bounces process ~/Maildir/.bounces   "
    "mailer bounces process returned.eml --dry-run   mailer bounces process data/capture",
)
def process_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help=".eml files, folders of them, a Maildir or an mbox file."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what each message is; change nothing.")
    ] = False,
) -> None:
    """Read returned messages and act on permanent failures and complaints.

    A permanent failure marks the subscriber bounced and suppresses the address, and
    its campaign counts the message as failed. An abuse report (ARF) marks the
    subscriber complained and suppresses the address. Delays and other mail change
    nothing.
    """
    with opened() as the_root:
        secret = the_root.settings.secret_key.get_secret_value()
        tally: Counter[str] = Counter()
        for path in paths:
            if not path.exists():
                raise fail(f"error: {path}: no such file or folder")
            try:
                found = list(bounces.messages_in(path))
            except (OSError, ValueError) as exc:
                raise fail(f"error: {path}: cannot read it: {exc}") from None
            for returned in found:
                bounce = bounces.read(returned.data, returned.envelope_to, secret)
                if dry_run:
                    done = f"{bounce.kind}: {bounce.status or '-'} {bounce.diagnostic}".strip()
                else:
                    with the_root.sessions.begin() as session:
                        done = bounces.apply(session, bounce)
                tally[bounce.kind] += 1
                out.print(f"{returned.source}: {done}", markup=False)
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(tally.items()))
        out.print(f"{sum(tally.values())} message(s): {summary or 'none'}", markup=False)


@bounces_app.command(
    "serve",
    epilog="Example: mailer bounces serve --port 2526 --also fbl@lmec.example.org   "
    "(then route bounces+* and the feedback loop's address here)",
)
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 2526,
    also: Annotated[
        list[str] | None,
        typer.Option(
            "--also",
            help="Take mail for this address too (where a feedback loop sends abuse "
            "reports); repeatable.",
        ),
    ] = None,
) -> None:
    """Take bounces over SMTP as they arrive.

    The server accepts mail for bounces+<token>@… (and the --also addresses) only,
    and acts on each report like `mailer bounces process`; point your MTA's bounce
    route and your feedback loops here.
    """
    with opened() as the_root:
        secret = the_root.settings.secret_key.get_secret_value()

        def record(bounce: bounces.Bounce) -> str:
            with the_root.sessions.begin() as session:
                done = bounces.apply(session, bounce)
            out.print(done, markup=False)
            return done

        run_until_stopped(
            Controller(bounces.BounceHandler(secret, record, also or ()), hostname=host, port=port),
            f"taking bounces on {host}:{port}",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(bounces_app, name="bounces")
