"""Asking before a destructive action: one page for every "remove", "erase" and "cancel".

The app's Content-Security-Policy allows no inline script, so the question is asked on
the server: a destructive form posted without `confirm=yes` (or a GET of its address)
answers with a page that says what will be lost and carries the same form again with
`confirm=yes` and the CSRF token, plus a way back. Only the second post acts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from mailer.delivery import lifecycle
from mailer.delivery.campaigns import get_campaign
from mailer.people import removals
from mailer.web.context import web

YES = "yes"


def confirmed(value: str) -> bool:
    """Whether the form came from the confirmation page."""
    return value == YES


def ask(
    request: Request,
    *,
    title: str,
    consequences: Sequence[str],
    action: str,
    button: str,
    back: str,
    back_label: str = "Cancel",
    fields: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The confirmation page: `consequences` listed, a form posting `fields` and
    `confirm=yes` to `action`, and a link to `back` that changes nothing."""
    return web(request).pages.render(
        request,
        "confirm.html",
        title=title,
        consequences=list(consequences),
        action=action,
        button=button,
        back=back,
        back_label=back_label,
        fields=dict(fields or {}),
        confirm_value=YES,
    )


def ask_to_cancel(request: Request, session: Session, campaign_id: int) -> HTMLResponse | None:
    """The question before cancelling a campaign, or None when it cannot be cancelled
    (the cancel then fails with the usual message) and there is nothing to ask."""
    campaign = get_campaign(session, campaign_id)
    if not lifecycle.allowed(lifecycle.CANCEL, campaign.state):
        return None
    return ask(
        request,
        title=f"Cancel campaign {campaign.name}?",
        consequences=removals.cancel_consequences(session, campaign_id),
        action=f"/campaigns/{campaign_id}/cancel",
        button="Cancel the campaign",
        back=f"/campaigns/{campaign_id}",
        back_label="Keep the campaign",
    )
