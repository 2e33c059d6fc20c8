"""`mailer drafts` and `mailer campaign create --draft` through the real CLI, on SQLite
and PostgreSQL, with a real SMTP server for the campaign that is sent."""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from mailer.cli import delivery as delivery_cli
from mailer.cli import drafts as drafts_cli
from mailer.cli.main import app
from mailer.delivery.campaigns import get_campaign
from mailer.drafts import store
from mailer.timestamps import utcnow
from tests.smtpd import SMTPTestServer

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "subscribers.csv"
ISSUE = REPO / "examples" / "issues" / "2022-15.yaml"


@pytest.fixture
def server():
    with SMTPTestServer() as running:
        yield running


@pytest.fixture
def mailer(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server):
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    monkeypatch.setenv("MAILER_SECRET_KEY", "test-secret-key-0123456789abcdef")
    monkeypatch.setattr(delivery_cli.out, "width", 250)
    monkeypatch.setattr(drafts_cli.out, "width", 250)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    return run


def _demo(mailer) -> None:
    mailer("lists", "add", "newsletter")
    mailer("lists", "add", "partners-only")
    mailer("subscribers", "import", str(DEMO), "--create-partners")


def _body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def test_import_list_show_export_and_import_back_equal(mailer, tmp_path: Path) -> None:
    assert mailer("drafts", "import", str(ISSUE)).stdout == "draft 1\n"
    listed = json.loads(mailer("drafts", "list", "--json").stdout)
    assert [(d["id"], d["number"], d["year"], d["revisions"]) for d in listed] == [(1, 15, 2022, 1)]
    assert "Issue 15" not in listed[0]["title"]  # the issue's own title
    shown = json.loads(mailer("drafts", "show", "1", "--json").stdout)
    assert shown["problems"] == [] and shown["document"]["number"] == 15
    text = mailer("drafts", "show", "1").stdout
    assert "check: no problems" in text and "statement: " in text
    exported = tmp_path / "exported.yaml"
    mailer("drafts", "export", "1", "--out", str(exported))
    assert "ok (0 error(s), 0 warning(s)" in mailer("check", str(exported)).stdout
    printed = mailer("drafts", "export", "1").stdout
    assert printed == exported.read_text(encoding="utf-8")
    assert mailer("drafts", "import", str(exported)).stdout == "draft 2\n"
    again = json.loads(mailer("drafts", "show", "2", "--json").stdout)
    assert again["document"] == shown["document"]
    history = mailer("drafts", "history", "2").stdout
    assert "import" in history


def test_history_and_restore(mailer, sessions: sessionmaker[Session]) -> None:
    mailer("drafts", "import", str(ISSUE))
    with sessions.begin() as session:
        draft = store.get_draft(session, 1)
        changed = draft.document | {"title": "A changed title"}
        store.save_draft(
            session, 1, changed, base_version=1, author_id=None, now=utcnow(), autosave=False
        )
    history = mailer("drafts", "history", "1").stdout
    assert "A changed title" in history and "import" in history
    restored = mailer("drafts", "restore", "1", "1").stdout
    assert "draft 1: revision 1 restored as revision 3" in restored
    shown = json.loads(mailer("drafts", "show", "1", "--json").stdout)
    assert shown["document"]["title"] == draft.document["title"]
    assert "restore of 1" in mailer("drafts", "history", "1").stdout
    missing = mailer("drafts", "restore", "1", "9", code=1)
    assert missing.stderr.strip() == "error: draft 1 has no revision 9"
    assert "no draft with id 7" in mailer("drafts", "show", "7", code=1).stderr


def test_import_refuses_what_it_cannot_read(mailer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("newsletter: lmec\nnumber: x\n", encoding="utf-8")
    result = mailer("drafts", "import", str(bad), code=1)
    assert f"{bad}:2: number:" in result.stderr and "Traceback" not in result.output
    assert json.loads(mailer("drafts", "list", "--json").stdout) == []


def test_a_campaign_from_a_draft_keeps_its_revision(
    mailer, server: SMTPTestServer, sessions: sessionmaker[Session]
) -> None:
    _demo(mailer)
    mailer("drafts", "import", str(ISSUE))
    with sessions.begin() as session:
        first = store.get_draft(session, 1)
        paragraph = first.document["blocks"][0]["paragraph"]
        # an autosave: the head is one a later autosave could merge into, until a
        # campaign is made from it
        store.save_draft(
            session,
            1,
            first.document,
            base_version=1,
            author_id=None,
            now=utcnow(),
            autosave=True,
        )
    created = mailer(
        "campaign", "create", "--draft", "1", "--list", "newsletter", "--country", "VN"
    )
    assert "campaign 1 created (draft): Issue 15, 2022" in created.stdout
    assert "made from drafts 1 revisions 2" in created.stdout
    with sessions.begin() as session:
        campaign = get_campaign(session, 1)
        frozen_revision = store.get_revision(session, 1, 2)
        assert campaign.draft_revision_id == frozen_revision.id
        assert not campaign.frozen
        edited = first.document | {
            "blocks": [
                {"paragraph": "Rewritten after the campaign was made."},
                *first.document["blocks"][1:],
            ]
        }
        after = store.save_draft(
            session,
            1,
            edited,
            base_version=2,
            author_id=None,
            now=utcnow() + timedelta(seconds=1),
            autosave=True,
        )
        assert after.head == 3  # not merged into the revision the campaign keeps
        assert store.get_revision(session, 1, 2).document == first.document
    sent = mailer("send", "1")
    assert "campaign 1 is sent" in sent.stdout
    messages = server.parsed()
    assert messages
    body = _body(messages[0])
    assert "Rewritten after the campaign" not in body
    assert " ".join(paragraph.split()[:6]) in " ".join(body.split())
    shown = mailer("campaign", "show", "1").stdout
    assert "/drafts/1/revisions/2" in shown


def test_campaign_create_wants_one_source(mailer) -> None:
    _demo(mailer)
    mailer("drafts", "import", str(ISSUE))
    result = mailer("campaign", "create", "--draft", "9", "--list", "newsletter", code=1)
    assert "no draft with id 9" in result.stderr
    both = mailer("campaign", "create", str(ISSUE), "--draft", "1", code=1)
    assert "either an issue file or --draft N" in both.stderr


def test_an_incomplete_draft_is_refused(mailer, sessions: sessionmaker[Session]) -> None:
    _demo(mailer)
    with sessions.begin() as session:
        store.create_draft(
            session,
            {"newsletter": "lmec", "number": 16, "title": "", "blocks": []},
            author_id=None,
            now=utcnow(),
        )
    result = mailer("campaign", "create", "--draft", "1", "--list", "newsletter", code=1)
    assert "error: draft 1: title: String should have at least 1 character" in result.stderr
    assert "error: draft 1: year: field required" in result.stderr
    assert "error: draft 1: blocks: List should have at least 1 item" in result.stderr
    assert "campaign 1" not in mailer("campaign", "list").stdout
