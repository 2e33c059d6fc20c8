"""Admin pages: subscribers in and out as CSV (the CLI's import with its per-line
report, and the export of what the subscribers page shows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from mailer.app.errors import RecordError, store_errors
from mailer.app.subscribers import SubscriberFilter
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.context import web
from mailer.web.forms import DB, INVALID, upload_name
from subscribers import mailing_lists
from subscribers.csvexport import iter_csv
from subscribers.csvimport import import_csv
from subscribers.errors import ImportRejected, Problem

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])

MAX_IMPORT_BYTES = 50_000_000
BOM = "\ufeff"  # spreadsheets read UTF-8 CSV as UTF-8 only after a byte-order mark


@router.get("/subscribers/import")
def import_page(request: Request, session: DB) -> Response:
    return web(request).pages.render(
        request,
        "import.html",
        lists=mailing_lists.list_lists(session),
        report=None,
        problems=[],
        filename=None,
        form={},
    )


@router.post("/subscribers/import", max_body_size=MAX_IMPORT_BYTES + 64 * 1024)
def import_subscribers(
    request: Request,
    session: DB,
    file: UploadFile,
    list_slug: Annotated[str, Form()] = "",
    encoding: Annotated[str, Form()] = "",
    dry_run: Annotated[bool, Form()] = False,
    skip_invalid: Annotated[bool, Form()] = False,
    create_partners: Annotated[bool, Form()] = False,
) -> Response:
    """The CLI's import, with the same per-line report; all or nothing unless told otherwise."""
    name = upload_name(file, "upload.csv")
    data = file.file.read(MAX_IMPORT_BYTES + 1)  # sync handler: a big import runs in a thread
    report, problems = None, []
    if len(data) > MAX_IMPORT_BYTES:
        problems = [
            Problem(name, 0, "", "the file is larger than 50 MB; use `mailer subscribers import`")
        ]
    else:
        try:
            with store_errors():
                try:
                    report = import_csv(
                        session,
                        data,
                        name=name,
                        list_slug=list_slug or None,
                        encoding=encoding.strip() or None,
                        dry_run=dry_run,
                        skip_invalid=skip_invalid,
                        create_partners=create_partners,
                        consent_source="web-import",
                    )
                except ImportRejected as exc:  # the file's own report, one line a problem
                    problems = exc.problems
            if dry_run or problems:
                session.rollback()
            else:
                session.commit()
        except RecordError as exc:  # e.g. an unknown list
            session.rollback()
            problems = [Problem(name, 0, "", str(exc))]
    typed = {
        "list_slug": list_slug,
        "encoding": encoding,
        "dry_run": dry_run,
        "skip_invalid": skip_invalid,
        "create_partners": create_partners,
    }
    return web(request).pages.render(
        request,
        "import.html",
        INVALID if problems else 200,
        lists=mailing_lists.list_lists(session),
        report=report,
        problems=problems,
        filename=name,
        form=typed if problems else {},  # after a rejection, the options as they were chosen
    )


@router.get("/subscribers/export.csv")
def export_subscribers(
    request: Request,
    session: DB,
    q: str = "",
    list: str = "",
    country: str = "",
    partner: str = "",
    status: str = "",
) -> Response:
    """The subscribers the page shows with these filters, as UTF-8 CSV with a byte-order
    mark (so spreadsheets read Thai and Khmer right) in the columns the import reads,
    formula-like cells neutralised; streamed in batches, never held in memory whole."""
    found = SubscriberFilter.parse(
        q, country=country, partner=partner, list_slug=list, status=status
    )  # an unknown status is a 400 page
    # As on the page: a list's active members.
    filters = found.export_options(active_on_list=True)
    iter_csv(session, **filters)  # a bad filter is a 400 page now, not a broken download
    sessions = web(request).root.sessions

    def chunks() -> Iterator[bytes]:
        # Its own session: the request's is closed once the handler has returned.
        with sessions() as stream_session:
            yield BOM.encode("utf-8")
            for text, _rows in iter_csv(stream_session, **filters):
                yield text.encode("utf-8")

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )
