"""Test sends from the web app: the issue as rendered now, to the editor's own address.

The message is built by delivery's MessageTemplate like every campaign message, with
the subject marked [TEST]; nothing is recorded in the ledger.
"""

from __future__ import annotations

from email.utils import formataddr

from mailer.compose import Root
from mailer.content import Issue
from mailer.message import MessageTemplate, Recipient
from mailer.render import Renderer


def send_test(root: Root, renderer: Renderer, issue: Issue, address: str, name: str) -> str:
    """Send one test copy; returns the server's reply. Transport errors propagate (typed)."""
    rendered = renderer.render(issue)
    sender = renderer.profile.sender
    template = MessageTemplate(
        identity=root.identity(),
        campaign_id=0,
        nonce="webtest",
        subject=f"[TEST] {rendered.subject}",
        sender=formataddr((sender.name, sender.address)),
        html=rendered.html,
        text=rendered.text,
        reply_to=sender.reply_to,
    )
    message = template.personalise(Recipient(0, address, name or None))
    transport = root.transport()
    try:
        reply = transport.send(
            message.envelope_from,
            [message.recipient],
            message.data,
            smtputf8=message.needs_smtputf8,
        )
    finally:
        transport.close()
    return str(reply)
