"""Names and subjects that look like RFC 2047 encoded words read back as they were typed.

`=?utf-8?q?X=0D=0ABcc:...?=` as a subscriber's name went out verbatim inside a quoted
string, and many decoders (Python's `decode_header` among them) turned it into a line
break and a `Bcc:` line; as a subject, `EmailMessage` itself decoded it and wrote the
line break onto the wire. Sent through the real SMTP server in tests/smtpd.py and read
back with `email.header.decode_header`, as a mail client would.
"""

from __future__ import annotations

from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import formataddr
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli import delivery as delivery_cli
from mailer.cli.main import app
from mailer.delivery.message import HeaderInjection, Identity, MessageTemplate, Recipient
from mailer.delivery.smtp import SMTPTransport
from mailer.errors import UserInputError
from tests.smtpd import SMTPTestServer

EVIL = "=?utf-8?q?X=0D=0ABcc:_victim@evil.example?="
ISSUE = Path(__file__).resolve().parent.parent / "examples" / "issues" / "2022-15.yaml"


def _decoded(value: str) -> str:
    """A header value as a mail client shows it (RFC 2047 words decoded once)."""
    return str(make_header(decode_header(value)))


def _raw_headers(data: bytes) -> dict[str, str]:
    """The header block as it arrived, folded lines joined, nothing decoded."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(data)
    return {
        name: str(value).replace("\r\n", "").replace("\n", "") for name, value in headers.items()
    }


def _send(server: SMTPTestServer, template: MessageTemplate, recipient: Recipient) -> bytes:
    message = template.personalise(recipient)
    transport = SMTPTransport("127.0.0.1", server.port, timeout=10)
    try:
        transport.send(message.envelope_from, [message.recipient], message.data)
    finally:
        transport.close()
    (received,) = server.messages
    return received.data


def _template(**overrides: object) -> MessageTemplate:
    values: dict[str, object] = {
        "identity": Identity(
            public_base_url="https://news.example.org",
            secret="test-secret-key-0123456789abcdef",
            sender_domain="lmec.example.org",
            list_id="newsletter.lmec.example.org",
            list_name=f"News {EVIL}",
        ),
        "campaign_id": 1,
        "nonce": "n",
        "subject": f"Issue 15 {EVIL}",
        "sender": formataddr(("ศูนย์ความร่วมมือ LMEC", "news@lmec.example.org")),
        "reply_to": '"Replies =?here" <reply@lmec.example.org>',
        "html": "<p>Hi %%NAME%%</p>",
        "text": "Hi %%NAME%%",
    }
    values.update(overrides)
    return MessageTemplate(**values)  # type: ignore[arg-type]


def test_encoded_word_names_and_subjects_decode_to_themselves() -> None:
    with SMTPTestServer() as server:
        data = _send(server, _template(), Recipient(5, "le@example.vn", EVIL))
    head = data.partition(b"\r\n\r\n")[0]
    assert b"\nBcc" not in head and b"\rBcc" not in head
    headers = _raw_headers(data)
    assert "Bcc" not in headers
    assert _decoded(headers["To"]) == f"{EVIL} <le@example.vn>"
    assert _decoded(headers["Subject"]) == f"Issue 15 {EVIL}"
    assert _decoded(headers["List-Id"]) == f"News {EVIL} <newsletter.lmec.example.org>"
    assert _decoded(headers["From"]) == "ศูนย์ความร่วมมือ LMEC <news@lmec.example.org>"
    assert _decoded(headers["Reply-To"]) == "Replies =?here <reply@lmec.example.org>"


def test_a_sender_whose_name_decodes_to_a_line_break_is_refused() -> None:
    with pytest.raises(HeaderInjection, match="sender: the name decodes to a line break"):
        _template(sender=f'"{EVIL}" <news@lmec.example.org>', reply_to=None)
    with pytest.raises(HeaderInjection, match="reply_to: the name decodes to a line break"):
        _template(reply_to=f'"{EVIL}" <reply@lmec.example.org>')
    with pytest.raises(UserInputError, match=r"reply_to: .* is not an email address"):
        _template(reply_to=f"{EVIL} <reply@lmec.example.org>")  # unquoted: two addresses


def test_a_subscriber_name_with_encoded_words_through_the_cli_and_the_worker(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SMTPTestServer() as server:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
        monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
        monkeypatch.setenv("MAILER_SECRET_KEY", "test-secret-key-0123456789abcdef")
        monkeypatch.setattr(delivery_cli.out, "width", 250)
        runner = CliRunner()
        for args in (
            ["lists", "add", "newsletter"],
            ["subscribers", "add", "le@example.vn", "--name", EVIL, "--list", "newsletter"],
            ["campaign", "create", str(ISSUE), "--list", "newsletter", "--subject", EVIL],
            ["send", "1"],
        ):
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args, result.stdout, result.stderr)
        assert "1 sent" in result.stdout
        refused = runner.invoke(
            app, ["campaign", "create", str(ISSUE), "--sender", f'"{EVIL}" <news@x.org>']
        )
        assert refused.exit_code == 1
        assert (
            refused.stderr
            == "error: sender: the name decodes to a line break or control character\n"
        )
        (received,) = server.messages
    headers = _raw_headers(received.data)
    assert "Bcc" not in headers
    assert _decoded(headers["To"]) == f"{EVIL} <le@example.vn>"
    assert _decoded(headers["Subject"]) == EVIL
