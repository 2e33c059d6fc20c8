"""The roots of our exception tree: every failure says whether trying again can help."""

from __future__ import annotations


class MailerError(Exception):
    """Base of every error the service raises on purpose."""


class TemporaryError(MailerError):
    """Trying again later may succeed (a 4xx reply, a dropped connection, a locked row)."""


class PermanentError(MailerError):
    """Trying again will fail the same way (a 5xx reply, invalid content, a bad setting)."""


class UserInputError(PermanentError):
    """Input from a person or a file is wrong; the message says where and how to fix it."""
