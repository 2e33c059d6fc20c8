"""Errors of the subscriber store; `subscribers` is a leaf, so these do not derive from mailer's.

Callers in `mailer` map them: `StoreInputError` and `NotFound` are the user's to fix,
`Conflict` means the request clashes with what is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class StoreError(Exception):
    """Base of every error the subscriber store raises on purpose.

    `field` names the input it is about (`email`, `timezone`, ...) when there is one, so a
    form can show the message beside that field; None for errors about the whole request.
    """

    field: str | None = None


@contextmanager
def about(field: str) -> Iterator[None]:
    """Mark a store error raised inside the block as being about `field` (unless the
    error already names one)."""
    try:
        yield
    except StoreError as exc:
        if exc.field is None:
            exc.field = field
        raise


class StoreInputError(StoreError, ValueError):
    """Input (a field, a file, a command argument) is invalid; the message says how."""


class NotFound(StoreError, LookupError):
    """A subscriber, partner or list named in a request does not exist."""


class Conflict(StoreError):
    """The request clashes with what is stored (an address or slug that already exists)."""


@dataclass(frozen=True)
class Problem:
    """One bad row of an import: where it is and what is wrong with it."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ImportRejected(StoreInputError):
    """A CSV file had bad rows (or was unreadable); nothing was imported.

    `str()` gives one line per problem, so the CLI and the web app can show it as is.
    `rows` is true when only rows are bad, so importing the others could help.
    """

    def __init__(self, problems: list[Problem], *, rows: bool = False) -> None:
        self.problems = problems
        self.rows = rows
        super().__init__("\n".join(str(p) for p in problems))
