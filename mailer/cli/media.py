"""`mailer media`: the photo library from the command line (list, add), as on the web
app's Photos page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mailer.app import media as usage
from mailer.authoring import media_library
from mailer.authoring.media import MediaStore, UploadLimits
from mailer.cli.common import JsonOpt, fail, opened, print_json

out = Console(highlight=False, soft_wrap=True)

media_app = typer.Typer(help="Uploaded photos (the media library).", no_args_is_help=True)


@media_app.command("list", epilog="Example: mailer media list --json")
def media_list(as_json: JsonOpt = False) -> None:
    """List uploaded photos, newest first, with where each is used."""
    with opened() as root, root.sessions() as session:
        store = MediaStore(root.settings.resolved_media_dir, root.settings.public_base_url)
        items = media_library.list_media(session)
        used = usage.where_used(
            session, root.settings.resolved_issues_dir, [item.hash for item in items]
        )
        rows: list[dict[str, Any]] = [
            {
                "hash": item.hash,
                "url": store.url_of(item.name),
                "filename": item.original_filename,
                "width": item.width,
                "height": item.height,
                "bytes": item.bytes,
                "uploaded_at": item.uploaded_at.isoformat(),
                "used_in": [u.as_json() for u in used[item.hash]],
            }
            for item in items
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("hash", "file", "size", "used in")
    for row in rows:
        places = ", ".join(f"{u['kind']} {u['label']}" for u in row["used_in"]) or "-"
        table.add_row(row["hash"], row["filename"], f"{row['width']} x {row['height']}", places)
    out.print(table)


@media_app.command(
    "add",
    epilog="Example: mailer media add photos/zhou.jpg   (prints the URL to place in an issue)",
)
def media_add(
    file: Annotated[
        Path, typer.Argument(help="A JPEG, PNG or WebP photo.", exists=True, dir_okay=False)
    ],
) -> None:
    """Add a photo to the library: turned upright, metadata removed, at most 1200 px wide.

    Prints its URL, for a statement's `photo` or an image's `src`. Subscribers see it
    only once an issue uses it. The same photo added twice is kept once.
    """
    with opened() as root:
        settings = root.settings
        try:
            with file.open("rb") as handle:
                data = handle.read(settings.media_max_bytes + 1)
        except OSError as exc:
            raise fail(f"error: {file}: {exc.strerror}") from None
        store = MediaStore(settings.resolved_media_dir, settings.public_base_url)
        limits = UploadLimits(settings.media_max_bytes, settings.media_max_pixels)
        with root.sessions.begin() as session:
            added = media_library.add_upload(
                session, store, data, file.name, None, limits, user_id=None
            )
            item = added.item
            what = "added" if added.created else "already in the library:"
            out.print(
                f"{what} {item.original_filename} ({item.width} x {item.height} px)"
                f" {store.url_of(item.name)}"
            )


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root command."""
    app.add_typer(media_app, name="media")
