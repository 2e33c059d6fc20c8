"""The per-recipient placeholders ("slots") of a rendered email, and where they may not go.

A leaf module, so that the content model and campaigns can refuse slots in a subject
without importing the renderer (which imports the content model).

A slot is replaced in the body of each message, never in its headers: the subject is
one header for every recipient, and the same words are the HTML `<title>`, the
preheader's `aria-label` and the web copy's title. So slots are refused in a subject
(and in an issue's title, which is its subject by default) rather than substituted in
some of those places and left literal in others.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Slot(StrEnum):
    """Per-recipient placeholders left in the rendered parts; see `mailer.authoring.render.fill`."""

    UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
    PREFERENCES_URL = "%%PREFERENCES_URL%%"
    VIEW_URL = "%%VIEW_URL%%"
    NAME = "%%NAME%%"
    EMAIL = "%%EMAIL%%"


SLOT_PATTERN = re.compile("|".join(re.escape(slot.value) for slot in Slot))


class SlotInSubject(ValueError):
    """A subject holds a per-recipient placeholder (it would go out literally)."""


def refuse_slots(value: str) -> str:
    """`value` as it is, or SlotInSubject naming the placeholder found in it."""
    found = SLOT_PATTERN.search(value)
    if found:
        raise SlotInSubject(
            f"{found.group()} cannot be used here: the subject is the same for every"
            " recipient (per-recipient placeholders are filled in the body only)"
        )
    return value
