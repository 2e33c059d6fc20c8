"""`mailer preview`: the editor's live preview in a browser (mailer.authoring.preview).

A module of its own because it needs a web server (Starlette, uvicorn), which
`mailer check` and `mailer render` do not.
"""

from __future__ import annotations

import socket
import webbrowser
from typing import Annotated

import typer

from mailer.authoring.loader import MAX_FILE_BYTES, TOO_LARGE
from mailer.authoring.preview import serve
from mailer.cli.common import EnvOpt, IssueArg, fail, friendly_errors, root


def preview_command(
    issue: IssueArg,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 8025,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")
    ] = False,
    env_file: EnvOpt = None,
) -> None:
    """Serve a live preview: desktop and phone width and the text part, reloading on save."""
    settings = root(env_file, database=False).settings
    if not issue.is_file():
        raise fail(f"error: {issue}: no such file")
    if issue.stat().st_size > MAX_FILE_BYTES:  # as `check`, `render` and the web upload
        raise fail(f"error: {issue}: {TOO_LARGE}")
    try:  # a port in use is one line, not a server's log
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise fail(f"error: cannot listen on {host}:{port}: {exc.strerror}") from None
    url = f"http://{host}:{port}/"
    typer.echo(f"Previewing {issue} at {url} (Ctrl+C to stop)")
    if open_browser:
        webbrowser.open(url)
    with friendly_errors():
        serve(issue, settings, host, port)


def register(app: typer.Typer) -> None:
    """Add `mailer preview` to the root command."""
    app.command(
        "preview",
        epilog="Example: mailer preview examples/issues/2022-15.yaml --open",
    )(preview_command)
