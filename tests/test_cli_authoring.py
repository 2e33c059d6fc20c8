"""`mailer render`, `mailer check` and `mailer preview` as an editor runs them."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailer.authoring.preview import create_app
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "issues"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:starlette.testclient")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILER_DATA_DIR": str(cwd / "data")}
    env.pop("MAILER_PUBLIC_BASE_URL", None)
    code = "from mailer.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_writes_html_text_and_a_complete_eml(tmp_path: Path) -> None:
    result = run(["render", str(EXAMPLES / "2022-13.yaml"), "--out", "out"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["2022-13.eml", "2022-13.html", "2022-13.txt"]
    html = (out / "2022-13.html").read_text(encoding="utf-8")
    text = (out / "2022-13.txt").read_text(encoding="utf-8")
    assert "%%" not in html and "%%" not in text  # sample values filled in
    assert "/unsubscribe/preview" in html and "Preview Reader" in text
    message = email.message_from_bytes(
        (out / "2022-13.eml").read_bytes(), policy=email.policy.default
    )
    assert message["Subject"] == (
        "2022 Second Working-Group Meeting for Lancang-Mekong Environment Cooperation was"
        " Successfully Held"
    )
    assert message["From"] == "LMEC Newsletter <newsletter@lmec.example.org>"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    plain = message.get_body(("plain",))
    assert plain is not None and "澜沧江-湄公河环境合作中心" in plain.get_content()
    assert "2022-13.html (" in result.stdout


def test_render_keep_slots_and_mjml(tmp_path: Path) -> None:
    result = run(
        ["render", str(EXAMPLES / "2022-15.yaml"), "-o", "o", "--keep-slots", "--mjml"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "%%UNSUBSCRIBE_URL%%" in (tmp_path / "o" / "2022-15.html").read_text(encoding="utf-8")
    assert (tmp_path / "o" / "2022-15.mjml").read_text(encoding="utf-8").startswith("<mjml")


def test_check_passes_on_the_examples(tmp_path: Path) -> None:
    result = run(
        ["check", str(EXAMPLES / "2022-13.yaml"), str(EXAMPLES / "2022-15.yaml")], tmp_path
    )
    assert result.returncode == 0, result.stderr
    # The Thai variant carries 3 of Issue 13's 7 statements: each missing one is a
    # warning about the variants, not an error.
    assert re.search(
        r"2022-13\.yaml: ok \(0 error\(s\), 4 warning\(s\); HTML 3\d\.\d KB\)", result.stdout
    )
    assert result.stderr.count("is in 2022-13.yaml but not in 2022-13.th.yaml") == 4
    assert re.search(
        r"2022-15\.yaml: ok \(0 error\(s\), 0 warning\(s\); HTML 4\d\.\d KB\)", result.stdout
    )


BROKEN = """\
newsletter: lmec
number: 13
year: 2022
date: 2022-09-31
title: A title
blocks:
  - paragraph: Hi
  - statement:
      roles: [Director]
      text: Words
  - image: {src: photos/x.jpg}
