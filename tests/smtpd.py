"""A real SMTP server (aiosmtpd) in the test process, with fault injection.

Reusable by every area's tests:

    # ruff: noqa: F811   (at the top: the imported fixture is a parameter below)
    from tests.smtpd import SMTPTestServer, smtp_server  # noqa: F401  (the fixture)

    def test_something(smtp_server: SMTPTestServer) -> None:
        settings = make_settings(tmp_path, smtp_port=smtp_server.port)
        ...
        assert smtp_server.count() == 3
        message = smtp_server.parsed()[0]   # email.message.EmailMessage

Faults, each for one recipient address (compared case-insensitively):
`defer(addr, times, reply)` answers RCPT with a 4xx `times` times, then accepts;
`reject(addr, reply)` answers RCPT with a 5xx every time; `drop_during_data(addr,
times)` closes the connection after the message data arrived but before replying
(the client never learns whether it was accepted; it was not); `hold(addr)` keeps
the reply to that message's final dot until the event it returns is set; `delay`
slows every DATA reply (a slow server); `ehlo_delay` slows every EHLO reply (a relay
whose connections take time to open, as TLS and login do). `pipelining=True`
advertises PIPELINING (RFC 2920). Each accepted message records `at` (when it was accepted)
and `arrived` (time.monotonic() when its final dot came in, before any delay).
`login=(user, password)` requires AUTH; `starttls` or `implicit_tls` (server SSL
contexts, e.g. from `tls_contexts(tmp_path)`) turn on TLS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    """One message the server accepted (replied 250 to)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: datetime
    connection: int
    arrived: float = 0.0  # time.monotonic() as the whole message came in

    def parse(self) -> EmailMessage:
        message = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class _Faults:
    deferrals: dict[str, list[str]] = field(default_factory=dict)
    rejections: dict[str, str] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, list[str]] = field(default_factory=dict)  # replies to the final dot
    slow: dict[str, list[float]] = field(default_factory=dict)  # seconds before the verdict
    gates: dict[str, list[threading.Event]] = field(default_factory=dict)  # verdict waits for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, server: SMTPTestServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, smtp: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.server.ehlo_delay:
            await asyncio.sleep(self.server.ehlo_delay)
        if self.server.pipelining:  # aiosmtpd reads commands in order; it just never says so
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, smtp: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.server._rcpt_reply(address)
        if reply is None:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        return reply

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        arrived = time.monotonic()
        if self.server._should_drop(envelope.rcpt_tos):
            smtp.transport.abort()  # gone before the final reply: the client must retry
            return "421 4.3.0 connection dropped by the test"
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        pause = self.server._slowness(envelope.rcpt_tos)
        if pause:
            await asyncio.sleep(pause)
        gate = self.server._gate(envelope.rcpt_tos)
        while gate is not None and not gate.is_set():
            await asyncio.sleep(0.01)
        verdict = self.server._verdict(envelope.rcpt_tos)
        if verdict is not None:
            return verdict
        self.server._accept(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                at=datetime.now(UTC),
                connection=id(session),
                arrived=arrived,
            )
        )
        return "250 2.0.0 OK queued"


class SMTPTestServer:
    """aiosmtpd on 127.0.0.1 and a free port, recording what it accepts."""

    def __init__(
        self,
        *,
        port: int | None = None,
        delay: float = 0.0,
        ehlo_delay: float = 0.0,
        login: tuple[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        pipelining: bool = False,
        smtputf8: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.delay = delay
        self.ehlo_delay = ehlo_delay
        self.login = login
        self.pipelining = pipelining
        self.messages: list[Received] = []
        self.connections = 0
        self._faults = _Faults()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8, "decode_data": False}
        if login:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if starttls:
            kwargs.update(tls_context=starttls, require_starttls=True)
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, ssl_context=implicit_tls, **kwargs
        )

    # --- life cycle -----------------------------------------------------------------
    def start(self) -> SMTPTestServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SMTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults ---------------------------------------------------------------------
    def refuse_message(
        self, address: str, reply: str = "554 5.7.1 Message rejected", times: int = 1
    ) -> None:
        """Take the whole message for `address`, then answer its final dot with `reply`."""
        with self._lock:
            self._faults.verdicts.setdefault(address.lower(), []).extend([reply] * times)

    def defer(self, address: str, times: int = 1, reply: str = "451 4.7.1 Try again later") -> None:
        with self._lock:
            self._faults.deferrals.setdefault(address.lower(), []).extend([reply] * times)

    def reject(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        with self._lock:
            self._faults.rejections[address.lower()] = reply

    def drop_during_data(self, address: str, times: int = 1) -> None:
        with self._lock:
            self._faults.drops[address.lower()] = self._faults.drops.get(address.lower(), 0) + times

    # --- what arrived -----------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def arrivals(self) -> Counter[str]:
        """How many accepted messages each recipient address got."""
        with self._lock:
            return Counter(rcpt.lower() for m in self.messages for rcpt in m.rcpt_tos)

    def parsed(self) -> list[EmailMessage]:
        with self._lock:
            messages = list(self.messages)
        return [m.parse() for m in messages]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until `count` messages arrived (a safety net for threads, not a timing test)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    # --- handler side -------------------------------------------------------------------
    def _rcpt_reply(self, address: str) -> str | None:
        key = address.lower()
        with self._lock:
            if key in self._faults.rejections:
                return self._faults.rejections[key]
            queue = self._faults.deferrals.get(key)
            if queue:
                return queue.pop(0)
        return None

    def _should_drop(self, rcpt_tos: list[str]) -> bool:
        with self._lock:
            for rcpt in rcpt_tos:
                if self._faults.drops.get(rcpt.lower(), 0) > 0:
                    self._faults.drops[rcpt.lower()] -= 1
                    return True
        return False

    def slow_down(self, address: str, seconds: float, times: int = 1) -> None:
        """Think `seconds` before answering the final dot of a message for `address`."""
        with self._lock:
            self._faults.slow.setdefault(address.lower(), []).extend([seconds] * times)

    def hold(self, address: str) -> threading.Event:
        """Answer the final dot of the next message for `address` only once the event
        returned is set: the sender is then known to be waiting on that message."""
        gate = threading.Event()
        with self._lock:
            self._faults.gates.setdefault(address.lower(), []).append(gate)
        return gate

    def _gate(self, rcpt_tos: list[str]) -> threading.Event | None:
        with self._lock:
            for rcpt in rcpt_tos:
                queue = self._faults.gates.get(rcpt.lower())
                if queue:
                    return queue.pop(0)
        return None

    def _slowness(self, rcpt_tos: list[str]) -> float:
        with self._lock:
            for rcpt in rcpt_tos:
                queue = self._faults.slow.get(rcpt.lower())
                if queue:
                    return queue.pop(0)
        return 0.0

    def _verdict(self, rcpt_tos: list[str]) -> str | None:
        with self._lock:
            for rcpt in rcpt_tos:
                queue = self._faults.verdicts.get(rcpt.lower())
                if queue:
                    return queue.pop(0)
        return None

    def _accept(self, received: Received) -> None:
        with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.login is not None:
            user, password = self.login
            if auth_data.login == user.encode() and auth_data.password == password.encode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    cert, key = directory / "smtpd-cert.pem", directory / "smtpd-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    """A started SMTP test server; stopped after the test."""
    with SMTPTestServer() as server:
        yield server
