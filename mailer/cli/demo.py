"""`mailer demo`: the whole path from draft to inbox on this machine (see mailer.demo)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mailer import urls
from mailer.cli.common import fail, friendly_errors, root
from mailer.compose import Root
from mailer.delivery.capture import start_capture
from mailer.demo import DEMO_ADMIN, EXAMPLES_DIR, DemoPlace, prepare

out = Console(highlight=False)


def _send_until_idle(the_root: Root) -> Callable[[], None]:
    """Run a worker of this installation until nothing is due."""
    return lambda: the_root.worker().run(threading.Event(), until_idle=True)


def demo_command(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the web app afterwards.")
    ] = True,
    examples: Annotated[
        Path, typer.Option(help="Folder with issues/*.yaml and subscribers.csv.", file_okay=False)
    ] = EXAMPLES_DIR,
    env_file: Annotated[Path | None, typer.Option(help="Settings file (default: .env).")] = None,
) -> None:
    """Set up a demo installation, send both seed issues to a local capture server
    (MAILER_SMTP_PORT, default 2525), and serve the web app (MAILER_WEB_HOST and
    MAILER_WEB_PORT, default 127.0.0.1:8000).

    Idempotent: run it again and nothing is sent twice. Everything lives in the data
    folder (MAILER_DATA_DIR, default ./data); delete it to start over.
    """
    with friendly_errors():
        the_root = root(env_file)
        settings = the_root.settings
        if settings.smtp_host not in ("127.0.0.1", "localhost"):
            raise fail(
                f"error: the demo sends to a local capture server, but MAILER_SMTP_HOST is "
                f"{settings.smtp_host}; unset it (or use another --env-file) for the demo"
            )
        capture_dir = settings.resolved_capture_dir
        try:
            capture = start_capture(capture_dir, settings.smtp_host, settings.smtp_port)
        except (OSError, RuntimeError) as exc:
            raise fail(
                f"error: cannot start the capture server on {settings.smtp_host}:"
                f"{settings.smtp_port} ({exc}); is another `mailer capture` or demo running? "
                "Set MAILER_SMTP_PORT to a free port."
            ) from None
        try:
            report = prepare(
                the_root.sessions,
                the_root.renderer(),
                DemoPlace.of(settings),
                upgrade=the_root.upgrade_database,
                send=_send_until_idle(the_root),
                examples=examples,
                say=_step,
            )
            base = settings.public_base_url
            out.print()
            out.print(f"[bold]Rendered[/]  {', '.join(str(p) for p in report.rendered)}")
            for campaign_id, name, state in report.campaigns:
                out.print(f"[bold]Campaign {campaign_id}[/]  {name}: {state}")
            out.print(f"[bold]Captured[/]  {report.captured} messages in {capture_dir}")
            out.print("           (list them with `mailer capture --list`)")
            if report.admin_password:
                out.print(
                    f"[bold]Admin[/]     {DEMO_ADMIN}  password: {report.admin_password}"
                    "  (shown once; change it with `mailer user set-password`)"
                )
            else:
                out.print(f"[bold]Admin[/]     {DEMO_ADMIN} (created by an earlier demo run)")
            if settings.insecure:
                out.print(
                    "[yellow]note[/]: the development MAILER_SECRET_KEY is in use; "
                    "set your own before real use"
                )
            if not serve:
                return
            from mailer.serve import Service

            out.print()
            out.print(f"[bold]Web app[/]   {base}/  (editors log in here; previews, campaigns)")
            out.print(f"[bold]Archive[/]   {urls.archive(base)}")
            smtp = f"{settings.smtp_host}:{settings.smtp_port}"
            out.print(f"[bold]SMTP[/]      capture server on {smtp}")
            out.print("Press Ctrl-C to stop.")
            Service(the_root, settings.web_host, settings.web_port).run()
        finally:
            capture.stop()
            the_root.close()


def _step(line: str) -> None:
    out.print(f"[dim]-> {line}[/]")


def register(app: typer.Typer) -> None:
    app.command(
        "demo",
        epilog="Example: mailer demo            (then open the address it prints: "
        "http://MAILER_WEB_HOST:MAILER_WEB_PORT/, by default http://127.0.0.1:8000/)\n\n"
        "Example: mailer demo --no-serve (prepare and send, then exit)",
    )(demo_command)
