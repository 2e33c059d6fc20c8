"""Test sends and preview files: an issue as rendered now, as one message, no campaign.

Built by delivery's MessageTemplate exactly like a campaign message (same headers,
same per-recipient links), but no campaign is created and nothing enters the
ledger. The CLI (`mailer test-send`) and the web app's "send me a test" share
`send_test`; `mailer render` writes `preview_eml` beside its HTML and text files,
so there is one MIME builder, the one that sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mailer.authoring.profile import Profile
from mailer.authoring.render import RenderedIssue
from mailer.delivery.message import Identity, MessageTemplate, Recipient
from mailer.delivery.transport import Transport

TEST_MARK = "[TEST]"
PREVIEW_READER = Recipient(0, "reader@example.org", "Preview Reader")


def _template(
    identity: Identity, profile: Profile, rendered: RenderedIssue, subject: str, nonce: str
) -> MessageTemplate:
    sender = profile.sender
    return MessageTemplate(
        identity=identity,
        campaign_id=0,
        nonce=nonce,
        subject=subject,
        sender=sender.mailbox,
        html=rendered.html,
        text=rendered.text,
        reply_to=sender.reply_to,
        extra_headers=(("Content-Language", rendered.language),),
    )


def send_test(
    identity: Identity,
    profile: Profile,
    transport: Callable[[], Transport],
    rendered: RenderedIssue,
    recipients: Sequence[tuple[str, str | None]],
) -> list[tuple[str, str]]:
    """Send one copy to each (address, name) over one new connection from `transport`;
    return (address, server reply) pairs.

    Transport errors propagate, typed (a wrong password or a dead server says so).
    """
    template = _template(identity, profile, rendered, f"{TEST_MARK} {rendered.subject}", "test")
    replies: list[tuple[str, str]] = []
    connection = transport()
    try:
        for address, name in recipients:
            message = template.personalise(Recipient(0, address, name or None))
            reply = connection.send(
                message.envelope_from,
                [message.recipient],
                message.data,
                smtputf8=message.needs_smtputf8,
            )
            replies.append((address, str(reply)))
    finally:
        connection.close()
    return replies


def preview_eml(identity: Identity, profile: Profile, rendered: RenderedIssue) -> bytes:
    """The message a sample reader ("Preview Reader") would get, for opening in a mail
    client; `rendered` normally carries sample values already (`with_sample_values`)."""
    template = _template(identity, profile, rendered, rendered.subject, "preview")
    return template.personalise(PREVIEW_READER).data
