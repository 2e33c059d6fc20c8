"""Test sends: an issue as rendered now, to a few addresses, with the subject marked.

Built by delivery's MessageTemplate exactly like a campaign message (same headers,
same per-recipient links), but no campaign is created and nothing enters the
ledger. The CLI (`mailer test-send`) and the web app's "send me a test" share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import formataddr

from mailer.authoring.content import Issue
from mailer.authoring.render import Renderer
from mailer.compose import Root
from mailer.delivery.message import MessageTemplate, Recipient

TEST_MARK = "[TEST]"


def send_test(
    root: Root,
    renderer: Renderer,
    issue: Issue,
    recipients: Sequence[tuple[str, str | None]],
) -> list[tuple[str, str]]:
    """Send one copy to each (address, name); return (address, server reply) pairs.

    Transport errors propagate, typed (a wrong password or a dead server says so).
    """
    rendered = renderer.render(issue)
    sender = renderer.profile.sender
    template = MessageTemplate(
        identity=root.identity(),
        campaign_id=0,
        nonce="test",
        subject=f"{TEST_MARK} {rendered.subject}",
        sender=formataddr((sender.name, sender.address)),
        html=rendered.html,
        text=rendered.text,
        reply_to=sender.reply_to,
    )
    replies: list[tuple[str, str]] = []
    transport = root.transport()
    try:
        for address, name in recipients:
            message = template.personalise(Recipient(0, address, name or None))
            reply = transport.send(
                message.envelope_from,
                [message.recipient],
                message.data,
                smtputf8=message.needs_smtputf8,
            )
            replies.append((address, str(reply)))
    finally:
        transport.close()
    return replies
