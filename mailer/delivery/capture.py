"""A local SMTP capture server (aiosmtpd) that stores every message as an `.eml` file.

For demos and for editors without a relay: point `MAILER_SMTP_PORT` at it and every
message lands in `settings.resolved_capture_dir`, one file each, named by arrival
time so a directory listing is the order they came in. Envelope sender and
recipients are kept as `X-Envelope-From` / `X-Envelope-To` header lines on top.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class CaptureHandler:
    """aiosmtpd handler: write each message to `directory`, atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        path = self.save(envelope.mail_from, envelope.rcpt_tos, data)
        return f"250 2.0.0 captured as {path.name}"

    def save(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> Path:
        now = datetime.now(UTC)
        path = self.directory / f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        head = f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
        partial = path.with_suffix(".part")
        partial.write_bytes(head.encode("utf-8") + bytes(data))
        os.replace(partial, path)
        return path


class CaptureController(Controller):
    """aiosmtpd's threaded server, which on `stop()` also ends every client connection.

    aiosmtpd only cancels the connections' tasks and stops its loop; whether a client's
    socket is then closed depends on the order the loop runs its last callbacks in
    (and, on Python 3.12+, `Server.wait_closed` waits for the clients to leave), so a
    client could keep the connection, and the port, after `mailer capture` was told
    to stop. Here each client is told `421` and its connection closed first.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        smtp = SMTP(self.handler, **self.SMTP_kwargs)  # what Controller.factory makes
        self._clients.add(smtp)  # one per connection
        return smtp

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None and self.loop.is_running():
            done = asyncio.run_coroutine_threadsafe(self._close_clients(), self.loop)
            done.result()
        super().stop(no_assert)

    async def _close_clients(self) -> None:
        if self.server is not None:
            self.server.close()  # no new connections from here on
        for transport in self._transports():
            if not transport.is_closing():
                transport.write(b"421 4.3.2 capture server shutting down\r\n")
                transport.close()
        await asyncio.sleep(0)  # the transports finish closing on the loop's next turn
        for transport in self._transports():  # output still queued for a client not reading
            transport.abort()
        await asyncio.sleep(0)

    def _transports(self) -> list[asyncio.Transport]:
        """The connections still open (aiosmtpd drops `transport` once one is lost)."""
        found = (smtp.transport for smtp in list(self._clients))
        return [transport for transport in found if isinstance(transport, asyncio.Transport)]


def capture_server(directory: Path, host: str = "127.0.0.1", port: int = 2525) -> CaptureController:
    """The server, not yet started (`.start()` runs it in a background thread)."""
    return CaptureController(
        CaptureHandler(directory),
        hostname=host,
        port=port,
        enable_SMTPUTF8=True,
        decode_data=False,
    )


def start_capture(directory: Path, host: str = "127.0.0.1", port: int = 2525) -> CaptureController:
    """Start the server in a background thread; call `.stop()` on the result to end it."""
    controller = capture_server(directory, host, port)
    controller.start()
    return controller


@dataclass(frozen=True)
class Captured:
    path: Path
    received: datetime
    sender: str
    recipients: str
    subject: str


def _decoded(value: str | None) -> str:
    if not value:
        return ""
    return " ".join(str(make_header(decode_header(value))).split())


def list_captured(directory: Path) -> list[Captured]:
    """What the capture server stored, oldest first (headers only are read)."""
    if not directory.is_dir():
        return []
    parser = BytesHeaderParser(policy=compat32)
    found = []
    for path in sorted(directory.glob("*.eml")):
        with path.open("rb") as handle:
            headers = parser.parse(handle)
        stamp = path.name.split("-", 1)[0]
        received = datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        found.append(
            Captured(
                path=path,
                received=received,
                sender=_decoded(headers["From"]) or headers["X-Envelope-From"] or "",
                recipients=_decoded(headers["To"]) or headers["X-Envelope-To"] or "",
                subject=_decoded(headers["Subject"]),
            )
        )
    return found
