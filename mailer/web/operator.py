"""The admin area: subscribers, CSV import and export, partners, lists, suppression,
users, the settings in effect and the sign-ups, one page module each.

Every route here needs a signed-in admin and, for posts, the session's CSRF token
(each page module's router says so); this module only gathers them for the app.
"""

from __future__ import annotations

from fastapi import APIRouter

from mailer.web import (
    imports,
    lists,
    partners,
    settings_page,
    signup_staff,
    subscribers,
    suppression,
    users,
)

PAGES = (subscribers, imports, partners, lists, suppression, users, settings_page, signup_staff)

# The pages' own routes, guards included, in one router (`app` includes it; tests read
# its route table).
router = APIRouter()
for _page in PAGES:
    router.routes.extend(_page.router.routes)
