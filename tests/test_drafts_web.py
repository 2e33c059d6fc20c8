"""Draft pages over HTTP on SQLite and PostgreSQL: a new draft, the import (and its
refusals), the Issues page listing drafts with files, the history with its changes,
restoring after asking, a revision's page and preview, campaigns made from a draft,
roles and crafted posts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailer.compose import Root, build
from mailer.delivery import campaigns as campaign_store
from mailer.delivery.campaigns import Campaign
from mailer.drafts import store
from mailer.drafts.models import Draft
from mailer.timestamps import utcnow
from mailer.web.pages import EMAIL_CSP
from subscribers import mailing_lists, repository
from tests.conftest import REPO, make_settings
from tests.web_harness import add_user, client, csrf_of, login, make_app

SEED = REPO / "examples" / "issues" / "2022-13.yaml"


@pytest.fixture
def web_root(database_url: str, tmp_path: Path) -> Root:
    root = build(
        make_settings(tmp_path, database_url=database_url, issues_dir=REPO / "examples" / "issues")
    )
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter", public=True)
        repository.add_subscriber(
            session, "linh@example.vn", name="Nguyễn Thị Linh", country="VN", lists=["newsletter"]
        )
    return root


def _editor(root: Root) -> tuple[FastAPI, TestClient, str]:
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    http, token = login(app, "editor@example.org")
    return app, http, token


def _import(http: TestClient, token: str, name: str, data: bytes) -> object:
    return http.post("/drafts/import", data={"csrf_token": token}, files={"file": (name, data)})


def _imported_seed(root: Root, http: TestClient, token: str) -> int:
    response = _import(http, token, "2022-13.yaml", SEED.read_bytes())
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    with root.sessions() as session:
        return max(session.scalars(select(Draft.id)))


def test_new_draft_goes_to_its_editor_and_the_issues_page_lists_it(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    response = http.post("/drafts/new", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/drafts/1/edit"
    with web_root.sessions() as session:
        draft = store.get_draft(session, 1)
        [revision] = store.history(session, 1)
    assert draft.document == {"newsletter": "lmec", "language": "en", "blocks": []}
    assert revision.author_id is not None and revision.kind == "save"
    page = http.get("/issues").text
    assert 'href="/drafts/1/edit"' in page and "Untitled draft" in page
    assert 'href="/issues/2022-13"' in page  # the files are listed with the drafts
    assert 'action="/drafts/import"' in page and 'action="/drafts/new"' in page


def test_import_makes_a_draft_and_shows_it(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    response = _import(http, token, "2022-13.yaml", SEED.read_bytes())
    assert response.status_code == 200  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert "Imported 2022-13.yaml into draft 1." in text
    assert "No problems found" in text
    assert 'src="/drafts/1/revisions/1/preview.html"' in text
    with web_root.sessions() as session:
        assert store.history(session, 1)[0].kind == "import"
    preview = http.get("/drafts/1/revisions/1/preview.html")
    assert preview.status_code == 200 and "ZHOU Jun" in preview.text
    assert preview.headers["content-security-policy"] == EMAIL_CSP
    issues = http.get("/issues").text
    assert "Issue 13, 2022" in issues and 'href="/drafts/1/history"' in issues


def test_a_broken_file_is_not_imported_and_each_problem_is_shown(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    broken = b"newsletter: lmec\nnumber: thirteen\nyear: 2022\nblocks:\n  - carousel: {}\n"
    response = _import(http, token, "broken.yaml", broken)
    text = response.text  # type: ignore[attr-defined]
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "broken.yaml was not imported" in text
    assert "<code>number</code>" in text and "carousel" in text
    refused = _import(http, token, "notes.pdf", b"%PDF-1.4")
    assert "cannot import a .pdf file" in refused.text  # type: ignore[attr-defined]
    with web_root.sessions() as session:
        assert session.scalars(select(Draft)).all() == []


def test_history_shows_changes_and_restore_asks_first(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    draft_id = _imported_seed(web_root, http, token)
    with web_root.sessions.begin() as session:
        first = store.get_draft(session, draft_id)
        document = first.document
        statement = document["blocks"][3]["statement"]
        name = statement["name"]
        statement["text"] = "<script>alert(1)</script> {{ 7*7 }} & new words"
        store.save_draft(
            session,
            draft_id,
            document,
            base_version=first.version,
            author_id=None,
            now=utcnow() + timedelta(minutes=5),
            autosave=False,
        )
    page = http.get(f"/drafts/{draft_id}/history", params={"old": 1, "new": 2})
    assert page.status_code == 200
    assert "Changes from revision 1 to revision 2" in page.text
    assert f"Block 4 (statement, {name})" in page.text
    assert "text changed" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # words marked one by one
    assert "{{" in page.text and "7*7" in page.text and "&amp;" in page.text
    assert "<script>alert" not in page.text
    # restoring asks first and says what happens, and changes nothing until confirmed
    asked = http.post(f"/drafts/{draft_id}/restore", data={"csrf_token": token, "revision": "1"})
    assert asked.status_code == 200
    assert "Restore revision 1" in asked.text and "is not deleted" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    with web_root.sessions() as session:
        assert store.get_draft(session, draft_id).head == 2
    done = http.post(
        f"/drafts/{draft_id}/restore",
        data={"csrf_token": token, "revision": "1", "confirm": "yes"},
    )
    assert done.status_code == 303
    with web_root.sessions() as session:
        restored = store.get_draft(session, draft_id)
        assert (
            restored.head == 3
            and restored.document == store.get_revision(session, draft_id, 1).document
        )
    assert "Restored revision 1 as revision 3." in http.get(done.headers["location"]).text


def test_a_revision_page_with_problems_lists_them_by_field(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    http.post("/drafts/new", data={"csrf_token": token})
    page = http.get("/drafts/1/revisions/1")
    assert page.status_code == 200
    assert "<code>title</code>: field required" in page.text
    assert "<code>blocks</code>" in page.text
    assert http.get("/drafts/1/revisions/1/preview.html").status_code == 422
    assert http.get("/drafts/1/revisions/2").status_code == 404
    assert http.get("/drafts/9/history").status_code == 404


def test_a_campaign_made_on_the_web_from_a_draft_links_its_revision(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    draft_id = _imported_seed(web_root, http, token)
    form = http.get("/campaigns/new").text
    assert f'value="draft:{draft_id}"' in form
    created = http.post(
        "/campaigns",
        data={"csrf_token": token, "issue": f"draft:{draft_id}", "lists": ["newsletter"]},
    )
    assert created.status_code == 303, created.text
    page = http.get(created.headers["location"]).text
    assert f'href="/drafts/{draft_id}/revisions/1"' in page
    with web_root.sessions() as session:
        [campaign] = session.scalars(select(Campaign)).all()
        assert campaign.draft_revision_id == store.get_revision(session, draft_id, 1).id
    history = http.get(f"/drafts/{draft_id}/history").text
    assert f'href="/campaigns/{campaign.id}"' in history
    # the edit form names the revision's own subject as the default, and a subject
    # chosen there is the one the frozen content carries
    edit = http.get(f"/campaigns/{campaign.id}/edit").text
    assert 'placeholder="2022 Second Working-Group Meeting' in edit
    saved = http.post(
        f"/campaigns/{campaign.id}/edit",
        data={"csrf_token": token, "subject": "Our own subject", "lists": ["newsletter"]},
    )
    assert saved.status_code == 303, saved.text
    with web_root.sessions.begin() as session:
        frozen = campaign_store.freeze(
            session,
            campaign.id,
            campaign_store.render_campaign(
                web_root.renderer(), campaign_store.get_campaign(session, campaign.id)
            ),
        )
        assert frozen.frozen_subject == "Our own subject"
        assert "<title>Our own subject</title>" in (frozen.frozen_html or "")


def test_an_unfinished_draft_makes_no_campaign(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    http.post("/drafts/new", data={"csrf_token": token})
    refused = http.post(
        "/campaigns", data={"csrf_token": token, "issue": "draft:1", "lists": ["newsletter"]}
    )
    assert refused.status_code == 200
    assert "draft 1: title: field required" in refused.text
    for key in ("draft:x", "draft:99999999999", "draft:"):
        bad = http.post(
            "/campaigns", data={"csrf_token": token, "issue": key, "lists": ["newsletter"]}
        )
        assert bad.status_code == 200 and "Choose a valid issue." in bad.text
    with web_root.sessions() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_the_public_never_sees_a_draft_and_posts_need_the_token(web_root: Root) -> None:
    app, http, token = _editor(web_root)
    draft_id = _imported_seed(web_root, http, token)
    anonymous = client(app)
    for path in (
        f"/drafts/{draft_id}/history",
        f"/drafts/{draft_id}/revisions/1",
        f"/drafts/{draft_id}/revisions/1/preview.html",
    ):
        response = anonymous.get(path)
        assert response.status_code in (303, 401), path
        assert "ZHOU Jun" not in response.text
        assert response.headers.get("location", "").startswith("/login")
    assert anonymous.post("/drafts/new").status_code in (303, 401, 403)
    # signed in, but without the session's CSRF token: refused, nothing made
    assert http.post("/drafts/new").status_code == 403
    assert http.post("/drafts/new", data={"csrf_token": "forged"}).status_code == 403
    restore = http.post(f"/drafts/{draft_id}/restore", data={"revision": "1", "confirm": "yes"})
    assert restore.status_code == 403
    assert http.post(
        f"/drafts/{draft_id}/restore", data={"csrf_token": token, "revision": "x"}
    ).status_code in (400, 422)
    with web_root.sessions() as session:
        assert [d.id for d in store.list_drafts(session)] == [draft_id]
        assert store.get_draft(session, draft_id).head == 1


def test_admins_use_the_draft_pages_too(web_root: Root) -> None:
    app = make_app(web_root)
    add_user(app, "admin@example.org", "admin")
    http, token = login(app, "admin@example.org")
    assert http.post("/drafts/new", data={"csrf_token": token}).status_code == 303
    assert http.get("/drafts/1/history").status_code == 200
    assert csrf_of(http.get("/drafts/1/history").text) == token


PARTNER_TEXT = """\
Lancang-Mekong Environmental Cooperation Center

Newsletter

Issue 17, 2023

March 8 2023

River Basin Partners Met in Vientiane

Partners from six countries met to plan the year's field work.

Ms. Bounmy Keola

Director of the Water Resources Institute, Lao PDR

Clean rivers need shared data & trust; we will publish ours every month.
"""


def test_a_text_file_laid_out_like_an_issue_becomes_a_draft(web_root: Root) -> None:
    _, http, token = _editor(web_root)
    response = _import(http, token, "partner.txt", PARTNER_TEXT.encode("utf-8"))
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "Imported partner.txt into draft 1." in response.text  # type: ignore[attr-defined]
    with web_root.sessions() as session:
        [revision] = store.history(session, 1)
    assert revision.kind == "import"
    assert revision.document["number"] == 17 and revision.document["year"] == 2023
    names = [b["statement"]["name"] for b in revision.document["blocks"] if "statement" in b]
    assert names == ["Ms. Bounmy Keola"]
