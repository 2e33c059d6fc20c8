"""The importer's API: content files, refusals, and what the editor is warned about."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mailer.authoring.content import Issue, load_issue
from mailer.authoring.importer import Imported, ImportRefused, import_bytes, import_file
from mailer.authoring.loader import ContentError
from mailer.authoring.profile import Profile, load_profile
from mailer.errors import UserInputError
from tests.conftest import REPO

ISSUES = REPO / "examples" / "issues"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(REPO / "config" / "newsletter.yaml")


@pytest.mark.parametrize("name", ["2022-13.yaml", "2022-15.yaml"])
def test_a_content_file_imports_as_it_is(profile: Profile, name: str) -> None:
    imported = import_file(ISSUES / name, profile)
    assert isinstance(imported, Imported)
    assert imported.warnings == []
    assert (
        Issue.model_validate(imported.document).model_dump()
        == load_issue(ISSUES / name).model_dump()
    )
    assert imported.document["date"] == str(load_issue(ISSUES / name).date)


def test_bytes_and_files_import_the_same(profile: Profile) -> None:
    path = ISSUES / "2022-13.yaml"
    assert import_bytes(path.read_bytes(), "upload.yml", profile) == import_file(path, profile)


def test_an_invalid_content_file_names_its_lines(profile: Profile) -> None:
    text = (ISSUES / "2022-13.yaml").read_text(encoding="utf-8").replace("number: 13", "number: x")
    with pytest.raises(ContentError) as caught:
        import_bytes(text.encode(), "issue.yaml", profile)
    assert "issue.yaml:5: number:" in str(caught.value)


def test_photos_beside_a_content_file_are_named(profile: Profile) -> None:
    text = (ISSUES / "2022-13.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "name: Mr. ZHOU Jun\n", "name: Mr. ZHOU Jun\n      photo: photos/zhou.jpg\n"
    )
    text = text.replace("newsletter: lmec", "newsletter: other")
    imported = import_bytes(text.encode(), "issue.yaml", profile)
    assert imported.warnings == [
        "issue.yaml:4: newsletter: the file is for the newsletter 'other', not 'lmec'",
        "issue.yaml:37: blocks[2].statement.photo: photos/zhou.jpg is a file beside the"
        " YAML file; upload it to the media library and choose it again",
    ]


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("issue.pdf", b"%PDF-1.4", "cannot import a .pdf file"),
        ("issue", b"title: x", "cannot import a file without an extension file"),
        ("issue.yaml", b"title: caf\xe9\n", "issue.yaml:1: the file is not saved as UTF-8"),
        ("issue.yaml", b"#" * 1_000_001, "issue.yaml: the file is larger than 1 MB"),
    ],
)
def test_unreadable_files_are_refused(
    profile: Profile, filename: str, data: bytes, message: str
) -> None:
    with pytest.raises(ImportRefused) as caught:
        import_bytes(data, filename, profile)
    assert isinstance(caught.value, UserInputError)
    assert message in str(caught.value)


def test_a_missing_file_is_refused(profile: Profile, tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="no such file"):
        import_file(tmp_path / "gone.yaml", profile)


def test_the_importer_is_library_code() -> None:
    """It reads files and text only: the CLI and the web app call it, the database
    stores what it returns (tests/test_architecture.py keeps the general rules)."""
    for path in sorted((REPO / "mailer" / "authoring" / "importer").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        forbidden = {
            name
            for name in names
            if name.startswith(
                ("mailer.web", "mailer.cli", "mailer.db", "mailer.delivery", "sqlalchemy")
            )
        }
        assert forbidden == set(), path.name
