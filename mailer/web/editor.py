"""The editors' area: issues (list, upload, preview, test send), campaigns (create
with an audience, edit a draft, send, schedule, pause, resume, cancel, progress) and
drafts of issues (new, import, history, revisions), one page module each.

Editors and admins may use every page here; posts need the session's CSRF token (each
page module's router says so); this module only gathers them for the app.
"""

from __future__ import annotations

from fastapi import APIRouter

from mailer.web import campaign_page, campaigns, drafts_history, issues

PAGES = (issues, campaigns, campaign_page, drafts_history)

# The pages' own routes, guards included, in one router (`app` includes it; tests read
# its route table).
router = APIRouter()
for _page in PAGES:
    router.routes.extend(_page.router.routes)
