"""Entry point of the `mailer` command: a registry of every command, loaded lazily.

Importing every command module, and with them SQLAlchemy, Alembic, FastAPI, MJML and
APScheduler, made every `mailer` run spend 1.6 s before doing anything, `--help`
included. So this module imports no command module until one is used:

- `COMMANDS` names each top-level command or command group, the module that defines
  it, and its one-line help (the first paragraph of the command's own help, which
  `mailer --help` lists). A group whose commands live in several modules (`campaign`,
  `lists`, `subscribers`: cut by what each command imports) is a `Group` of such
  entries. The registry is data, one concern, kept whole although it is over 400 lines.
- `mailer --help` (and `mailer campaign --help`) list the registry as it is: no
  command module is imported.
- Running a command, or asking for its own `--help`, imports its module and nothing
  else: the module's `register(app)` adds its commands to a fresh `typer.Typer`
  exactly as to any Typer app, and the command named is taken from the result (only
  it is converted to a click command).

A command module is therefore an ordinary Typer module with its imports at the top;
laziness lives here and nowhere else. Modules are cut by what their commands import:
`mailer check` must not pay for the web server `mailer preview` needs.

To add a command: write it in a module under `mailer/cli/` whose
`register(app: typer.Typer) -> None` adds it by name (`app.command("name", ...)(f)`
or `app.add_typer(group, name="name")`; commands of `mailer campaign` go on a
`typer.Typer()` that `register` adds as "campaign"), then add a `Command(name, module,
help)` line to `COMMANDS` (or to the `campaign` group). `tests/test_cli_registry.py`
fails if the line's help differs from the command's, if a listed command is not
registered by its module, or if a module registers a command the registry does not
list; `tests/test_cli_startup.py` fails if `mailer --help` imports a heavy library.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo

if TYPE_CHECKING:
    from typer import _click


@dataclass(frozen=True)
class Command:
    """A command (or a command group) defined by one module's `register(app)`."""

    name: str
    module: str
    help: str


@dataclass(frozen=True)
class Group:
    """A command group whose commands come from several modules."""

    name: str
    help: str
    commands: tuple[Command, ...]


