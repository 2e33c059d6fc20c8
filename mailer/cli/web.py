"""Commands of the web app: user accounts, and `mailer web` to run only the web app.

`mailer serve` (the scheduler's area) runs the same app together with the scheduler
and a worker; `mailer web` is for a web process behind a reverse proxy.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailer.cli.common import opened
from mailer.people import accounts, twofactor, websessions
from mailer.people.accounts import Accounts

out = Console(highlight=False, soft_wrap=True)

user_app = typer.Typer(
    help="Accounts of the web app (editors and admins).",
    no_args_is_help=True,
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


RoleOpt = Annotated[
    str, typer.Option("--role", "-r", help="editor (issues, campaigns) or admin (everything).")
]
StdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


@user_app.command(
    "create",
    epilog="Example: mailer user create li.xia@lmec.example.org --role admin --name 'Li Xia'",
)
def create(
    email: Annotated[str, typer.Argument(help="The address the user signs in with.")],
    role: RoleOpt = "editor",
    name: Annotated[str, typer.Option("--name", help="Shown in the web app.")] = "",
    password_stdin: StdinOpt = False,
) -> None:
    """Create a user; asks for the password (at least 10 characters) twice."""
    password = _password(password_stdin)
    with opened() as the_root, the_root.sessions.begin() as session:
        user = Accounts().create_user(session, email, password, role=role, name=name)
        out.print(f"created {user.role} {user.email}")


@user_app.command("list", epilog="Example: mailer user list")
def list_() -> None:
    """List the users with their role and last sign-in."""
    with opened() as the_root, the_root.sessions() as session:
        table = Table("email", "name", "role", "last sign-in (UTC)")
        for user in accounts.list_users(session):
            last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
            table.add_row(user.email, user.name, user.role, last)
        out.print(table)


@user_app.command(
    "set-password",
    epilog="Example: mailer user set-password ed@lmec.example.org  (asks twice)",
)
def set_password(
    email: Annotated[str, typer.Argument(help="The user's address.")],
    password_stdin: StdinOpt = False,
) -> None:
    """Set a new password; the user's open sessions end and failed-login blocks are lifted."""
    password = _password(password_stdin)
    with opened() as the_root, the_root.sessions.begin() as session:
        user = Accounts().set_password(session, email, password)
        out.print(f"password changed for {user.email}")


@user_app.command("set-role", epilog="Example: mailer user set-role ed@lmec.example.org admin")
def set_role(
    email: Annotated[str, typer.Argument(help="The user's address.")],
    role: Annotated[str, typer.Argument(help="editor or admin.")],
) -> None:
    """Change a user's role (the last admin cannot be demoted)."""
    with opened() as the_root, the_root.sessions.begin() as session:
        user = accounts.set_role(session, email, role)
        out.print(f"{user.email} is now {user.role}")


@user_app.command("reset-2fa", epilog="Example: mailer user reset-2fa li.xia@lmec.example.org")
def reset_2fa(email: Annotated[str, typer.Argument(help="The user's address.")]) -> None:
    """Turn off a user's two-factor sign-in (a lost phone; the last admin locked out).

    Their authenticator codes and recovery codes stop working and their sessions end;
    they sign in with the password alone and can set it up again (an admin is asked to
    at once when MAILER_REQUIRE_2FA_FOR_ADMINS is on).
    """
    with opened() as the_root, the_root.sessions.begin() as session:
        user = accounts.get_user(session, email)
        if twofactor.reset(session, user.id):
            ended = websessions.end_others(session, user.id, None)
            out.print(f"two-factor sign-in reset for {user.email}; {ended} session(s) ended")
        else:
            out.print(f"{user.email} had no two-factor sign-in; nothing changed")


@user_app.command("remove", epilog="Example: mailer user remove ed@lmec.example.org")
def remove(email: Annotated[str, typer.Argument(help="The user's address.")]) -> None:
    """Delete a user (the last admin cannot be removed)."""
    with opened() as the_root, the_root.sessions.begin() as session:
        accounts.remove_user(session, email)
        out.print(f"removed {email.strip().lower()}")


def web(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [MAILER_WEB_HOST].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [MAILER_WEB_PORT].")] = None,
) -> None:
    """Run only the web app (no scheduler, no worker), e.g. behind a reverse proxy.

    X-Forwarded-For is believed only from the proxies in MAILER_TRUSTED_PROXIES
    (default: none, not even 127.0.0.1).
    """
    import uvicorn

    from mailer.serve import proxy_options
    from mailer.web.app import create_app

    with opened() as the_root:
        settings = the_root.settings
        if settings.insecure:
            out.print("warning: MAILER_SECRET_KEY is the development default; set your own")
        app = create_app(the_root)
        out.print(f"web app on http://{host or settings.web_host}:{port or settings.web_port}")
        uvicorn.run(
            app,
            host=host or settings.web_host,
            port=port or settings.web_port,
            log_level="info",
            **proxy_options(settings),
        )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root command."""
    app.add_typer(user_app, name="user")
    app.command(
        "web",
        epilog="Example: mailer web --host 0.0.0.0 --port 8000  (then open http://host:8000/)",
    )(web)
