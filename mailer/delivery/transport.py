"""Getting bytes to an SMTP server, behind a small `Transport` protocol: the protocol, its
typed outcomes, and `MemoryTransport`; the SMTP client itself is mailer.delivery.smtp
(apart: what a send may answer is shared by the worker, test sends and the tests,
how smtplib is driven to get it is not).

`SMTPTransport` (mailer.delivery.smtp) keeps one connection open (reconnecting after an
error or after `smtp_messages_per_connection` messages), does STARTTLS or implicit TLS
and login as configured, and pipelines MAIL, RCPT and DATA when the server offers it.
`send` honours a `RateLimiter`, taking the slot once the connection is open (opening one
can take longer than a slot lasts); a worker takes its limits itself and drives many
transports from one thread with `begin`, `accepted`, `transfer` and `finish`, waiting on
the socket `awaiting()` names.
Outcomes are typed: a 2xx is a `Reply`; 4xx, a dropped connection or a timeout
raise `TemporarySMTPError`; 5xx raises `PermanentSMTPError`; a refused login
raises `AuthenticationError`; an unreachable server raises `ConnectionFailed`.
`MemoryTransport` keeps messages in a list, for tests and dry runs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mailer.errors import PermanentError, TemporaryError

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_NO_SUCH_USER = re.compile(r"no such user|user unknown|unknown user|mailbox unavailable", re.I)


@dataclass(frozen=True)
class Reply:
    """The server's answer to a message it accepted."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SMTPFailure:
    """Mixin: a reply code and text from the server (0 when there was no reply)."""

    code: int
    text: str

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code, e.g. '5.1.1', if the server sent one."""
        match = _ENHANCED.search(self.text)
        return ".".join(match.groups()) if match else None

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}".strip() if self.code else self.text


class TemporarySMTPError(SMTPFailure, TemporaryError):
    """4xx, a dropped connection or a timeout: trying again later may work."""

    def __init__(self, code: int, text: str) -> None:
        self.code, self.text = code, text
        super().__init__(self.reply)


class Interrupted(TemporarySMTPError):
    """Nothing was sent: the worker stopped while the message waited for the rate limit."""


class ConnectionFailed(TemporarySMTPError):
    """The server could not be reached, or the connection broke."""

    def __init__(self, text: str) -> None:
        super().__init__(0, text)


class PermanentSMTPError(SMTPFailure, PermanentError):
    """5xx: this message to this address will fail the same way again."""

    def __init__(self, code: int, text: str) -> None:
        self.code, self.text = code, text
        super().__init__(self.reply)

    @property
    def no_such_user(self) -> bool:
        """A 5.1.x address status ("no such user", "bad mailbox"): suppress the address."""
        enhanced = self.enhanced
        if enhanced is not None:
            return enhanced.startswith("5.1.")
        return self.code in (550, 551, 553) and bool(_NO_SUCH_USER.search(self.text))


class AuthenticationError(PermanentError):
    """The server refused our login (or needs one, or cannot do the TLS we asked for)."""


class Transport(Protocol):
    """One connection to a mail server, used one message at a time.

    `send` is the whole exchange. A worker driving several connections from one
    thread splits it up, and runs a step when the connection's reply is in: `begin`
    writes the envelope, `accepted` reads the envelope's replies, `transfer` writes
    the message with its final dot (at once: the worker takes its rate-limit slot
    between the two), `finish` reads the server's verdict. A step that raises ends
    that message; the next one starts with `begin`. A message begun and not
    transferred is given up with `abandon`.
    """

    def send(
        self, sender: str, recipients: Sequence[str], data: bytes, *, smtputf8: bool = False
    ) -> Reply: ...

    def begin(self, sender: str, recipients: Sequence[str], *, smtputf8: bool = False) -> None: ...

    def accepted(self) -> None:
        """Read the envelope's replies; raise the typed error if the server refused it."""

    def transfer(self, data: bytes, *, transparent: bool = False) -> None:
        """`transparent`: the caller knows no line of `data` starts with a dot."""

    def finish(self) -> Reply: ...

    def awaiting(self) -> int | None:
        """The socket (file descriptor) whose reply the next step reads, while the server
        owes one; None when the next step can run at once."""

    def abandon(self) -> None:
        """Drop the connection without a word (the server took too long); the message in
        progress is lost to this connection and the next `begin` reconnects."""

    def probe(self) -> None:
        """Connect (and log in) now; raise the typed error if that fails."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sent:
    sender: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass
class MemoryTransport:
    """Keeps what it is given; `answer` may raise a typed error for chosen recipients."""

    answer: Callable[[str], None] | None = None
    sent: list[Sent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _envelope: tuple[str, tuple[str, ...]] | None = field(default=None, repr=False)
    _data: bytes | None = field(default=None, repr=False)

    def send(
        self, sender: str, recipients: Sequence[str], data: bytes, *, smtputf8: bool = False
    ) -> Reply:
        self.begin(sender, recipients, smtputf8=smtputf8)
        self.transfer(data)
        return self.finish()

    def begin(self, sender: str, recipients: Sequence[str], *, smtputf8: bool = False) -> None:
        self._envelope, self._data = None, None
        if self.answer is not None:
            for recipient in recipients:
                self.answer(recipient)
        self._envelope = (sender, tuple(recipients))

    def accepted(self) -> None:
        if self._envelope is None:
            raise ConnectionFailed("no message in progress")

    def transfer(self, data: bytes, *, transparent: bool = False) -> None:
        if self._envelope is None:
            raise ConnectionFailed("no message in progress")
        self._data = data

    def finish(self) -> Reply:
        if self._envelope is None or self._data is None:
            raise ConnectionFailed("no message in progress")
        (sender, recipients), data = self._envelope, self._data
        self._envelope, self._data = None, None
        with self._lock:
            self.sent.append(Sent(sender, recipients, data))
        return Reply(250, "2.0.0 OK kept in memory")

    def awaiting(self) -> int | None:
        return None

    def abandon(self) -> None:
        self._envelope, self._data = None, None

    def probe(self) -> None:
        return None

    def close(self) -> None:
        return None