COMMANDS: tuple[Command | Group, ...] = (
    Command(
        "render",
        "mailer.cli.authoring",
        "Render issues to NAME.html, NAME.txt and a complete NAME.eml in --out.",
    ),
    Command(
        "check",
        "mailer.cli.authoring",
        "Validate issues and lint the emails they make; exit status 1 on any error.",
    ),
    Command(
        "preview",
        "mailer.cli.preview",
        "Serve a live preview: desktop and phone width and the text part, reloading on save.",
    ),
    Command(
        "audience",
        "mailer.cli.audience",
        "Count who would receive a campaign, per country and partner.",
    ),
    Command(
        "send",
        "mailer.cli.delivery",
        "Start sending a campaign now and send it to the end, with a progress bar.",
    ),
    Command(
        "worker",
        "mailer.cli.delivery",
        "Send due messages of every campaign, until stopped (Ctrl-C or SIGTERM).",
    ),
    Command(
        "test-send",
        "mailer.cli.delivery",
        "Send an issue to a few addresses, subject marked [TEST]; no campaign, no ledger.",
    ),
    Command(
        "capture",
        "mailer.cli.delivery",
        "Run a local SMTP server that stores every message as an .eml file (demos, tests).",
    ),
    Command(
        "scheduler",
        "mailer.cli.schedule",
        "Run only the scheduler (one per database), until Ctrl-C or SIGTERM.",
    ),
    Command(
        "serve",
        "mailer.cli.schedule",
        "Run the web app, the scheduler and one worker in one process (a small installation).",
    ),
    Command(
        "web",
        "mailer.cli.web",
        "Run only the web app (no scheduler, no worker), e.g. behind a reverse proxy.",
    ),
    Command(
        "demo",
        "mailer.cli.demo",
        "Set up a demo installation, send both seed issues to a local capture server"
        " (MAILER_SMTP_PORT, default 2525), and serve the web app (MAILER_WEB_HOST and"
        " MAILER_WEB_PORT, default 127.0.0.1:8000).",
    ),
    Group(
        "campaign",
        "Create, inspect and control campaigns.",
        (
            Command(
                "create",
                "mailer.cli.delivery",
                "Create a draft campaign: an issue (with all its language variants), an audience"
                " and a sender.",
            ),
            Command(
                "list",
                "mailer.cli.delivery",
                "List campaigns, newest first, with their progress.",
            ),
            Command(
                "show",
                "mailer.cli.delivery",
                "Show a campaign: what it sends, to whom, its state and progress.",
            ),
            Command(
                "history",
                "mailer.cli.delivery",
                'Every campaign an address was in, with what happened: "did they get issue 15?".',
            ),
            Command(
                "pause",
                "mailer.cli.delivery",
                "Pause sending; messages already on the wire finish, nothing new goes out.",
            ),
            Command(
                "resume",
                "mailer.cli.delivery",
                "Resume a paused campaign (a running worker picks it up).",
            ),
            Command(
                "cancel",
                "mailer.cli.delivery",
                "Cancel for good; recipients not reached yet are never sent to.",
            ),
            Command(
                "report",
                "mailer.cli.delivery",
                "Sent, retrying and failed, in total and per country, partner and time zone.",
            ),
            Command(
                "schedule",
                "mailer.cli.schedule",
                "Schedule a draft campaign: at one time in a zone, or at a local time per"
                " recipient.",
            ),
            Command(
                "reschedule",
                "mailer.cli.schedule",
                "Replace the schedule of a scheduled (or missed) campaign that has not started.",
            ),
            Command(
                "unschedule",
                "mailer.cli.schedule",
                "Take a scheduled (or missed) campaign off the schedule; it becomes a draft again.",
            ),
        ),
    ),
    Command("db", "mailer.cli.database", "Create and upgrade the database schema."),
    Command("partners", "mailer.cli.partners", "Partner organisations."),
    Command("media", "mailer.cli.media", "Uploaded photos (the media library)."),
    Group(
        "lists",
        "Mailing lists people subscribe to. A public list is offered on the preferences page"
        " and its campaigns go into the public archive; a private list (the default for a new"
        " list) is shown only to the people on it, and campaigns that reach it stay out of the"
        " archive.",
        (
            Command("add", "mailer.cli.lists", "Add a list (private unless --public)."),
            Command(
                "list",
                "mailer.cli.lists",
                "List lists with their visibility and their active and unsubscribed counts.",
            ),
            Command("edit", "mailer.cli.lists", "Change a list's name, description or visibility."),
            Command(
                "remove",
                "mailer.cli.list_removal",
                "Remove a list. A list no campaign used is deleted with its subscriptions (the"
                " subscribers stay). A list any campaign used is archived instead: its active"
                " subscriptions end, it is offered nowhere again, and the campaigns that used it"
                " keep their audience, ledger, archive entry and web copy. Without --yes, says"
                " what would be lost and changes nothing.",
            ),
        ),
    ),
    Group(
        "subscribers",
        "Subscribers: add, find, edit, import, export.",
        (
            Command(
                "add",
                "mailer.cli.subscribers",
                "Add one subscriber (optionally to lists, recording the consent source).",
            ),
            Command(
                "show",
                "mailer.cli.subscribers",
                "Show one subscriber with their subscriptions and consent records.",
            ),
            Command(
                "edit",
                "mailer.cli.subscribers",
                "Change a subscriber's fields; a new country moves a default time zone with it.",
            ),
            Command(
                "remove",
                "mailer.cli.subscribers",
                "Delete a subscriber and their subscriptions (to forget them for good, use"
                " `erase`).",
            ),
            Command(
                "search",
                "mailer.cli.subscribers",
                "Find subscribers by address or name (case-insensitive), with filters.",
            ),
            Command(
                "import",
                "mailer.cli.subscriber_files",
                "Import subscribers from CSV: all or nothing, duplicates merged, safe to run"
                " twice.",
            ),
            Command(
                "export",
                "mailer.cli.subscriber_files",
                "Export subscribers as CSV (UTF-8, the columns import reads; formulas"
                " neutralised).",
            ),
            Command(
                "unsubscribe",
                "mailer.cli.subscribers",
                "Unsubscribe from one list, or from everything (the consent record is kept).",
            ),
            Command(
                "resubscribe",
                "mailer.cli.subscribers",
                "Make an unsubscribed person active again, with a new consent record.",
            ),
            Command(
                "privacy-export",
                "mailer.cli.subscriber_privacy",
                "Everything held about one address, as JSON (a data-protection access request).",
            ),
            Command(
                "erase",
                "mailer.cli.subscriber_privacy",
                "Erase a person: delete their data; only a hash stays, so they are never mailed"
                " again.",
            ),
            Command(
                "purge-unconfirmed",
                "mailer.cli.subscriber_privacy",
                "Delete sign-ups whose confirmation link expired unused, and old throttle counts.",
            ),
        ),
    ),
    Command("suppression", "mailer.cli.suppression", "Addresses never to be mailed again."),
    Command("schedule", "mailer.cli.schedule", "The schedule: what goes out when."),
    Command(
        "drafts",
        "mailer.cli.drafts",
        "Drafts of issues composed in the browser: import, list, show, export, history, restore.",
    ),
    Command("user", "mailer.cli.web", "Accounts of the web app (editors and admins)."),
    Command(
        "bounces",
        "mailer.cli.bounces",
        "Process bounces (delivery status reports) sent to the VERP address"
        " bounces+<token>@MAILER_SENDER_DOMAIN (set MAILER_BOUNCE_VERP=true), and abuse"
        " reports from mailbox providers' feedback loops.",
    ),
)


