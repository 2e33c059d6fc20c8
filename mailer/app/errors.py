"""The one adapter from the subscriber store's errors to ours.

`subscribers` is a leaf package: its `StoreError` cannot derive from
`mailer.errors.MailerError`. Everything in `mailer` that shows a store error (a
command's one line, a page's status code, a form's message beside its field) sees
it through `translate`, as a permanent error that keeps the field it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mailer.errors import PermanentError, UserInputError
from subscribers.errors import Conflict, NotFound, StoreError, StoreInputError


class RecordError(PermanentError):
    """The subscriber store refused a request; `field` names the input it is about."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidRecord(RecordError, UserInputError):
    """Input to the store is invalid (a field, a file, an argument)."""


class RecordNotFound(RecordError):
    """A subscriber, partner or list named in a request does not exist."""


class RecordConflict(RecordError):
    """The request clashes with what is stored (an address or slug already taken)."""


def translate(exc: StoreError) -> RecordError:
    """The store's error as ours: the same message and field, typed permanent."""
    kind: type[RecordError] = RecordError
    if isinstance(exc, NotFound):
        kind = RecordNotFound
    elif isinstance(exc, Conflict):
        kind = RecordConflict
    elif isinstance(exc, StoreInputError):
        kind = InvalidRecord
    translated = kind(str(exc), exc.field)
    translated.__cause__ = exc
    return translated


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise a store error from the block as its translation (see `translate`)."""
    try:
        yield
    except StoreError as exc:
        raise translate(exc) from exc
