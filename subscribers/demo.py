"""Demo data: the two lists and the fictional contacts of `examples/subscribers.csv`.

Used by `mailer demo` and by tests that need a realistic store: about 60 people in
the six countries (names in each country's script), several partners, and two
people outside the region (Europe/Berlin, Europe/London). Safe to run again.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.csvimport import ImportReport, import_csv
from subscribers.mailing_lists import add_list
from subscribers.models import MailingList

# slug, name, description, public: the newsletter is public (on everyone's preferences
# page, its issues in the archive); partners-only is private (only its members see it).
DEMO_LISTS = (
    (
        "newsletter",
        "LMEC Newsletter",
        "News from the Lancang-Mekong region",
        True,
    ),
    (
        "partners-only",
        "Partners only",
        "Invitations and documents for partners",
        False,
    ),
)


def seed_demo(session: Session, csv_path: Path) -> ImportReport:
    """Create the demo lists if missing and import the demo contacts (idempotent).

    Lists that exist already are left as they are, visibility included."""
    existing = set(session.scalars(select(MailingList.slug)))
    for slug, name, description, public in DEMO_LISTS:
        if slug not in existing:
            add_list(session, slug, name, description, public=public)
    return import_csv(session, csv_path, create_partners=True, consent_source="demo")
