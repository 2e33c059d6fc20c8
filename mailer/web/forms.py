"""What the page modules share: redirects after a post, form errors beside their
fields, paging, upload names, and the database session of a request.

Support for the page modules (issues, campaigns, subscribers, ...): they import this
module, never each other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from mailer.app.errors import RecordError
from mailer.people.accounts import AccountError
from mailer.web.context import db

DB = Annotated[Session, Depends(db)]
PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # keeps the OFFSET inside the databases' integers
INVALID = 400  # a form that failed validation comes back with this status

Errors = dict[str, str]


def back(url: str) -> RedirectResponse:
    """Where a post sends the browser next (303: the next request is a GET)."""
    return RedirectResponse(url, status_code=303)


def field_errors(exc: RecordError | AccountError, default: str = "") -> Errors:
    """The message keyed by the field it is about ("" for the form as a whole), shown
    beside that field when the form comes back with what was typed."""
    return {getattr(exc, "field", None) or default: str(exc)}


def page_number(page: int) -> int:
    """A requested page number kept between 1 and MAX_PAGE."""
    return min(max(page, 1), MAX_PAGE)


def upload_name(file: UploadFile, default: str) -> str:
    """The uploaded file's own name, without any folders the browser sent along."""
    return (file.filename or default).replace("\\", "/").rsplit("/", 1)[-1]
