"""How a command reports failure: one clear line on stderr and an exit status, never a
traceback. No database or web imports, so that commands which need neither (`mailer
check`, `mailer render`) start without them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from mailer.app.errors import store_errors
from mailer.errors import MailerError

err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line to stderr and return the Exit to raise."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn our own errors (and the subscriber store's, translated by the one adapter)
    into one line on stderr and exit status 1, never a traceback."""
    try:
        with store_errors():
            yield
    except MailerError as exc:
        raise fail(f"error: {exc}") from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
