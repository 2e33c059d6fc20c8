"""Input the web app refuses at its boundary: control characters in any form or query
field, on both databases, before a handler (or PostgreSQL) sees them."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailer.authoring.content import Issue, load_issue_text
from mailer.compose import Root
from mailer.web import auth, editor, library, operator, public
from subscribers.models import MailingList, Partner, Subscriber
from tests.conftest import REPO
from tests.web_harness import add_user, client, login, make_app

ROUTERS = {"auth": auth.router, "public": public.router, "editor": editor.router}
ROUTERS["operator"] = operator.router
PATH_VALUES = {
    "{subscriber_id:int}": "1",
    "{partner_id:int}": "1",
    "{user_id:int}": "1",
    "{campaign_id:int}": "1",
    "{draft_id:int}": "1",
    "{number:int}": "1",
    "{slug}": "newsletter",
    "{key}": "2022-13",
    "{token}": "not-a-token",
}


def _app(root: Root) -> FastAPI:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    return app


def _concrete(path: str) -> str:
    for pattern, value in PATH_VALUES.items():
        path = path.replace(pattern, value)
    return path


def _cases(router_name: str) -> list[tuple[str, str, str, bool]]:
    """(method, path, field, is_form) for every declared query and form field of every
    route, and one undeclared field for each route (handlers may read the form)."""
    cases = []
    for route in ROUTERS[router_name].routes:
        assert isinstance(route, APIRoute)
        for method in sorted(route.methods or ()):
            is_form = method != "GET"
            declared = [p.alias for p in route.dependant.query_params]
            declared += [
                p.alias
                for p in route.dependant.body_params
                if p.alias not in ("file", "csrf_token")  # the file is not a field
            ]
            for field in [*declared, "extra"]:
                cases.append((method, _concrete(route.path), field, is_form))
    return cases


def _send(
    http: TestClient, token: str, method: str, path: str, fields: dict[str, str], is_form: bool
) -> object:
    if not is_form:
        return http.request(method, path, params=fields)
    data = {"csrf_token": token, **fields}
    if path in ("/issues/upload", "/subscribers/import", "/drafts/import"):  # multipart
        return http.request(method, path, data=data, files={"file": ("a.csv", b"email\n")})
    return http.request(method, path, data=data)


@pytest.mark.parametrize("router_name", list(ROUTERS))
def test_a_control_character_in_any_field_is_a_400_naming_the_field(
    root: Root, router_name: str
) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    cases = _cases(router_name)
    assert len(cases) >= 3  # the test sees the real route table
    wrong = []
    for method, path, field, is_form in cases:
        for value in ("a\x00b", "\x1b[31m", "x\x7f"):
            response = _send(http, token, method, path, {field: value}, is_form)
            assert hasattr(response, "status_code") and hasattr(response, "text")
            named = f"the field &#39;{field}&#39;" in response.text  # as Jinja escapes it
            if response.status_code != 400 or not named or "control character" not in response.text:
                wrong.append((method, path, field, value, response.status_code))
    assert wrong == []
    assert http.get("/issues").status_code == 200  # still signed in: nothing ran
    with root.sessions() as session:
        assert session.scalars(select(Partner)).all() == []
        assert session.scalars(select(Subscriber)).all() == []
        assert session.scalars(select(MailingList)).all() == []


def test_the_login_form_refuses_a_nul_without_a_session(root: Root) -> None:
    anonymous = client(_app(root))
    response = anonymous.post("/login", data={"email": "admin@example.org\x00", "password": "x"})
    assert response.status_code == 400
    assert "&#39;email&#39; contains a control character (U+0000)" in response.text
    response = anonymous.get("/subscribers", params={"q": "a\x00b"})
    assert response.status_code == 400  # before the login redirect: the input is refused


def test_tabs_and_line_breaks_are_text_and_files_are_not_fields(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    response = http.post(
        "/lists",
        data={
            "csrf_token": token,
            "slug": "news",
            "name": "News",
            "description": "Line one\r\n\tline two",
        },
    )
    assert response.status_code == 303, response.text
    with root.sessions() as session:
        [listed] = session.scalars(select(MailingList)).all()
        assert listed.description == "Line one\r\n\tline two"
    # A file's contents are the business of what reads it: a located content error.
    upload = http.post(
        "/issues/upload",
        data={"csrf_token": token},
        files={"file": ("bad.yaml", b"newsletter: a\x00b\n")},
    )
    assert upload.status_code == 200
    assert "bad.yaml was not saved" in upload.text
    assert '<td class="num">1</td>' in upload.text and "control character (U+0000)" in upload.text


# --- content files: parsed once, uploads located ------------------------------------------

ISSUE = REPO / "examples" / "issues" / "2022-13.yaml"
HOUR_NS = 3600 * 10**9


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the web app parses, with a fresh memo for this test."""
    seen: list[str] = []
    real = load_issue_text

    def counting(text: str, name: str, **kwargs: Any) -> Issue:
        seen.append(Path(name).name)
        return real(text, name, **kwargs)

    monkeypatch.setattr(library, "load_issue_text", counting)
    monkeypatch.setattr(library, "PARSED", library.ParsedIssues())
    return seen