def short_help(help_text: str | None) -> str:
    """The line a group's help lists for a command: its help's first paragraph, on one line."""
    return " ".join(inspect.cleandoc(help_text or "").split("\n\n")[0].split())


def registered(module: str) -> typer.Typer:
    """A Typer app with the commands `module` registers: imports the module."""
    app = typer.Typer(rich_markup_mode="rich")
    importlib.import_module(module).register(app)
    return app


def registered_names(app: typer.Typer) -> list[str]:
    """The names of the commands and command groups added to `app`, in order."""
    commands = [_name(info) for info in app.registered_commands]
    return [*commands, *(str(info.name) for info in app.registered_groups)]


def _name(info: CommandInfo) -> str:
    """A command's name: given to `app.command`, or made from its function's name."""
    return info.name or typer.main.get_command_name(getattr(info.callback, "__name__", ""))


def load(path: tuple[str, ...], module: str) -> _click.Command:
    """The command at `path` (e.g. ("campaign", "create")), as `module` registers it.

    Only that command (or group) is made into a click command: Typer builds a
    validator for every parameter it converts, which costs time for the others."""
    app = registered(module)
    wanted = typer.Typer(rich_markup_mode="rich")
    wanted.registered_commands = [i for i in app.registered_commands if _name(i) == path[0]]
    wanted.registered_groups = [info for info in app.registered_groups if info.name == path[0]]
    command: _click.Command = typer.main.get_group(wanted)
    for name in path:
        found = command.commands.get(name) if isinstance(command, TyperGroup) else None
        if found is None:
            raise LookupError(f"{module}.register does not add `mailer {' '.join(path)}`")
        command = found
    return command


class _Unloaded(TyperCommand):
    """Stands for a command in its group's listing until the command is used."""

    def __init__(self, path: tuple[str, ...], entry: Command, markup: Any) -> None:
        super().__init__(entry.name, help=entry.help, rich_markup_mode=markup)
        self.path = path
        self.module = entry.module


class LazyGroup(TyperGroup):
    """A command group that imports a command's module only when the command is used.

    Its help lists what the registry says; any other use of a command (running it,
    its own help, shell completion) loads it, once."""

    def __init__(
        self,
        *,
        entries: tuple[Command | Group, ...],
        path: tuple[str, ...] = (),
        **attrs: Any,
    ) -> None:
        super().__init__(**attrs)
        self._listing = False
        for entry in entries:
            here = (*path, entry.name)
            if isinstance(entry, Group):
                self.commands[entry.name] = LazyGroup(
                    entries=entry.commands,
                    path=here,
                    name=entry.name,
                    help=entry.help,
                    no_args_is_help=True,
                    rich_markup_mode=self.rich_markup_mode,
                )
            else:
                self.commands[entry.name] = _Unloaded(here, entry, self.rich_markup_mode)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Unloaded) and not self._listing:
            command = self.commands[cmd_name] = load(command.path, command.module)
        return command

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


class _Mailer(LazyGroup):
    """The root command: `mailer`, with every command in `COMMANDS`."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(entries=COMMANDS, **attrs)


def _root() -> None:
    """Nothing to do before a command: a callback makes Typer build a group."""


app = typer.Typer(
    cls=_Mailer,
    callback=_root,
    help="Newsletter service: write issues, keep subscriber lists, deliver by SMTP.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
