"""The block editor's server side, over HTTP on both databases: the page, validation
as you type (messages keyed by field), the preview (editor text is text), saves with a
version (conflict 409 with both versions' differences), crafted saves refused, roles,
CSRF and size limits. The page itself in Chromium: test_draft_editor_browser.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mailer.compose import Root, build
from mailer.drafts.store import create_draft, get_draft
from mailer.settings import Settings
from mailer.timestamps import utcnow
from mailer.web.draft_editor import field_key
from tests.web_harness import add_user, client, login, make_app

DOCUMENT: dict[str, Any] = {
    "newsletter": "lmec",
    "number": 13,
    "year": 2022,
    "date": "2022-09-29",
    "language": "en",
    "title": "A title",
    "preheader": "A line for the inbox.",
    "blocks": [
        {"paragraph": "The lead."},
        {
            "statement": {
                "name": "Mr. ZHOU Jun",
                "roles": ["Director"],
                "country": "CN",
                "text": "Their words.",
            }
        },
    ],
}


@pytest.fixture
def app(settings: Settings) -> Any:
    root: Root = build(settings)
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    add_user(app, "other@example.org", "editor")
    yield app
    root.close()


def new_draft(app: FastAPI, document: dict[str, Any] | None = None) -> int:
    with app.state.web.root.sessions.begin() as session:
        view = create_draft(
            session, copy.deepcopy(document or DOCUMENT), author_id=None, now=utcnow()
        )
        return view.id


def post(http: TestClient, token: str, url: str, body: dict[str, Any]) -> Any:
    return http.post(url, json=body, headers={"X-CSRF-Token": token})


def test_the_page_is_for_staff_only(app: FastAPI) -> None:
    draft = new_draft(app)
    anonymous = client(app)
    response = anonymous.get(f"/drafts/{draft}/edit")
    assert response.status_code == 303 and "/login" in response.headers["location"]
    assert anonymous.get(f"/drafts/{draft}.json").status_code == 303
    refused = anonymous.post(f"/drafts/{draft}/save", json={"document": DOCUMENT})
    assert refused.status_code in (401, 403)
    http, _token = login(app, "editor@example.org")
    page = http.get(f"/drafts/{draft}/edit")
    assert page.status_code == 200
    assert 'id="draft-state"' in page.text and "/static/editor/main.js" in page.text
    assert "<script>" not in page.text.replace('<script type="application/json"', "")
    assert http.get("/drafts/999/edit").status_code == 404


def test_save_needs_the_csrf_token(app: FastAPI) -> None:
    draft = new_draft(app)
    http, _token = login(app, "editor@example.org")
    body = {"document": DOCUMENT, "base_version": 1, "autosave": True}
    assert http.post(f"/drafts/{draft}/save", json=body).status_code == 403
    assert http.post(f"/drafts/{draft}/check", json={"document": DOCUMENT}).status_code == 403


def test_save_bumps_the_version_and_an_old_base_is_a_conflict_showing_both(
    app: FastAPI,
) -> None:
    draft = new_draft(app)
    first, token1 = login(app, "editor@example.org")
    second, token2 = login(app, "other@example.org")
    mine = copy.deepcopy(DOCUMENT)
    mine["title"] = "My title"
    saved = post(first, token1, f"/drafts/{draft}/save", {"document": mine, "base_version": 1})
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 2
    theirs = copy.deepcopy(DOCUMENT)
    theirs["blocks"][1]["statement"]["text"] = "Other words."
    late = {"document": theirs, "base_version": 1, "autosave": True}
    conflict = post(second, token2, f"/drafts/{draft}/save", late)
    assert conflict.status_code == 409
    data = conflict.json()
    assert data["current"]["version"] == 2
    assert data["current"]["document"]["title"] == "My title"
    changes = "\n".join(data["changes"])
    assert "My title" in changes and "A title" in changes  # theirs, then mine
    assert "Other words." in changes
    with app.state.web.root.sessions() as session:
        assert get_draft(session, draft).document["title"] == "My title"  # nothing written
    late["base_version"] = 2  # "keep mine": saved on top of theirs
    assert post(second, token2, f"/drafts/{draft}/save", late).json()["version"] == 3


@pytest.mark.parametrize(
    "crafted",
    [
        {"blocks": [{"carousel": {"images": []}}]},
        {"blocks": [{"statement": {"name": "A", "text": "B", "salary": 3}}]},
        {"blocks": [{"paragraph": ["not", "text"]}]},
        {"number": "thirteen"},
        {"script": "<script>alert(1)</script>"},
    ],
)
def test_a_crafted_save_is_refused_and_nothing_is_written(
    app: FastAPI, crafted: dict[str, Any]
) -> None:
    draft = new_draft(app)
    http, token = login(app, "editor@example.org")
    document = {**copy.deepcopy(DOCUMENT), **crafted}
    response = post(http, token, f"/drafts/{draft}/save", {"document": document, "base_version": 1})
    assert response.status_code == 422, response.text
    assert response.json()["problems"]
    with app.state.web.root.sessions() as session:
        view = get_draft(session, draft)
    assert view.version == 1 and view.document == DOCUMENT


def test_malformed_save_requests_are_refused(app: FastAPI) -> None:
    draft = new_draft(app)
    http, token = login(app, "editor@example.org")
    url = f"/drafts/{draft}/save"
    assert post(http, token, url, {"document": DOCUMENT}).status_code == 422  # no base version
    assert post(http, token, url, {"document": "text", "base_version": 1}).status_code == 422
    body = {"document": DOCUMENT, "base_version": True}
    assert post(http, token, url, body).status_code == 422
    body = {"document": DOCUMENT, "base_version": 1, "autosave": "yes"}
    assert post(http, token, url, body).status_code == 422
    huge = {"document": {**DOCUMENT, "about": "x" * 1_200_000}, "base_version": 1}
    assert post(http, token, url, huge).status_code == 413


def test_an_unfinished_draft_saves_and_its_problems_are_keyed_by_field(app: FastAPI) -> None:
    draft = new_draft(app)
    http, token = login(app, "editor@example.org")
    unfinished = copy.deepcopy(DOCUMENT)
    unfinished["title"] = ""
    unfinished["blocks"][1]["statement"]["name"] = ""
    unfinished["blocks"].append({"button": {"label": "Read", "url": "not a link"}})
    saved = post(http, token, f"/drafts/{draft}/save", {"document": unfinished, "base_version": 1})
    assert saved.status_code == 200, saved.text
    checked = post(http, token, f"/drafts/{draft}/check", {"document": unfinished}).json()
    fields = {p["field"]: p["message"] for p in checked["problems"]}
    assert "title" in fields
    assert "blocks.1.statement.name" in fields
    assert "not an absolute" in fields["blocks.2.button.url"]
    assert checked["preview"] is None  # nothing to show until it is an issue


def test_the_preview_is_the_rendered_email_and_editor_text_stays_text(app: FastAPI) -> None:
    draft = new_draft(app)
    http, token = login(app, "editor@example.org")
    document = copy.deepcopy(DOCUMENT)
    document["blocks"][0] = {"paragraph": '<script>alert(1)</script> {{ 7*7 }} R&D "quoted"'}
    document["preheader"] = ""
    checked = post(http, token, f"/drafts/{draft}/check", {"document": document}).json()
    assert checked["problems"] == []
    warned = {f["field"] for f in checked["findings"] if f["level"] == "warning"}
    assert "preheader" in warned  # the advice of `mailer check`, beside its field
    assert "<script>alert(1)</script> {{ 7*7 }} R&D" in checked["text"]
    preview = http.get(checked["preview"])
    assert preview.status_code == 200
    assert "default-src 'none'" in preview.headers["content-security-policy"]
    html = preview.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "{{ 7*7 }}" in html and "49" not in html.split("7*7")[1][:20]
    assert "R&amp;D" in html
    assert "Mr. ZHOU Jun" in html
    # Another editor cannot fetch someone else's preview; a made-up one is gone.
    other, _ = login(app, "other@example.org")
    assert other.get(checked["preview"]).status_code == 404
    assert http.get(f"/drafts/{draft}/preview/nothing.html").status_code == 404


def test_page_level_checks_name_the_size(app: FastAPI) -> None:
    draft = new_draft(app)
    http, token = login(app, "editor@example.org")
    checked = post(http, token, f"/drafts/{draft}/check", {"document": DOCUMENT}).json()
    assert 0 < checked["html_bytes"] < checked["limit_bytes"]


def test_field_keys_spell_every_path_as_the_page_does() -> None:
    document = {"blocks": [{"paragraph": "x"}, {"statement": {"name": ""}}]}
    assert field_key("blocks[1].statement.name", document) == "blocks.1.statement.name"
    assert field_key("blocks.1.name", document) == "blocks.1.statement.name"
    assert field_key("blocks.0.paragraph", document) == "blocks.0.paragraph"
    assert field_key("title", document) == "title"
    assert field_key("blocks.7.name", document) == "blocks.7.name"


def test_the_page_works_from_a_fresh_path(tmp_path: Path) -> None:
    """The template and static files the page names exist (no 404 in the browser)."""
    from mailer.web.app import STATIC_DIR

    for name in ("main.js", "form.js", "markdown.js", "photos.js", "editor.css"):
        assert (STATIC_DIR / "editor" / name).is_file()
