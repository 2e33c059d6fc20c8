"""The lazy command registry (mailer.cli.main) and the commands it loads agree.

`mailer --help` lists the registry without importing any command module, so the
registry's one-line help, and which commands exist, could drift from the commands
themselves; these tests make that impossible to merge.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from mailer.cli import main
from mailer.cli.main import COMMANDS, Command, Group, app


def listed() -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command the registry names, with its path under `mailer`."""
    for entry in COMMANDS:
        if isinstance(entry, Group):
            for command in entry.commands:
                yield (entry.name, command.name), command
        else:
            yield (entry.name,), entry


LISTED = list(listed())


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())  # the panels' borders too


@pytest.mark.parametrize(("path", "entry"), LISTED, ids=[" ".join(p) for p, _ in LISTED])
def test_a_listed_command_resolves_and_its_registry_help_is_its_own(
    path: tuple[str, ...], entry: Command
) -> None:
    command = main.load(path, entry.module)
    assert command.name == path[-1]
    assert main.short_help(command.help) == entry.help


def test_every_command_a_module_registers_is_listed_with_that_module() -> None:
    """A command added to a module's `register` but not to the registry would never be
    reachable; one listed under the wrong module would fail when run."""
    where = {path: entry.module for path, entry in LISTED}
    groups = {entry.name for entry in COMMANDS if isinstance(entry, Group)}
    for module in sorted(set(where.values())):
        registered = main.registered(module)
        found: list[tuple[str, ...]] = [
            (name,) for name in main.registered_names(registered) if name not in groups
        ]
        for info in registered.registered_groups:
            if info.name in groups:
                assert isinstance(info.typer_instance, typer.Typer)
                found += [(str(info.name), n) for n in main.registered_names(info.typer_instance)]
        assert found, f"{module} registers nothing"
        for path in found:
            assert where.get(path) == module, f"`mailer {' '.join(path)}` ({module}) is not listed"


def test_the_root_help_lists_every_command_with_its_help() -> None:
    shown = _help(["--help"])
    for entry in COMMANDS:
        assert f"{entry.name} {entry.help}" in shown


def test_a_group_of_several_modules_lists_its_commands() -> None:
    for entry in COMMANDS:
        if isinstance(entry, Group):
            shown = _help([entry.name, "--help"])
            for command in entry.commands:
                assert f"{command.name} {command.help}" in shown


def _every_command() -> Iterator[list[str]]:
    """The path of every command and group, as the loaded groups list them."""
    stack: list[tuple[list[str], object]] = [([], typer.main.get_command(app))]
    while stack:
        path, command = stack.pop()
        if path:
            yield path
        if isinstance(command, TyperGroup):
            context = typer.Context(command)
            stack += [([*path, n], command.get_command(context, n)) for n in command.commands]


def test_every_command_answers_help_with_an_example() -> None:
    """`mailer X --help` shows the command's own help and its example, as before the
    commands were loaded lazily; a group lists its commands."""
    paths = list(_every_command())
    assert len(paths) > len(COMMANDS)
    for path in paths:
        shown = _help([*path, "--help"])
        assert f"Usage: root {' '.join(path)} " in shown
        assert "Example" in shown or "Commands" in shown, path


def test_a_mistyped_command_gets_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["chek"])
    assert result.exit_code == 2
    assert "Did you mean 'check'?" in result.output
