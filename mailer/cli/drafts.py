"""`mailer drafts`: drafts composed in the browser, for scripts and automated checks.

Import a file into a new draft, list and show drafts, export one as a content file
that `mailer check` accepts, read its history and restore a revision. Thin wrappers
over `mailer.drafts` and `mailer.authoring.importer`; every error is one line on
stderr and exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mailer.cli.common import JsonOpt, fail, opened, print_json
from mailer.cli.output import err_console
from mailer.cli.present import local_time
from mailer.drafts import store
from mailer.drafts.document import validate_document
from mailer.drafts.yamlfile import to_yaml
from mailer.people.accounts import User

out = Console(highlight=False, soft_wrap=True)

drafts_app = typer.Typer(
    help="Drafts of issues composed in the browser: import, list, show, export, history, restore.",
    no_args_is_help=True,
)

DraftArg = Annotated[int, typer.Argument(help="Draft id (see `mailer drafts list`).")]


@drafts_app.command(
    "import",
    epilog=(
        "Example: mailer drafts import examples/issues/2022-13.yaml\n\n"
        "Example: mailer drafts import statements.docx   (prints `draft 4`; warnings on stderr)"
    ),
)
def drafts_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="A .yaml content file, or a .txt or .docx laid out like an issue.", dir_okay=False
        ),
    ],
) -> None:
    """Import a file into a new draft; prints `draft N`, and what to check on stderr."""
    from mailer.authoring.importer import import_file

    with opened() as the_root:
        imported = import_file(file, the_root.profile)
        with the_root.sessions.begin() as session:
            draft = store.create_draft(
                session,
                imported.document,
                author_id=None,
                now=the_root.clock(),
                kind="import",
            )
    for warning in imported.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    typer.echo(f"draft {draft.id}")


@drafts_app.command("list", epilog="Example: mailer drafts list --json")
def drafts_list(as_json: JsonOpt = False) -> None:
    """List drafts, the most recently changed first."""
    with opened() as the_root, the_root.sessions() as session:
        drafts = store.list_drafts(session)
        emails = _emails(session)
        zone = the_root.settings.timezone
    rows: list[dict[str, Any]] = [
        {
            "id": d.id,
            "title": d.title,
            "number": d.number,
            "year": d.year,
            "version": d.version,
            "revisions": d.head,
            "updated_at": d.updated_at.isoformat(),
            "updated_by": emails.get(d.updated_by) if d.updated_by else None,
        }
        for d in drafts
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "issue", "title", "revisions", "updated", "by")
    for draft, row in zip(drafts, rows, strict=True):
        issue = f"{draft.number}, {draft.year}" if draft.number and draft.year else "-"
        table.add_row(
            str(draft.id),
            issue,
            draft.title,
            str(draft.head),
            local_time(draft.updated_at, zone),
            row["updated_by"] or "-",
        )
    out.print(table)


@drafts_app.command("show", epilog="Example: mailer drafts show 4 --json")
def drafts_show(draft_id: DraftArg, as_json: JsonOpt = False) -> None:
    """Show a draft: its fields, its blocks and what `mailer check` would say of it."""
    with opened() as the_root, the_root.sessions() as session:
        draft = store.get_draft(session, draft_id)
        problems = validate_document(draft.document, the_root.profile, the_root.renderer())
        zone = the_root.settings.timezone
    if as_json:
        print_json(
            {
                "id": draft.id,
                "title": draft.title,
                "version": draft.version,
                "revision": draft.head,
                "created_at": draft.created_at.isoformat(),
                "updated_at": draft.updated_at.isoformat(),
                "document": draft.document,
                "problems": [
                    {"field": p.field, "level": p.level, "message": p.message} for p in problems
                ],
            }
        )
        return
    document = draft.document
    out.print(f"draft {draft.id}: {draft.title}", markup=False)
    out.print(
        f"version {draft.version}, revision {draft.head},"
        f" updated {local_time(draft.updated_at, zone)}",
        markup=False,
    )
    for key in (
        "newsletter",
        "number",
        "year",
        "date",
        "language",
        "subtitle",
        "subject",
        "preheader",
    ):
        if document.get(key) not in (None, ""):
            out.print(f"{key}: {document[key]}", markup=False)
    blocks = document.get("blocks") or []
    out.print(f"blocks: {len(blocks)}", markup=False)
    for position, block in enumerate(blocks, start=1):
        out.print(f"  {position}. {_block_line(block)}", markup=False)
    if not problems:
        out.print("check: no problems", markup=False)
    for problem in problems:
        out.print(f"{problem.level}: {problem}", markup=False)


@drafts_app.command(
    "export",
    epilog=(
        "Example: mailer drafts export 4 --out issues/2022-16.yaml\n\n"
        "Example: mailer drafts export 4 | mailer check /dev/stdin"
    ),
)
def drafts_export(
    draft_id: DraftArg,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write to this .yaml file (default: print it).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Write a draft as a YAML content file (one `mailer check` accepts when the draft is
    complete; importing it again gives the same draft)."""
    with opened() as the_root, the_root.sessions() as session:
        draft = store.get_draft(session, draft_id)
    text = to_yaml(draft.document)
    if out_file is None:
        typer.echo(text, nl=False)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"error: {out_file}: cannot write: {exc.strerror}") from None
    out.print(f"wrote draft {draft.id} (revision {draft.head}) to {out_file}", markup=False)


@drafts_app.command("history", epilog="Example: mailer drafts history 4")
def drafts_history(draft_id: DraftArg) -> None:
    """List a draft's revisions, the newest first: who saved each, when, and how."""
    with opened() as the_root, the_root.sessions() as session:
        revisions = store.history(session, draft_id)
        emails = _emails(session)
        zone = the_root.settings.timezone
    table = Table("revision", "kind", "saved", "by", "title")
    for revision in revisions:
        kind = revision.kind
        if revision.restored_from is not None:
            kind += f" of {revision.restored_from}"
        table.add_row(
            str(revision.number),
            kind,
            local_time(revision.updated_at, zone),
            emails.get(revision.author_id, "-") if revision.author_id else "-",
            revision.title,
        )
    out.print(table)


@drafts_app.command("restore", epilog="Example: mailer drafts restore 4 2")
def drafts_restore(
    draft_id: DraftArg,
    revision: Annotated[int, typer.Argument(help="The revision to restore (see history).")],
) -> None:
    """Make an old revision the draft's current content again, as a new revision (the
    revisions after it stay in the history)."""
    with opened() as the_root, the_root.sessions.begin() as session:
        draft = store.restore(session, draft_id, revision, author_id=None, now=the_root.clock())
    out.print(
        f"draft {draft.id}: revision {revision} restored as revision {draft.head}", markup=False
    )


def _emails(session: Any) -> dict[int, str]:
    from sqlalchemy import select

    return {uid: email for uid, email in session.execute(select(User.id, User.email))}


def _block_line(block: Any) -> str:
    if not isinstance(block, dict) or len(block) != 1:
        return "?"
    kind, body = next(iter(block.items()))
    if isinstance(body, str):
        first = body.strip().split("\n")[0]
        return f"{kind}: {first[:70]}{'…' if len(first) > 70 else ''}"
    if kind == "statement" and isinstance(body, dict):
        return f"statement: {body.get('name') or '(no name yet)'}"
    if kind == "image" and isinstance(body, dict):
        return f"image: {body.get('src') or '(no image yet)'}"
    if kind == "button" and isinstance(body, dict):
        return f"button: {body.get('label') or '(no label yet)'}"
    return str(kind)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.add_typer(drafts_app, name="drafts")
