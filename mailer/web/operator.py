"""The admin area: subscribers, CSV import and export, partners, lists, suppression,
users and the settings in effect, one page module each.

Every route here needs a signed-in admin and, for posts, the session's CSRF token
(each page module's router says so); this module only gathers them for the app.
"""

from __future__ import annotations

from fastapi import APIRouter

from mailer.web import imports, lists, partners, settings_page, subscribers, suppression, users

PAGES = (subscribers, imports, partners, lists, suppression, users, settings_page)

router = APIRouter()
for _page in PAGES:
    router.include_router(_page.router)
