"""Drafts in the database: revisions, autosave merging, conflicts, restore, refusals,
validation with `mailer check`'s messages, and the YAML round trip. Every test that
touches the database runs on SQLite and PostgreSQL (the `sessions` fixture)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from mailer.authoring.content import load_issue
from mailer.authoring.loader import ContentError
from mailer.authoring.profile import Profile, load_profile
from mailer.authoring.render import Renderer
from mailer.drafts import store
from mailer.drafts.diff import ADDED, CHANGED, MOVED, REMOVED, diff
from mailer.drafts.document import issue_from_document, structural_problems, validate_document
from mailer.drafts.yamlfile import from_yaml, to_yaml
from mailer.people.accounts import Accounts
from tests.conftest import REPO

PASSWORD = "a long enough password for tests"
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SEED = REPO / "examples" / "issues" / "2022-13.yaml"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(REPO / "config" / "newsletter.yaml")


def seed_document() -> dict[str, Any]:
    return from_yaml(SEED.read_text(encoding="utf-8"), str(SEED))


def _users(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions.begin() as session:
        accounts = Accounts(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        first = accounts.create_user(session, "ed@example.org", PASSWORD, role="editor")
        second = accounts.create_user(session, "al@example.org", PASSWORD, role="editor")
        return first.id, second.id


def test_every_save_is_a_revision_and_the_version_counts_saves(sessions) -> None:
    ed, _ = _users(sessions)
    document = seed_document()
    with sessions.begin() as session:
        draft = store.create_draft(session, {}, author_id=ed, now=T0)
    assert (draft.version, draft.head, draft.title) == (1, 1, "Untitled draft")
    with sessions.begin() as session:
        saved = store.save_draft(
            session, draft.id, document, base_version=1, author_id=ed, now=T0, autosave=False
        )
    assert (saved.version, saved.head) == (2, 2)
    assert saved.title.startswith("2022 Second Working-Group Meeting")
    with sessions() as session:
        again = store.get_draft(session, draft.id)
        revisions = store.history(session, draft.id)
        assert again.document == document
        assert [(r.number, r.kind, r.author_id) for r in revisions] == [
            (2, "save", ed),
            (1, "save", ed),
        ]
        assert store.get_revision(session, draft.id, 1).document == {}
        listed = store.list_drafts(session)
    assert [(d.id, d.number, d.year, d.head) for d in listed] == [(draft.id, 13, 2022, 2)]


def test_autosaves_by_one_author_within_the_window_are_one_revision(sessions) -> None:
    ed, al = _users(sessions)
    with sessions.begin() as session:
        draft = store.create_draft(session, {"title": ""}, author_id=ed, now=T0)

    def autosave(title: str, version: int, at: datetime, author: int) -> store.DraftView:
        with sessions.begin() as session:
            return store.save_draft(
                session,
                draft.id,
                {"title": title},
                base_version=version,
                author_id=author,
                now=at,
                autosave=True,
            )

    one = autosave("2", 1, T0 + timedelta(seconds=5), ed)  # head is a save: a new revision
    two = autosave("20", one.version, T0 + timedelta(seconds=60), ed)  # merged
    three = autosave("202", two.version, T0 + timedelta(seconds=170), ed)  # 110 s: merged
    assert (one.head, two.head, three.head) == (2, 2, 2)
    assert three.version == 4  # every save counts, merged or not
    late = autosave("2022", three.version, T0 + timedelta(seconds=400), ed)  # window passed
    other = autosave("2022 x", late.version, T0 + timedelta(seconds=401), al)  # another author
    assert (late.head, other.head) == (3, 4)
    with sessions.begin() as session:
        saved = store.save_draft(
            session,
            draft.id,
            {"title": "2022 y"},
            base_version=other.version,
            author_id=al,
            now=T0 + timedelta(seconds=402),
            autosave=False,
        )
        assert saved.head == 5  # a deliberate save is always its own revision
        after = store.save_draft(
            session,
            draft.id,
            {"title": "2022 z"},
            base_version=saved.version,
            author_id=al,
            now=T0 + timedelta(seconds=403),
            autosave=True,
        )
        assert after.head == 6  # the head was a save, not an autosave
    with sessions() as session:
        history = store.history(session, draft.id)
    assert [(r.number, r.kind, r.document["title"]) for r in history] == [
        (6, "autosave", "2022 z"),
        (5, "save", "2022 y"),
        (4, "autosave", "2022 x"),
        (3, "autosave", "2022"),
        (2, "autosave", "202"),
        (1, "save", ""),
    ]
    assert history[4].created_at == T0 + timedelta(seconds=5)
    assert history[4].updated_at == T0 + timedelta(seconds=170)


def test_merge_window_is_a_parameter(sessions) -> None:
    with sessions.begin() as session:
        draft = store.create_draft(session, {}, author_id=None, now=T0)
        view = draft
        for seconds in (1, 12, 24):
            view = store.save_draft(
                session,
                draft.id,
                {"title": str(seconds)},
                base_version=view.version,
                author_id=None,
                now=T0 + timedelta(seconds=seconds),
                autosave=True,
                merge_window=timedelta(seconds=10),
            )
        assert view.head == 4


def test_a_save_from_an_old_version_is_a_conflict_and_writes_nothing(sessions) -> None:
    ed, al = _users(sessions)
    with sessions.begin() as session:
        draft = store.create_draft(session, {"title": "first"}, author_id=ed, now=T0)
    with sessions.begin() as session:
        store.save_draft(
            session,
            draft.id,
            {"title": "Ed's"},
            base_version=1,
            author_id=ed,
            now=T0,
            autosave=False,
        )
    with sessions.begin() as session, pytest.raises(store.DraftConflict) as raised:
        store.save_draft(
            session,
            draft.id,
            {"title": "Al's"},
            base_version=1,
            author_id=al,
            now=T0,
            autosave=False,
        )
    assert raised.value.current.document == {"title": "Ed's"}
    assert raised.value.current.version == 2
    assert isinstance(raised.value, store.DraftError)
    with sessions() as session:
        assert store.get_draft(session, draft.id).document == {"title": "Ed's"}
        assert len(store.history(session, draft.id)) == 2


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"blocks": [{"video": {"src": "x"}}]}, "blocks.0"),
        ({"blocks": [{"paragraph": "x", "heading": "y"}]}, "blocks.0"),
        ({"blocks": ["just text"]}, "blocks.0"),
        (
            {"blocks": [{"statement": {"name": "A", "text": "B", "email": "a@b"}}]},
            "blocks.0.statement.email",
        ),
        (
            {"blocks": [{"statement": {"name": "A", "roles": "one role"}}]},
            "blocks.0.statement.roles",
        ),
        ({"blocks": [{"statement": {"name": ["A"]}}]}, "blocks.0.statement.name"),
        ({"number": "13"}, "number"),
        ({"number": True}, "number"),
        ({"year": 2022.5}, "year"),
        ({"date": 20220929}, "date"),
        ({"title": {"text": "x"}}, "title"),
        ({"blocks": {"paragraph": "x"}}, "blocks"),
        ({"script": "<script>alert(1)</script>"}, "script"),
        ({"contact": [{"line": "x"}]}, "contact.0"),
    ],
)
def test_crafted_documents_are_refused_naming_the_field(sessions, document, field) -> None:
    with sessions.begin() as session:
        draft = store.create_draft(session, {"title": "kept"}, author_id=None, now=T0)
    with sessions.begin() as session, pytest.raises(store.DraftRefused) as raised:
        store.save_draft(
            session, draft.id, document, base_version=1, author_id=None, now=T0, autosave=True
        )
    assert field in [e.field for e in raised.value.errors], raised.value.errors
    with sessions.begin() as session, pytest.raises(store.DraftRefused):
        store.create_draft(session, document, author_id=None, now=T0)
    with sessions() as session:
        assert store.get_draft(session, draft.id).document == {"title": "kept"}
        assert len(store.history(session, draft.id)) == 1
        assert len(store.list_drafts(session)) == 1


def test_unfinished_drafts_are_saved_and_validation_says_what_check_says(sessions, profile) -> None:
    unfinished = {
        "newsletter": "lmec",
        "number": None,
        "title": "",
        "date": "2022-09-3",
        "blocks": [
            {"statement": {"name": "", "roles": [""], "text": "See [it](example.org)"}},
            {"paragraph": ""},
        ],
    }
    assert structural_problems(unfinished) == []
    with sessions.begin() as session:
        draft = store.create_draft(session, unfinished, author_id=None, now=T0)
        assert store.get_draft(session, draft.id).document == unfinished
    problems = {p.field: p.message for p in validate_document(unfinished, profile)}
    assert problems["number"] == "Input should be a valid integer"
    assert problems["year"] == "field required"
    assert problems["title"] == "String should have at least 1 character"
    assert problems["blocks.0.statement.name"] == "String should have at least 1 character"
    assert problems["blocks.0.statement.roles.0"] == "String should have at least 1 character"
    assert "not an absolute http(s) or mailto URL" in problems["blocks.0.statement.text"]
    assert problems["blocks.1.paragraph"] == "String should have at least 1 character"
    assert "date" in problems
    # the same messages as `mailer check` on the same content as a file
    with pytest.raises(ContentError) as from_file:
        from mailer.authoring.content import load_issue_text

        load_issue_text(to_yaml(unfinished | {"number": 0}), "x.yaml")
    file_messages = {p.message for p in from_file.value.problems}
    assert problems["title"] in file_messages
    assert problems["blocks.0.statement.name"] in file_messages


def test_validation_adds_checks_advice_and_the_profile(profile) -> None:
    document = seed_document()
    assert validate_document(document, profile) == []
    document["preheader"] = ""
    document["newsletter"] = "other"
    problems = validate_document(document, profile)
    assert [(p.field, p.level) for p in problems] == [("newsletter", "error")]
    document["newsletter"] = "lmec"
    problems = validate_document(document, profile)
    assert [(p.field, p.level) for p in problems] == [("preheader", "warning")]
    assert problems[0].message.startswith("no preheader")


def test_validation_with_the_renderer_checks_the_rendered_email(profile, tmp_path) -> None:
    from mailer.authoring.media import MediaStore

    renderer = Renderer(
        REPO / "templates", profile, MediaStore(tmp_path, "https://news.example.org")
    )
    document = seed_document()
    assert validate_document(document, profile, renderer) == []
    document["blocks"].append({"paragraph": "x" * 100_000})
    problems = validate_document(document, profile, renderer)
    assert any(p.level == "error" and "KB" in p.message for p in problems), problems


def test_issue_from_document_renders_like_the_file(profile, tmp_path) -> None:
    from mailer.authoring.media import MediaStore

    renderer = Renderer(
        REPO / "templates", profile, MediaStore(tmp_path, "https://news.example.org")
    )
    issue = issue_from_document(seed_document(), profile)
    assert renderer.render(issue).text == renderer.render(load_issue(SEED)).text
    with pytest.raises(ContentError) as raised:
        issue_from_document({"newsletter": "lmec", "blocks": [{"video": {}}]}, profile, "draft 7")
    text = str(raised.value)
    assert "draft 7: blocks.0: unknown block type 'video'" in text
    assert "draft 7: title: field required" in text


def test_restore_adds_a_revision_and_keeps_the_later_ones(sessions) -> None:
    ed, al = _users(sessions)
    with sessions.begin() as session:
        draft = store.create_draft(session, {"title": "one"}, author_id=ed, now=T0)
        view = store.save_draft(
            session,
            draft.id,
            {"title": "two"},
            base_version=1,
            author_id=ed,
            now=T0 + timedelta(minutes=1),
            autosave=False,
        )
        restored = store.restore(session, draft.id, 1, author_id=al, now=T0 + timedelta(minutes=2))
    assert (restored.version, restored.head, restored.document) == (3, 3, {"title": "one"})
    assert view.version == 2
    with sessions() as session:
        history = store.history(session, draft.id)
        assert [(r.number, r.kind, r.restored_from, r.author_id) for r in history] == [
            (3, "restore", 1, al),
            (2, "save", None, ed),
            (1, "save", None, ed),
        ]
        with pytest.raises(store.DraftNotFound):
            store.restore(session, draft.id, 9, author_id=al, now=T0)
        with pytest.raises(store.DraftNotFound):
            store.get_revision(session, draft.id, 0)
        with pytest.raises(store.DraftNotFound):
            store.get_draft(session, draft.id + 100)
        with pytest.raises(store.DraftNotFound):
            store.history(session, draft.id + 100)


def test_yaml_export_passes_check_and_reads_back_equal(sessions, profile) -> None:
    document = seed_document()
    document["blocks"].insert(
        0, {"paragraph": "<script>alert(1)</script> {{ 7*7 }} & \"quotes\" 'single'"}
    )
    document["subtitle"] = "  spaced  "
    document["title"] = "2022"
    with sessions.begin() as session:
        draft = store.create_draft(session, document, author_id=None, now=T0, kind="import")
    with sessions() as session:
        stored = store.get_draft(session, draft.id).document
        assert store.history(session, draft.id)[0].kind == "import"
    text = to_yaml(stored)
    assert from_yaml(text, "export.yaml") == stored
    issue = load_issue_from_text(text)
    assert issue.title == "2022"


def load_issue_from_text(text: str) -> Any:
    from mailer.authoring.content import load_issue_text

    return load_issue_text(text, "export.yaml")


def test_diff_names_blocks_fields_and_moves() -> None:
    old = seed_document()
    new = copy.deepcopy(old)
    new["title"] = "A new title"
    statement = new["blocks"][3]["statement"]
    name = statement["name"]
    statement["text"] = "New words."
    statement["roles"] = [*statement["roles"], "Chair"]
    new["blocks"].insert(0, {"heading": "Views of experts"})
    moved = new["blocks"].pop(2)  # the second paragraph goes last
    new["blocks"].append(moved)
    removed = new["blocks"].pop(5)
    changes = diff(old, new)
    by_kind = {(c.kind, c.field, c.block) for c in changes}
    assert (CHANGED, "title", None) in by_kind
    assert (ADDED, "", 1) in by_kind
    assert (CHANGED, "text", 4) in by_kind
    assert (CHANGED, "roles", 4) in by_kind
    assert (MOVED, "", len(new["blocks"])) in by_kind
    removed_change = next(c for c in changes if c.kind == REMOVED)
    assert removed_change.name == removed["statement"]["name"]
    text = next(c for c in changes if c.field == "text")
    assert text.where == f"Block 4 (statement, {name})"
    assert text.new == "New words." and text.old.startswith("Humanity currently")
    assert str(text).startswith(f"Block 4 (statement, {name}): text changed from")
    # nothing moved but the one block, nothing else changed
    assert len([c for c in changes if c.kind == MOVED]) == 1
    assert diff(old, old) == []


def test_diff_of_a_renamed_statement_is_a_change_not_a_new_card() -> None:
    old = {"blocks": [{"statement": {"name": "Mr. Zhou", "text": "Words."}}]}
    new = {"blocks": [{"statement": {"name": "Mr. ZHOU Jun", "text": "Words."}}]}
    assert [(c.kind, c.field, c.old, c.new) for c in diff(old, new)] == [
        (CHANGED, "name", "Mr. Zhou", "Mr. ZHOU Jun")
    ]
    other = {"blocks": [{"statement": {"name": "Ms. Lee", "text": "Other words."}}]}
    assert sorted(c.kind for c in diff(old, other)) == [ADDED, REMOVED]


def test_seed_fixture_is_the_file(profile) -> None:
    assert Path(SEED).exists()
    assert validate_document(seed_document(), profile) == []


def test_word_changes_mark_only_what_changed() -> None:
    from mailer.drafts.diff import words

    old, new = words("Clean rivers matter to us all.", "Clean seas matter to all of us.")
    assert "".join(t for t, _ in old) == "Clean rivers matter to us all."
    assert "".join(t for t, _ in new) == "Clean seas matter to all of us."
    assert ("Clean ", False) in old and ("rivers", True) in old and ("seas", True) in new
    assert words("", "new") == ([], [("new", True)])