"""


@pytest.mark.parametrize("command", ["check", "render"])
def test_broken_file_gives_one_line_per_problem_and_status_1(tmp_path: Path, command: str) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    result = run([command, "broken.yaml"], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: broken.yaml:4: date: Input should be a valid date or datetime, day value is"
        " outside expected range",
        "error: broken.yaml:8: blocks[1].statement.name: field required",
        "error: broken.yaml:11: blocks[2].image.alt: field required",
    ]


def test_check_fails_on_a_missing_photo(tmp_path: Path) -> None:
    (tmp_path / "i.yaml").write_text(
        BROKEN.replace("2022-09-31", "2022-09-29")
        .replace("roles:", "name: X\n      roles:")
        .replace("{src: photos/x.jpg}", "{src: photos/x.jpg, alt: A}"),
        encoding="utf-8",
    )
    result = run(["check", "i.yaml"], tmp_path)
    assert result.returncode == 1
    assert "i.yaml:12: blocks[2].image.src: error: image not found:" in result.stderr
    assert "Traceback" not in result.stderr
    assert "i.yaml: FAILED (1 error(s), 1 warning(s))" in result.stdout


def test_missing_file(tmp_path: Path) -> None:
    result = run(["check", "nope.yaml"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: nope.yaml: no such file"


@pytest.mark.parametrize("command", ["render", "check", "preview"])
def test_help_has_an_example(tmp_path: Path, command: str) -> None:
    result = run([command, "--help"], tmp_path)
    assert result.returncode == 0
    assert f"Example: mailer {command} examples/issues/" in result.stdout


def test_preview_serves_page_email_text_and_reports_problems(tmp_path: Path) -> None:
    issue = tmp_path / "issue.yaml"
    issue.write_text((EXAMPLES / "2022-13.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    client = TestClient(create_app(issue, make_settings(tmp_path)))
    page = client.get("/")
    assert page.status_code == 200 and "<iframe" in page.text
    status = client.get("/status").json()
    assert status["ok"] is True and status["problems"] == []
    assert status["subject"].startswith("2022 Second Working-Group Meeting")
    html = client.get("/email.html")
    assert "Mr. ZHOU Jun" in html.text and "%%" not in html.text
    assert "http://testserver/email.html" in html.text  # "view in browser" links here
    text = client.get("/email.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert "Mr. Le Ngoc Tuan" in text.text
    # Break the file: the status changes version and lists the problems.
    issue.write_text("newsletter: lmec\nnumber: x\n", encoding="utf-8")
    os.utime(issue, ns=(1, 1))
    broken = client.get("/status").json()
    assert broken["ok"] is False and broken["version"] != status["version"]
    assert any("issue.yaml:2: number:" in p for p in broken["problems"])
    assert client.get("/email.html").status_code == 409
    assert client.get("/media/../secret").status_code == 404


def test_broken_profile_is_reported_per_problem(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("id: x\nmasthead: {}\n", encoding="utf-8")
    (tmp_path / ".env").write_text(f"MAILER_NEWSLETTER_PROFILE={tmp_path / 'p.yaml'}\n")
    result = run(["check", str(EXAMPLES / "2022-13.yaml")], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert f"error: {tmp_path / 'p.yaml'}:2: masthead.name: field required" in lines
    assert all(line.startswith("error: ") for line in lines)


def test_preview_notices_a_changed_photo(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "issue"
    (folder / "pictures").mkdir(parents=True)
    photo = folder / "pictures" / "a.jpg"
    Image.new("RGB", (200, 200), "#123456").save(photo)
    issue = folder / "i.yaml"
    issue.write_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: T\npreheader: P\n"
        "blocks:\n  - statement: {name: A, photo: pictures/a.jpg, text: x}\n",
        encoding="utf-8",
    )
    client = TestClient(create_app(issue, make_settings(tmp_path)))
    first = client.get("/status").json()
    assert first["ok"] is True
    assert client.get("/status").json()["version"] == first["version"]
    Image.new("RGB", (300, 300), "#654321").save(photo)
    os.utime(photo, ns=(10**18, 10**18))
    assert client.get("/status").json()["version"] != first["version"]


def test_an_out_folder_that_cannot_be_made_is_a_one_line_error(tmp_path: Path) -> None:
    issue = str(EXAMPLES / "2022-13.yaml")
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    for out in ("taken", "taken/sub"):
        result = run(["render", issue, "--out", out], tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"error: {out}: cannot write") and "Traceback" not in (
            result.stderr
        )
        assert len(result.stderr.splitlines()) == 1
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "a file, not a folder"


def test_preview_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    result = run(["preview", str(EXAMPLES / "2022-13.yaml"), "--port", "99999"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "less than or equal to 65535" in result.stderr


def test_an_issue_for_another_newsletter_is_located(tmp_path: Path) -> None:
    text = (EXAMPLES / "2022-13.yaml").read_text(encoding="utf-8")
    (tmp_path / "other.yaml").write_text(text.replace("newsletter: lmec", "newsletter: x"))
    for command in ("check", "render"):
        result = run([command, "other.yaml"], tmp_path)
        assert result.returncode == 1
        assert "other.yaml:4: newsletter: " in result.stderr, result.stderr
        assert "unknown newsletter 'x'; this profile is 'lmec'" in result.stderr
        assert str(tmp_path) not in result.stderr  # the path as the editor wrote it


def test_preview_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run(["preview", str(EXAMPLES / "2022-13.yaml"), "--port", port], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_two_files_of_the_same_issue_are_not_rendered_over_each_other(tmp_path: Path) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text((EXAMPLES / "2022-13.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    result = run(["render", str(EXAMPLES / "2022-13.yaml"), "copy.yaml"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: copy.yaml and {EXAMPLES / '2022-13.yaml'} are both issue 2022-13:"
        " render them into different --out folders"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["check", "render", "preview"])
def test_a_file_over_the_upload_limit_is_refused_with_a_message(
    tmp_path: Path, command: str
) -> None:
    big = tmp_path / "big.yaml"
    text = (EXAMPLES / "2022-13.yaml").read_text(encoding="utf-8")
    big.write_text(text + "# a very long comment\n" * 100_000, encoding="utf-8")  # 2.2 MB
    result = run([command, "big.yaml"], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: big.yaml: the file is larger than 1 MB; an issue is much smaller:"
        " is it the right file?"
    )
