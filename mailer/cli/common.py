"""What every command needs: the composition root, and errors printed without tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from mailer.compose import Root, build
from mailer.errors import MailerError
from mailer.settings import load_settings

err_console = Console(stderr=True)


def root(env_file: Path | None = None) -> Root:
    """Build the composition root from `.env` (or the given file) and the environment."""
    return build(load_settings(env_file or ".env"))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line to stderr and return the Exit to raise."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn our own errors into one line on stderr and exit status 1, never a traceback."""
    try:
        yield
    except MailerError as exc:
        raise fail(f"error: {exc}") from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
