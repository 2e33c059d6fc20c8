"""Stopping the capture server ends its client connections: each open client is told
421 and sees the connection close, and the port can be taken again at once.

`mailer capture` once kept its port for 25 s after SIGTERM while a client was
connected. Readiness is the server's greeting; the only waits are generous limits
for a reply that must come, never an assertion on how long something took.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from mailer.delivery.capture import start_capture
from tests.smtpd import free_port

LIMIT = 60.0  # seconds a reply may take on a busy machine before the test gives up


def _client(port: int) -> socket.socket:
    """A raw SMTP client that has read the greeting (so the server is serving it)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
    assert client.recv(1024).startswith(b"220 ")
    return client


def _mid_data(port: int) -> socket.socket:
    """A client halfway through a message: DATA accepted, the message not finished.

    It sends no part of the body: bytes the server has not read yet when it stops
    make the kernel answer the close with a reset, not an end of stream (TCP's rule),
    and whether the server got to read them first depends on how busy the machine is."""
    client = _client(port)
    client.sendall(b"EHLO client.example\r\n")
    _read_until(client, b"250 ")
    client.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    _read_until(client, b"354 ")
    return client


def _read_until(client: socket.socket, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = client.recv(4096)
        assert chunk, f"connection closed before {marker!r}: {seen!r}"
        seen += chunk
    return seen


def _rest(client: socket.socket) -> bytes:
    """Everything the server still sends, up to the end of the connection (EOF)."""
    seen = b""
    while chunk := client.recv(4096):
        seen += chunk
    return seen


def _port_is_free_again(port: int, tmp_path: Path) -> None:
    """Another capture server can listen on the port (the way `mailer capture` does)."""
    again = start_capture(tmp_path / "again", "127.0.0.1", port)
    again.stop()


def test_stop_closes_open_client_connections(tmp_path: Path) -> None:
    port = free_port()
    server = start_capture(tmp_path / "captured", "127.0.0.1", port)
    idle, sending = _client(port), _mid_data(port)
    server.stop()
    for client in (idle, sending):
        with client:
            assert _rest(client) == b"421 4.3.2 capture server shutting down\r\n"
    _port_is_free_again(port, tmp_path)
    assert not list((tmp_path / "captured").glob("*.eml"))  # the half message was not kept


def test_mailer_capture_closes_its_clients_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    cli = [sys.executable, "-c", "from mailer.cli.main import main; main()"]
    process = subprocess.Popen(
        [*cli, "capture", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "MAILER_DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "capturing mail on" in process.stdout.readline()  # listening
        client = _mid_data(port)
        process.send_signal(signal.SIGTERM)
        with client:
            assert _rest(client) == b"421 4.3.2 capture server shutting down\r\n"
        _, err = process.communicate(timeout=LIMIT)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    _port_is_free_again(port, tmp_path)
