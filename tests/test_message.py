"""Message building: pre-built MIME, byte-level personalisation, headers, DKIM."""

from __future__ import annotations

import base64
import re
import subprocess
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.authoring.render import Slot, fill
from mailer.delivery.dkim import make_signer
from mailer.delivery.message import (
    BadAddress,
    HeaderInjection,
    Identity,
    MessageTemplate,
    Recipient,
)
from mailer.delivery.tokens import make_token
from mailer.errors import UserInputError

SECRET = "test-secret-key-0123456789abcdef"
IDENTITY = Identity(
    public_base_url="https://news.example.org",
    secret=SECRET,
    sender_domain="lmec.example.org",
    list_id="newsletter.lmec.example.org",
    list_name="LMEC Newsletter",
)


def template(html: str = "<p>Hi %%NAME%%</p>", text: str = "Hi %%NAME%%", **kw) -> MessageTemplate:
    values: dict[str, object] = {
        "identity": IDENTITY,
        "campaign_id": 7,
        "nonce": "n1",
        "subject": "Issue 15, 2022 — 澜沧江-湄公河",
        "sender": "LMEC Newsletter <newsletter@lmec.example.org>",
        "html": html,
        "text": text,
    }
    values.update(kw)
    return MessageTemplate(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = message.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return (
        text.get_content().replace("\r\n", "\n").removesuffix("\n"),
        html.get_content().replace("\r\n", "\n").removesuffix("\n"),
    )


def test_structure_and_headers() -> None:
    out = template(reply_to="li.xia@fecomee.org.cn").personalise(
        Recipient(42, "le@example.vn", "Lê Ngọc Tuấn"), datetime(2022, 12, 19, 1, 0, tzinfo=UTC)
    )
    assert out.data.count(b"\r\n") == out.data.count(b"\n")  # CRLF only
    assert all(len(line) <= 998 for line in out.data.split(b"\r\n"))
    message = parse(out.data)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert message["Subject"] == "Issue 15, 2022 — 澜沧江-湄公河"
    assert str(message["From"]) == "LMEC Newsletter <newsletter@lmec.example.org>"
    assert message["Reply-To"] == "li.xia@fecomee.org.cn"
    assert message["Date"] == "Mon, 19 Dec 2022 01:00:00 +0000"
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == "<7.42.n1@lmec.example.org>" == out.message_id
    assert message["List-Id"] == "LMEC Newsletter <newsletter.lmec.example.org>"
    token = make_token(SECRET, 42)
    assert message["List-Unsubscribe"] == f"<https://news.example.org/unsubscribe/{token}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert out.envelope_from == "newsletter@lmec.example.org"
    assert out.recipient == "le@example.vn"
    assert bodies(message) == ("Hi Lê Ngọc Tuấn", "<p>Hi Lê Ngọc Tuấn</p>")


def test_mailto_unsubscribe_and_verp() -> None:
    identity = Identity(**{**IDENTITY.__dict__, "unsubscribe_mailto": "unsub@lmec.example.org",
                           "bounce_verp": True})  # fmt: skip
    out = template(identity=identity).personalise(Recipient(5, "a@example.org"))
    token = make_token(SECRET, 5)
    assert parse(out.data)["List-Unsubscribe"] == (
        f"<https://news.example.org/unsubscribe/{token}>, "
        f"<mailto:unsub@lmec.example.org?subject=unsubscribe%20{token}>"
    )
    assert out.envelope_from == f"bounces+{token}@lmec.example.org"


@pytest.mark.parametrize(
    "name",
    [
        "张玉军",
        "ស្រី សុនលាង",
        "ລອນຄຳ ອັດສະນາວົງ",
        "သော်သော်ဟန်",
        "นฤมล โอริส",
        "Lê Ngọc Tuấn",
        "Narumon ORIS, Environmentalist (Senior Professional level) 名字" * 3,
        'Smith, "Jo" <jo>',
        "",
    ],
)
def test_names_in_any_script_are_encoded_and_decode_back(name: str) -> None:
    out = template().personalise(Recipient(1, "x@example.org", name))
    head = out.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    for word in re.findall(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=", head):
        assert len(word) <= 75  # RFC 2047 2
    raw_to = re.search(rb"^To: (.*?)\r\n(?! )", head, re.S | re.M)
    assert raw_to is not None
    decoded = str(make_header(decode_header(raw_to.group(1).decode())))
    if name:
        assert parse(out.data)["To"].addresses[0].addr_spec == "x@example.org"
        assert name in decoded.replace('\\"', '"') and decoded.endswith("<x@example.org>")
    else:
        assert decoded == "x@example.org"


@pytest.mark.parametrize(
    ("field", "recipient", "extra"),
    [
        ("name", Recipient(1, "a@example.org", "Name\r\nBcc: x@evil.example"), {}),
        ("name", Recipient(1, "a@example.org", "Name\nBcc: x@evil.example"), {}),
        ("email", Recipient(1, "a@example.org\r\nBcc: x@evil.example", None), {}),
    ],
)
def test_line_breaks_in_recipient_headers_are_refused(field, recipient, extra) -> None:
    with pytest.raises(HeaderInjection, match=f"{field}: line breaks"):
        template(**extra).personalise(recipient)


@pytest.mark.parametrize(
    "extra",
    [
        {"subject": "Hello\r\nBcc: x@evil.example"},
        {"sender": "LMEC <news@lmec.example.org>\nBcc: x@evil.example"},
        {"reply_to": "a@b.org\rBcc: x@evil.example"},
    ],
)
def test_line_breaks_in_campaign_headers_are_refused(extra) -> None:
    with pytest.raises(HeaderInjection, match="line breaks"):
        template(**extra)


SLOTS = list(Slot)
piece = st.lists(
    st.sampled_from([*"ab =.\n\t<>&\"'%-_xyz012", "ท", "ă", "澜", "ေ", " \n", "x" * 90]),
    max_size=60,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(piece, min_size=1, max_size=6),
    slots=st.lists(st.sampled_from(SLOTS), min_size=5, max_size=5),
    name=st.text(alphabet=st.sampled_from(list("Aé澜ท &<>\"'= ")), max_size=40),
    subscriber_id=st.integers(min_value=1, max_value=10**9),
)
def test_decoded_bodies_hold_exactly_this_recipients_values(
    pieces: list[str], slots: list[Slot], name: str, subscriber_id: int
) -> None:
    """Whatever surrounds the slots (long lines, '=', spaces at line ends, any script),
    QP decoding gives back the text with exactly this recipient's values filled in."""
    body = pieces[0]
    for slot, after in zip(slots, pieces[1:], strict=False):
        body += slot.value + after
    built = template(html=body, text=body)
    name = name.strip()
    out = built.personalise(Recipient(subscriber_id, "p@example.org", name))
    assert all(len(line) <= 76 for line in out.data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    values = {
        **built.urls_for(subscriber_id),
        Slot.NAME: name,
        Slot.EMAIL: "p@example.org",
    }
    text, html = bodies(parse(out.data))
    normal = body.replace("\r\n", "\n").removesuffix("\n")
    assert text == fill(normal, values, html=False)
    assert html == fill(normal, values, html=True)


def count_email_messages(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """Every EmailMessage constructed from now on, however it is made (by name, by a
    parser's message factory, by a subclass)."""
    made: list[type] = []
    original = EmailMessage.__init__

    def counting(self: EmailMessage, *args: Any, **kwargs: Any) -> None:
        made.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "__init__", counting)
    return made


def test_personalising_builds_no_email_message(monkeypatch: pytest.MonkeyPatch) -> None:
    made = count_email_messages(monkeypatch)
    built = template()
    assert made, "building the template makes its skeleton once (the counter sees it)"
    after_build = len(made)
    for index in range(50):
        built.personalise(Recipient(index + 1, f"p{index}@example.org", "P"))
    assert len(made) == after_build, "an EmailMessage was built per recipient"


def test_the_template_is_built_once_and_personalised_without_email_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    """A worker sending two campaigns in several batches builds each campaign's
    template once, and no EmailMessage for any recipient."""
    from mailer.delivery import dispatch
    from tests.smtpd import SMTPTestServer
    from tests.test_delivery_send import add_recipients, delivery_root, seed_campaign, send_all

    builds: list[int] = []

    class CountedTemplate(MessageTemplate):
        def __init__(self, **kwargs: Any) -> None:
            builds.append(kwargs["campaign_id"])
            super().__init__(**kwargs)

    made = count_email_messages(monkeypatch)
    template()
    per_build = len(made)  # EmailMessages one template build makes (its skeleton)
    made.clear()
    monkeypatch.setattr(dispatch, "MessageTemplate", CountedTemplate)
    with SMTPTestServer() as server:
        root = delivery_root(tmp_path, database_url, server.port, worker_batch_size=4)
        try:
            with root.sessions.begin() as session:
                add_recipients(session, 10)
            first, second = seed_campaign(root, "A"), seed_campaign(root, "B")
            made.clear()  # rendering and enqueueing are not sending
            worker = root.worker()
            send_all(worker, root.sessions, first)
            send_all(worker, root.sessions, second)
        finally:
            root.close()
        assert server.count() == 20  # five batches of at most four
    assert sorted(builds) == sorted([first, second])
    assert len(made) == per_build * len(builds), made


def test_dkim_signature_covers_list_unsubscribe_and_verifies(tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    built = template(sign=make_signer("news", "lmec.example.org", key))
    out = built.personalise(Recipient(3, "a@example.org", "澜沧江"))
    assert out.data.startswith(b"DKIM-Signature:")
    signature = parse(out.data)["DKIM-Signature"].replace(" ", "").lower()
    headers = re.search(r"h=([^;]+)", signature)
    assert headers is not None
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to"} <= set(
        headers.group(1).split(":")
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.lmec.example.org."
        return record

    assert dkim.verify(out.data, dnsfunc=dns)
    tampered = out.data.replace(b"/unsubscribe/", b"/unsubscribX/", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_base_url_with_a_query_string_is_escaped_in_html() -> None:
    identity = Identity(**{**IDENTITY.__dict__, "public_base_url": "https://x.org/n?a=1&b=2"})
    body = '<a href="%%UNSUBSCRIBE_URL%%">u</a> %%VIEW_URL%%'
    built = template(identity=identity, html=body, text=body)
    text, html = bodies(parse(built.personalise(Recipient(9, "p@example.org")).data))
    links = built.urls_for(9)
    assert text == fill(body, links, html=False)
    assert html == fill(body, links, html=True)
    assert "&amp;b=2" in html and "&b=2" in text


def test_an_internationalised_domain_goes_out_as_idna() -> None:
    """test@bücher.de needs no SMTPUTF8 when written test@xn--bcher-kva.de (a relay
    without SMTPUTF8 refused it, 553); the body still shows the address as typed."""
    out = template(text="for %%EMAIL%%").personalise(Recipient(5, "test@Bücher.de", "Jo"))
    assert out.recipient == "test@xn--bcher-kva.de"
    assert not out.needs_smtputf8
    message = parse(out.data)
    assert message["To"] == "Jo <test@xn--bcher-kva.de>"
    assert bodies(message)[0] == "for test@Bücher.de"
    local = template().personalise(Recipient(6, "tëst@bücher.de"))
    assert local.recipient == "tëst@xn--bcher-kva.de" and local.needs_smtputf8  # SMTPUTF8
    with pytest.raises(BadAddress, match="has no valid domain name"):
        template().personalise(Recipient(7, "a@bü..de", "Jo"))
    for address in ("not-an-address", "@x.org", "a@", "a b@x.org"):
        with pytest.raises(BadAddress, match="is not an email address"):  # e.g. test-send --to
            template().personalise(Recipient(8, address))


def _has_dot_line(data: bytes) -> bool:
    return data.startswith(b".") or b"\n." in data


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=". \nab%é", max_size=300),
    name=st.text(alphabet=". ab", max_size=20),
)
def test_a_message_called_transparent_has_no_line_starting_with_a_dot(text: str, name: str) -> None:
    """`transparent` lets SMTP skip its scan for dot-stuffing: it must never be wrong."""
    out = template(html=f"<p>{text} %%NAME%%</p>", text=f"{text}\n%%NAME%%").personalise(
        Recipient(5, "reader@example.org", name or None)
    )
    if out.transparent:
        assert not _has_dot_line(out.data)


def test_ordinary_messages_are_transparent_and_dotted_lines_are_not() -> None:
    recipient = Recipient(5, "reader@example.org", "Lê Ngọc Tuấn")
    assert template().personalise(recipient).transparent
    dotted = template(text="Hi %%NAME%%\n.hidden line").personalise(recipient)
    assert _has_dot_line(dotted.data) and not dotted.transparent
    dotted_name = template().personalise(Recipient(5, "reader@example.org", ".dot"))
    assert _has_dot_line(dotted_name.data) and not dotted_name.transparent


@pytest.mark.parametrize("slot", list(Slot))
def test_a_per_recipient_slot_in_the_subject_is_refused(slot: Slot) -> None:
    """Slots are filled in the body only: in the Subject header one would go out literally."""
    with pytest.raises(UserInputError, match=rf"^subject: {slot.value} cannot be used here"):
        template(subject=f"News for {slot.value}")
