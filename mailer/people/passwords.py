"""What makes a password acceptable: a minimum length and not one of the most common.

Length alone lets "1234567890" and "qwertyuiop" through, and those are among the first
guesses of anyone trying addresses against the sign-in form. The list is the 19,640
most common passwords (see `data/README.md` for its source and licence), read once and
kept as a set; a password is compared lower-cased and stripped, as the list is.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000  # argon2 hashes any length; a limit keeps hashing cheap
COMMON_PASSWORDS = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def weakness(password: str) -> str | None:
    """Why `password` may not be used, or None when it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password must have at most {MAX_PASSWORD_LENGTH} characters"
    if password.strip().lower() in common_passwords():
        return "this password is one of the most common ones, guessed first; choose another"
    return None
