"""Email addresses: validated with email-validator (no DNS), compared case-insensitively.

The stored `email` keeps what the person typed (domain lower-cased by the
validator); `email_key` is the lower-cased form the unique index is on, and
`email_hash` is what suppression entries match on, so an erased address can be
recognised without keeping it.
"""

from __future__ import annotations

import hashlib
import re

from email_validator import EmailNotValidError, validate_email

from subscribers.errors import StoreInputError

MAX_EMAIL = 254
MAX_NAME = 200
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: line breaks, tabs, NUL...


def normalise_email(value: str) -> str:
    """A valid address in its canonical form, or `StoreInputError` saying what is wrong."""
    text = value.strip()
    if not text:
        raise StoreInputError("email is empty")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise StoreInputError(f"invalid email address {value!r}: {exc}") from None
    return result.normalized


def email_key(email: str) -> str:
    """The case-insensitive key of an already normalised address."""
    return email.casefold()


def email_hash(email: str) -> str:
    """SHA-256 (hex) of the key; suppression matches on it (plain and erased entries alike)."""
    return hashlib.sha256(b"lmec-mailer:" + email_key(email).encode("utf-8")).hexdigest()


def clean_name(value: str | None) -> str:
    """A display name in any script, kept byte for byte; one line, bounded length."""
    if value is None:
        return ""
    name = value.strip()
    if "\x00" in name:
        raise StoreInputError("name contains a NUL character")
    if CONTROL.search(name):
        raise StoreInputError("name contains a line break or another control character")
    if len(name) > MAX_NAME:
        raise StoreInputError(f"name is longer than {MAX_NAME} characters")
    return name
