"""The SMTP client behind the `Transport` protocol (mailer.delivery.transport): one
reused connection driven through smtplib, STARTTLS or implicit TLS, login, pipelining,
and smtplib's errors turned into the protocol's typed outcomes.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from mailer.delivery.ratelimit import RateLimiter
from mailer.delivery.transport import (
    AuthenticationError,
    ConnectionFailed,
    Interrupted,
    PermanentSMTPError,
    Reply,
    TemporarySMTPError,
)
from mailer.settings import Settings

_LINE_STARTING_WITH_DOT = re.compile(rb"\n\.")  # twice as fast as `in` on 20 KB


def _dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency, only where a line starts with a dot; CRLF-terminated.

    `data` is CRLF-only (as `mailer.delivery.message` builds it); smtplib's regex pass over every
    20 KB message cost more than the rest of the send.
    """
    if data.startswith(b".") or _LINE_STARTING_WITH_DOT.search(data):
        data = (b"." if data.startswith(b".") else b"") + data.replace(b"\n.", b"\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _text(message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(message.split())


def _failure(code: int, message: bytes | str) -> TemporarySMTPError | PermanentSMTPError:
    text = _text(message)
    if 400 <= code < 500:
        return TemporarySMTPError(code, text)
    if code >= 500:
        return PermanentSMTPError(code, text)
    return TemporarySMTPError(code, f"unexpected reply: {text}")


class SMTPTransport:
    """One reused SMTP connection; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "none",
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        messages_per_connection: int = 0,
        limiter: RateLimiter | None = None,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"smtp security must be none, starttls or tls, not {security!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout = timeout
        self.messages_per_connection = messages_per_connection
        self.limiter = limiter or RateLimiter()
        self.local_hostname = local_hostname
        self.ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._replies_due = 0  # pipelined envelope replies `transfer` still has to read
        self._verdict_due = False  # the reply to a final dot `finish` still has to read

    @classmethod
    def from_settings(cls, settings: Settings, limiter: RateLimiter | None = None) -> SMTPTransport:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            timeout=settings.smtp_timeout,
            messages_per_connection=settings.smtp_messages_per_connection,
            limiter=limiter,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    # --- connection -------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        # Only for TLS: loading the system's CA certificates costs tens of milliseconds
        # per connection, during which a worker's other connections wait.
        context = (
            None if self.security == "none" else self.ssl_context or ssl.create_default_context()
        )
        smtp: smtplib.SMTP | None = None
        try:
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, self.local_hostname, timeout=self.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout)
            if smtp.sock is not None:
                # Commands and the final dot are small writes: without this, Nagle's
                # algorithm and delayed ACKs stall each one for ~40 ms.
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            self._abandon(smtp)
            raise AuthenticationError(
                f"SMTP server {self.where} refused the login of {self.username!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._abandon(smtp)
            raise AuthenticationError(f"SMTP server {self.where}: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            self._abandon(smtp)
            raise _failure(exc.smtp_code, exc.smtp_error) from None
        except ssl.SSLError as exc:
            self._abandon(smtp)
            raise ConnectionFailed(f"TLS with SMTP server {self.where} failed: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._abandon(smtp)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConnectionFailed(
                f"cannot connect to SMTP server {self.where}: {reason}"
            ) from None
        self._sent_on_connection = 0
        return smtp

    @staticmethod
    def _abandon(smtp: smtplib.SMTP | None) -> None:
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def probe(self) -> None:
        smtp = self._smtp or self._connect()
        self._smtp = smtp
        try:
            code, message = smtp.noop()
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise ConnectionFailed(
                f"SMTP server {self.where} dropped the connection: {exc}"
            ) from None
        if code != 250:
            self.close()
            raise _failure(code, message)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            self._abandon(smtp)

    # --- sending --------------------------------------------------------------------------
    def send(
        self, sender: str, recipients: Sequence[str], data: bytes, *, smtputf8: bool = False
    ) -> Reply:
        """One message, start to end: connect, wait for the rate limit, send."""
        self.connect()
        if not self.limiter.acquire():
            raise Interrupted(0, "stopped while waiting for the rate limit")
        self.begin(sender, recipients, smtputf8=smtputf8)
        self.transfer(data)
        return self.finish()

    def begin(self, sender: str, recipients: Sequence[str], *, smtputf8: bool = False) -> None:
        """Connect if needed and write the envelope. With PIPELINING (RFC 2920) MAIL, RCPT
        and DATA go in one write and their replies are read by `transfer`; otherwise
        each is answered here. Rate limits are the caller's (see `send`)."""
        smtp = self.connect()
        self._replies_due, self._verdict_due = 0, False
        with self._failures(smtp):
            if not smtputf8 and smtp.has_extn("pipelining"):
                commands = [f"MAIL FROM:<{sender}>", *(f"RCPT TO:<{r}>" for r in recipients)]
                smtp.send("".join(f"{command}\r\n" for command in commands) + "DATA\r\n")
                self._replies_due = len(commands) + 1
            else:
                self._envelope(smtp, sender, recipients, smtputf8)

    def connect(self) -> smtplib.SMTP:
        """Open the connection now if there is none (or the open one has carried its
        `messages_per_connection`): a caller can then take its rate-limit slot when the
        message, not the connection, is on its way."""
        if self._smtp is not None and 0 < self.messages_per_connection <= self._sent_on_connection:
            self.close()
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def accepted(self) -> None:
        """The envelope's pipelined replies (a no-op without PIPELINING: `begin` read them)."""
        smtp = self._in_transaction()
        if self._replies_due:
            due, self._replies_due = self._replies_due, 0
            with self._failures(smtp):
                self._envelope_replies(smtp, due)

    def transfer(self, data: bytes, *, transparent: bool = False) -> None:
        """The message, dot-stuffed unless the caller says no line starts with a dot (a
        scan of 20 KB costs 8 us), and the final dot (after the envelope's replies, if
        `accepted` has not read them)."""
        self.accepted()
        smtp = self._in_transaction()
        with self._failures(smtp):
            if not transparent or not data.endswith(b"\r\n"):
                data = _dot_stuffed(data)
            smtp.send(data + b".\r\n")
            self._verdict_due = True

    def finish(self) -> Reply:
        """The reply to the final dot: a 2xx is the server's acceptance, anything else raises."""
        smtp = self._in_transaction()
        self._verdict_due = False
        with self._failures(smtp):
            code, message = smtp.getreply()
            if not 200 <= code < 300:
                raise smtplib.SMTPResponseException(code, message)
        self._sent_on_connection += 1
        return Reply(code, _text(message))

    def awaiting(self) -> int | None:
        if self._smtp is None or self._smtp.sock is None:
            return None
        if self._replies_due or self._verdict_due:
            return self._smtp.sock.fileno()
        return None

    def abandon(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._replies_due, self._verdict_due = 0, False
        self._abandon(smtp)

    def _in_transaction(self) -> smtplib.SMTP:
        if self._smtp is None:
            raise ConnectionFailed(f"connection to {self.where} lost: no message in progress")
        return self._smtp

    @contextmanager
    def _failures(self, smtp: smtplib.SMTP) -> Iterator[None]:
        """smtplib's and the socket's exceptions as typed failures; the connection is left
        ready for the next message (RSET) or dropped."""
        try:
            yield
        except smtplib.SMTPNotSupportedError as exc:
            self._reset()
            raise PermanentSMTPError(553, f"5.6.7 {exc}: the address needs SMTPUTF8") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._abandon(smtp)
                self._smtp = None
            else:
                self._reset()
            raise _failure(exc.smtp_code, exc.smtp_error) from None
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._abandon(smtp)
            self._smtp = None
            raise ConnectionFailed(f"connection to {self.where} lost: {exc or 'closed'}") from None

    def _envelope(
        self, smtp: smtplib.SMTP, sender: str, recipients: Sequence[str], smtputf8: bool
    ) -> None:
        """MAIL and RCPT one at a time, each waiting for its reply."""
        if smtputf8:
            code, message = smtp.mail(sender, ["SMTPUTF8"])
        else:
            # Our addresses are bare and checked: skip smtplib's parseaddr (~75 µs).
            smtp.putcmd("mail", f"FROM:<{sender}>")
            code, message = smtp.getreply()
        if code != 250:
            raise smtplib.SMTPResponseException(code, message)
        for recipient in recipients:
            smtp.putcmd("rcpt", f"TO:<{recipient}>")
            code, message = smtp.getreply()
            if code not in (250, 251):
                raise smtplib.SMTPResponseException(code, message)
        smtp.putcmd("data")
        code, message = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPResponseException(code, message)

    def _envelope_replies(self, smtp: smtplib.SMTP, due: int) -> None:
        """Replies to pipelined MAIL, RCPT… and DATA, in order; the first refusal decides.
        If DATA was accepted although a recipient was refused, the empty message is
        ended (and the transaction reset by `_failures`)."""
        mail, *rcpts, (data_code, data_message) = [smtp.getreply() for _ in range(due)]
        refused = mail if mail[0] != 250 else None
        for reply in rcpts:
            if refused is None and reply[0] not in (250, 251):
                refused = reply
        if refused is not None:
            if data_code == 354:
                smtp.send(".\r\n")
                smtp.getreply()
            raise smtplib.SMTPResponseException(*refused)
        if data_code != 354:
            raise smtplib.SMTPResponseException(data_code, data_message)

    def _reset(self) -> None:
        """RSET after a refused transaction, so the connection can be reused."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._abandon(self._smtp)
            self._smtp = None