def _issue_file(root: Root, mtime_ns: int) -> Path:
    folder = root.settings.resolved_issues_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "2022-13.yaml"
    path.write_bytes(ISSUE.read_bytes())
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_pages_and_the_preview_poll_parse_an_issue_once(root: Root, parses: list[str]) -> None:
    app = _app(root)
    http, _token = login(app, "admin@example.org")
    path = _issue_file(root, time.time_ns() - HOUR_NS)  # settled long ago
    stamps = {http.get("/issues/2022-13/stamp").json()["stamp"] for _ in range(3)}
    assert len(stamps) == 1
    assert parses == []  # the poll looks at the file's stamp only
    for _ in range(2):
        assert http.get("/issues").status_code == 200
        assert http.get("/issues/2022-13").status_code == 200
        assert http.get("/issues/2022-13/preview.html").status_code == 200
        assert http.get("/issues/2022-13/stamp").status_code == 200
    assert parses == ["2022-13.yaml"]

    path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    assert http.get("/issues/2022-13/stamp").json()["stamp"] not in stamps
    assert parses == ["2022-13.yaml"]
    http.get("/issues/2022-13")
    http.get("/issues")
    assert parses == ["2022-13.yaml"] * 2  # changed: parsed again, once


def test_a_rewrite_within_the_same_clock_tick_is_not_missed(root: Root, parses: list[str]) -> None:
    """File times are coarse: a same-size edit may keep the stamp. An entry parsed close
    to its file's change time is checked against the bytes (here: a future mtime)."""
    stamp = time.time_ns() + HOUR_NS
    path = _issue_file(root, stamp)
    app = _app(root)
    http, _token = login(app, "admin@example.org")
    assert "A Decade of Partnership" not in http.get("/issues").text
    http.get("/issues")
    assert parses == ["2022-13.yaml"]  # same bytes: no second parse
    text = path.read_text(encoding="utf-8")
    title = re.search(r"^title: (.*)$", text, re.MULTILINE)
    assert title is not None
    new_title = "A Decade of Partnership"[: len(title.group(1))].ljust(len(title.group(1)), ".")
    path.write_text(text.replace(title.group(0), f"title: {new_title}"), encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))
    assert len(path.read_bytes()) == len(ISSUE.read_bytes())
    assert new_title in http.get("/issues").text
    assert parses == ["2022-13.yaml"] * 2


def _upload(http: TestClient, token: str, name: str, data: bytes) -> str:
    response = http.post("/issues/upload", data={"csrf_token": token}, files={"file": (name, data)})
    assert response.status_code == 200
    return response.text


def test_an_upload_that_is_not_utf8_is_located_by_line(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    text = ISSUE.read_text(encoding="utf-8").replace("title:", "title: Café", 1)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "Café" in row)
    page = _upload(http, token, "latin.yaml", text.encode("utf-8").replace("é".encode(), b"\xe9"))
    assert f'<td class="num">{line}</td>' in page
    assert "the file is not saved as UTF-8 text" in page
    assert "byte" not in page.split("upload-errors", 1)[1].split("</section>", 1)[0]


def test_upload_errors_are_plain_words_and_oversized_files_are_refused(root: Root) -> None:
    app = _app(root)
    http, token = login(app, "admin@example.org")
    page = _upload(http, token, "indent.yaml", b"title: a\n- b\n")
    assert '<td class="num">2</td>' in page
    assert "this line is indented differently from the lines above it" in page
    assert "while parsing" not in page and "&lt;block end&gt;" not in page
    page = _upload(http, token, "deep.yaml", b"a: " + b"[" * 60 + b"]" * 60 + b"\n")
    assert "nested more than 50 levels deep" in page and "max_depth" not in page
    page = _upload(http, token, "big.yaml", b"# x\n" * 250_001)
    assert "the file is larger than 1 MB" in page
