"""A YAML content file, imported as it is: the loader validates it and names its lines."""

from __future__ import annotations

from typing import Any

from mailer.authoring.content import ImageBlock, Issue, StatementBlock, load_issue_text
from mailer.authoring.importer.refusal import ImportRefused
from mailer.authoring.loader import ContentError, decode_text
from mailer.authoring.profile import Profile


def import_yaml(data: bytes, name: str, profile: Profile) -> tuple[dict[str, Any], list[str]]:
    """The document of a valid content file and warnings; a ContentError listing every
    problem (with its line) when it is not valid, an ImportRefused when not UTF-8."""
    try:
        text = decode_text(data, name)
    except ContentError as exc:
        problem = exc.problems[0]
        raise ImportRefused(name, problem.message, problem.line) from None
    issue = load_issue_text(text, name)
    return document_of(issue), _warnings(issue, name, profile)


def document_of(issue: Issue) -> dict[str, Any]:
    """The issue as a YAML content file holds it, JSON-compatible (the date as text)."""
    return issue.model_dump(mode="json", exclude_none=True)


def _warnings(issue: Issue, name: str, profile: Profile) -> list[str]:
    """What the editor must still do: a draft has no folder beside it for photos."""
    warnings: list[str] = []
    if issue.newsletter != profile.id:
        warnings.append(
            f"{_where(issue, name, 'newsletter')}: the file is for the newsletter"
            f" {issue.newsletter!r}, not {profile.id!r}"
        )
    for index, block in enumerate(issue.blocks):
        if isinstance(block, StatementBlock):
            source, field = block.statement.photo, f"blocks[{index}].statement.photo"
        elif isinstance(block, ImageBlock):
            source, field = block.image.src, f"blocks[{index}].image.src"
        else:
            continue
        if source and not source.lower().startswith("https://"):
            warnings.append(
                f"{_where(issue, name, field)}: {source} is a file beside the YAML file;"
                " upload it to the media library and choose it again"
            )
    return warnings


def _where(issue: Issue, name: str, field: str) -> str:
    line = issue.line_of(field)
    return f"{name}:{line}: {field}" if line else f"{name}: {field}"
