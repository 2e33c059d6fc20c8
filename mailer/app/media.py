"""Where uploaded photos are used, for the library page, deletion and the public /media/.

A photo is placed in an issue by its URL, which holds its hash, so "where is it used"
is a search of every document for the hash. Each kind of document has a finder in
`FINDERS`: content files (the issues folder and every file a campaign was made from),
frozen campaigns (their HTML) and drafts (their document and every revision) are here.
Other documents join by adding a finder (`FINDERS.append(...)`): it gets the session,
the issues folder and the hashes asked about, and yields (hash, Usage) for each place.

A `Usage` is `public` when subscribers or the public may see the document (a content
file, which can be sent or test-sent; a frozen campaign); only then does the public
/media/ URL serve an upload. Staff see every upload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Integer, Text, cast, column, inspect, or_, select, table
from sqlalchemy.orm import Session

from mailer.authoring.loader import MAX_FILE_BYTES
from mailer.delivery.campaigns import Campaign


@dataclass(frozen=True)
class Usage:
    kind: str  # "content file", "campaign", "draft", ...
    label: str  # what a person recognises: "2022-13.yaml", "Campaign 4: Issue 13"
    url: str | None  # the staff page that shows it, if any
    public: bool  # subscribers or the public may see the document

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# A finder: (session, issues folder, hashes asked about) -> (hash, where) for each place.
UsageFinder = Callable[[Session, Path, Sequence[str]], Iterable[tuple[str, Usage]]]


def content_files(session: Session, issues_dir: Path) -> list[Path]:
    """The issues folder's content files, then the files campaigns were made from."""
    found: dict[Path, None] = {}
    if issues_dir.is_dir():
        for path in sorted(issues_dir.glob("*.y*ml")):
            if path.suffix in (".yaml", ".yml"):
                found[path.resolve()] = None
    for name in session.scalars(select(Campaign.issue_path).distinct()):
        found.setdefault(Path(name), None)
    return list(found)


def in_content_files(
    session: Session, issues_dir: Path, hashes: Sequence[str]
) -> Iterable[tuple[str, Usage]]:
    for path in content_files(session, issues_dir):
        try:
            with path.open("rb") as file:
                text = file.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
        except OSError:
            continue  # a campaign's file that was moved away: nothing in it to find
        for hash_ in hashes:
            if hash_ in text:
                yield hash_, Usage("content file", path.name, f"/issues/{path.stem}", True)


def in_frozen_campaigns(
    session: Session, _issues_dir: Path, hashes: Sequence[str]
) -> Iterable[tuple[str, Usage]]:
    if not hashes:
        return
    rows = session.execute(
        select(Campaign.id, Campaign.name, Campaign.frozen_html).where(
            Campaign.frozen_html.is_not(None),
            or_(*(Campaign.frozen_html.contains(hash_, autoescape=True) for hash_ in hashes)),
        )
    )
    for campaign_id, name, html in rows:
        label, url = f"Campaign {campaign_id}: {name}", f"/campaigns/{campaign_id}"
        for hash_ in hashes:
            if hash_ in (html or ""):
                yield hash_, Usage("campaign", label, url, True)


# The drafts' tables (migration 0013, `mailer.drafts.models`), named here rather than
# imported: only the two columns searched are needed.
_DRAFTS = table("drafts", column("id", Integer), column("document", JSON))
_REVISIONS = table("draft_revisions", column("draft_id", Integer), column("document", JSON))


def in_drafts(
    session: Session, _issues_dir: Path, hashes: Sequence[str]
) -> Iterable[tuple[str, Usage]]:
    """Drafts whose document, or any revision of it, uses the photo: a revision can be
    restored, so its photos stay. Drafts are not public."""
    if not hashes or not inspect(session.connection()).has_table("drafts"):
        return
    current: dict[int, set[str]] = {}
    rows = session.execute(
        select(_DRAFTS.c.id, _DRAFTS.c.document).where(_mentions(_DRAFTS, hashes))
    )
    for draft_id, document in rows:
        text = json.dumps(document, ensure_ascii=False)
        current[draft_id] = {hash_ for hash_ in hashes if hash_ in text}
        for hash_ in sorted(current[draft_id]):
            title = document.get("title") if isinstance(document, dict) else None
            label = f"Draft {draft_id}: {title}" if title else f"Draft {draft_id}"
            yield hash_, Usage("draft", label, f"/drafts/{draft_id}/edit", False)
    rows = session.execute(
        select(_REVISIONS.c.draft_id, _REVISIONS.c.document).where(_mentions(_REVISIONS, hashes))
    )
    earlier: dict[int, set[str]] = {}
    for draft_id, document in rows:
        text = json.dumps(document, ensure_ascii=False)
        earlier.setdefault(draft_id, set()).update(h for h in hashes if h in text)
    for draft_id, found in sorted(earlier.items()):
        for hash_ in sorted(found - current.get(draft_id, set())):
            label = f"Draft {draft_id} (an earlier revision)"
            yield hash_, Usage("draft", label, f"/drafts/{draft_id}/history", False)


def _mentions(documents: Any, hashes: Sequence[str]) -> Any:
    text = cast(documents.c.document, Text)
    return or_(*(text.contains(hash_, autoescape=True) for hash_ in hashes))


FINDERS: list[UsageFinder] = [in_content_files, in_frozen_campaigns, in_drafts]


def where_used(session: Session, issues_dir: Path, hashes: Sequence[str]) -> dict[str, list[Usage]]:
    """Every place each photo (by hash) is used, as every finder reports it."""
    found: dict[str, list[Usage]] = {hash_: [] for hash_ in hashes}
    for finder in FINDERS:
        for hash_, usage in finder(session, issues_dir, hashes):
            if hash_ in found and usage not in found[hash_]:
                found[hash_].append(usage)
    return found


def is_public(session: Session, issues_dir: Path, hash_: str) -> bool:
    """Whether the public may see this upload: a document they can see uses it."""
    return any(usage.public for usage in where_used(session, issues_dir, [hash_])[hash_])
