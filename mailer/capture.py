"""A local SMTP capture server (aiosmtpd) that stores every message as an `.eml` file.

For demos and for editors without a relay: point `MAILER_SMTP_PORT` at it and every
message lands in `settings.resolved_capture_dir`, one file each, named by arrival
time so a directory listing is the order they came in. Envelope sender and
recipients are kept as `X-Envelope-From` / `X-Envelope-To` header lines on top.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


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


def capture_server(directory: Path, host: str = "127.0.0.1", port: int = 2525) -> Controller:
    """The server, not yet started (`.start()` runs it in a background thread)."""
    return Controller(
        CaptureHandler(directory),
        hostname=host,
        port=port,
        enable_SMTPUTF8=True,
        decode_data=False,
    )


def start_capture(directory: Path, host: str = "127.0.0.1", port: int = 2525) -> Controller:
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
