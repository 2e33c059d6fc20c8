"""A campaign's subject override is bounded like an issue's subject, with an error that
names it, whether it comes from the CLI or the web app (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mailer.authoring.content import MAX_SUBJECT, load_issue
from mailer.cli.main import app as cli
from mailer.compose import Root
from mailer.delivery.campaigns import Campaign, create_campaign
from mailer.errors import UserInputError
from subscribers import mailing_lists, repository
from tests.conftest import REPO
from tests.web_harness import add_user, login, make_app

ISSUE = REPO / "examples" / "issues" / "2022-13.yaml"
HUGE = "S" * 200_000  # 200 KB, as the web app once accepted


def _audience(root: Root) -> None:
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter")
        repository.add_subscriber(session, "a@example.org", lists=["newsletter"])


def _campaigns(root: Root) -> list[Campaign]:
    with root.sessions() as session:
        return list(session.scalars(select(Campaign)))


def test_the_store_refuses_a_long_or_multi_line_subject(root: Root) -> None:
    issue = load_issue(ISSUE)
    with root.sessions.begin() as session:

        def create(subject: str) -> Campaign:
            return create_campaign(
                session,
                name="x",
                issue_path=ISSUE,
                issue=issue,
                sender="News <news@example.org>",
                audience={"lists": ["newsletter"]},
                subject=subject,
            )

        with pytest.raises(UserInputError, match=r"^subject: at most 200 characters \(201 given\)"):
            create("S" * (MAX_SUBJECT + 1))
        with pytest.raises(UserInputError, match=r"^subject: line breaks are not allowed"):
            create("Two\nlines")
        assert create("S" * MAX_SUBJECT).subject == "S" * MAX_SUBJECT


def test_the_cli_refuses_a_long_subject_with_its_name(
    root: Root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _audience(root)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("MAILER_DATABASE_URL", root.settings.resolved_database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        cli, ["campaign", "create", str(ISSUE), "--list", "newsletter", "--subject", HUGE]
    )
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert f"subject: at most 200 characters ({len(HUGE)} given)" in result.stderr
    assert "Traceback" not in result.stderr
    assert _campaigns(root) == []


def test_the_web_app_refuses_a_long_subject_with_its_name(root: Root) -> None:
    _audience(root)
    root.settings.resolved_issues_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ISSUE, root.settings.resolved_issues_dir / ISSUE.name)
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    http, token = login(app, "editor@example.org")
    data = {"csrf_token": token, "issue": "2022-13", "lists": "newsletter", "subject": HUGE}
    page = http.post("/campaigns", data=data)
    assert f"subject: at most 200 characters ({len(HUGE)} given)" in page.text
    assert _campaigns(root) == []
