"""Import what editors receive: a content file, plain text or a Word document -> a draft.

Partners send statements as Word documents or plain text laid out like a published
issue; editors should not have to retype them into YAML. This package turns such a
file into an issue document (the same shape as a YAML content file, so the content
model validates it and the renderer renders it) and lists, as warnings, everything it
could not place with certainty. Nothing in the file is dropped: what has no place is
kept as a paragraph and named in a warning.

The API, used by `mailer drafts import` and the web import button:

    import_file(path, profile) -> Imported
    import_bytes(data, filename, profile) -> Imported

A file that cannot be read at all (an unknown kind, not UTF-8, a corrupt .docx, too
large) is an ImportRefused; an invalid YAML file is a ContentError naming its lines.
This package knows files and text: it imports nothing of the web app, the CLI or the
database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailer.authoring.importer.docx import read_docx_lines
from mailer.authoring.importer.layout import read_layout
from mailer.authoring.importer.refusal import ImportRefused
from mailer.authoring.importer.text import read_text_lines
from mailer.authoring.importer.yamlfile import import_yaml
from mailer.authoring.loader import MAX_FILE_BYTES
from mailer.authoring.profile import Profile
from subscribers.clock import utcnow

__all__ = [
    "KINDS",
    "ImportRefused",
    "Imported",
    "import_bytes",
    "import_file",
]


@dataclass(frozen=True)
class Imported:
    """An issue document and what the editor should look at before using it.

    `document` has the fields of a YAML content file (newsletter, number, year, date as
    "YYYY-MM-DD", language, title, subtitle, subject, preheader, blocks, contact,
    about), JSON-compatible; optional fields are absent when the file gave none. The
    content model accepts it, unless the file held no paragraph and no statement (an
    issue needs one block; a warning says so). `warnings` name the line (or the
    paragraph of a .docx) each one is about."""

    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# The kinds of file the importer reads, by suffix, and the largest of each it accepts.
# A Word document may carry photos and fonts; only its text is read.
MAX_DOCX_BYTES = 20_000_000
KINDS = {
    ".yaml": MAX_FILE_BYTES,
    ".yml": MAX_FILE_BYTES,
    ".txt": MAX_FILE_BYTES,
    ".docx": MAX_DOCX_BYTES,
}


def import_file(path: Path, profile: Profile, *, today: dt.date | None = None) -> Imported:
    """Import a file from disk; messages name it by the path as given."""
    limit = _limit(path.name, str(path))
    try:
        with path.open("rb") as file:  # read no more than the limit, whatever the file
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise ImportRefused(str(path), "no such file") from None
    except OSError as exc:
        raise ImportRefused(str(path), f"cannot read: {exc.strerror}") from None
    return _import(data, path.name, str(path), profile, today)


def import_bytes(
    data: bytes, filename: str, profile: Profile, *, today: dt.date | None = None
) -> Imported:
    """Import an upload; `filename` (the name the browser sent) picks the kind of file
    and names it in messages. `today` is the date used when the file gives none."""
    return _import(data, Path(filename).name, filename, profile, today)


def _limit(filename: str, name: str) -> int:
    suffix = Path(filename).suffix.lower()
    if suffix not in KINDS:
        kinds = ", ".join(KINDS)
        raise ImportRefused(
            name,
            f"cannot import a {suffix or 'file without an extension'} file; the importer"
            f" reads {kinds} (save a document from your word processor as .docx, or as"
            " plain text in UTF-8)",
        )
    return KINDS[suffix]


def _import(
    data: bytes, filename: str, name: str, profile: Profile, today: dt.date | None
) -> Imported:
    limit = _limit(filename, name)
    if len(data) > limit:
        raise ImportRefused(
            name, f"the file is larger than {limit // 1_000_000} MB; is it the right file?"
        )
    suffix = Path(filename).suffix.lower()
    if suffix in (".yaml", ".yml"):
        document, found = import_yaml(data, name, profile)
        return Imported(document=document, warnings=found)
    warnings: list[str] = []
    if suffix == ".docx":
        lines = read_docx_lines(data, name, warnings)
    else:
        lines = read_text_lines(data, name, warnings)
    if not lines:
        raise ImportRefused(name, "the file holds no text")
    day = today or utcnow().astimezone(ZoneInfo(profile.timezone)).date()
    document, more = read_layout(lines, profile, day)
    return Imported(document=document, warnings=warnings + more)
