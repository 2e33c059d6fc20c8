"""The README's first command: the demo sends both seed issues to the capture server once."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
from collections import Counter
from email import policy
from email.parser import BytesParser
from pathlib import Path

from mailer.authoring.content import load_issue
from mailer.compose import Root
from mailer.delivery.capture import start_capture
from mailer.demo import DemoPlace, DemoReport, prepare
from mailer.web.archive import sent_issues
from subscribers.audience import list_visibility
from tests.conftest import REPO
from tests.smtpd import free_port


def _prepare(root: Root) -> DemoReport:
    """The demo on the test's root, a worker sending until nothing is due."""
    return prepare(
        root.sessions,
        root.renderer(),
        DemoPlace.of(root.settings),
        upgrade=root.upgrade_database,
        send=lambda: root.worker().run(threading.Event(), until_idle=True),
    )


def _arrivals(directory: Path) -> Counter[tuple[str, str]]:
    seen: Counter[tuple[str, str]] = Counter()
    for path in directory.glob("*.eml"):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        seen[(str(message["To"]), str(message["Subject"]))] += 1
    return seen


def _subject(path: Path) -> str:
    issue = load_issue(path)
    return issue.subject or issue.title  # the title is the subject unless one is given


def test_demo_sends_each_issue_to_each_subscriber_once(root: Root) -> None:
    port = free_port()
    root.settings.smtp_port = port
    capture = start_capture(root.settings.resolved_capture_dir, "127.0.0.1", port)
    try:
        first = _prepare(root)
        arrivals = _arrivals(root.settings.resolved_capture_dir)
        subjects = {subject for _to, subject in arrivals}
        # Issue 15 in English to all; Issue 13 in each reader's language where it has a
        # variant (zh, th), else in English.
        issues = REPO / "examples" / "issues"
        subject_of = {
            name: _subject(issues / f"{name}.yaml")
            for name in ("2022-13", "2022-13.zh", "2022-13.th", "2022-15")
        }
        assert subjects == set(subject_of.values())
        with open(REPO / "examples" / "subscribers.csv", encoding="utf-8") as rows:
            language = {row["email"]: row["language"] for row in csv.DictReader(rows)}
        for to, subject in arrivals:
            address = to.rsplit("<", 1)[-1].rstrip(">")
            if subject != subject_of["2022-15"]:
                variant = {"zh": "2022-13.zh", "th": "2022-13.th"}.get(language[address])
                assert subject == subject_of[variant or "2022-13"], (address, subject)
        assert first.subscribers_added >= 50
        assert first.admin_password
        assert [state for _id, _name, state in first.campaigns] == ["sent", "sent"]
        assert set(arrivals.values()) == {1}
        assert first.captured == len(arrivals) == 2 * len({to for to, _s in arrivals})
        names = " ".join(to for to, _subject in arrivals)
        for script_sample in ("王", "ស", "ສ", "မ", "ส", "Nguyễn"):
            assert script_sample in names
        with root.sessions() as session:
            assert list_visibility(session) == {"newsletter": True, "partners-only": False}
            assert len(sent_issues(session)) == 2  # sent to the public newsletter: archived

        again = _prepare(root)
        assert again.subscribers_added == 0
        assert again.admin_password is None
        assert again.captured == first.captured
        assert _arrivals(root.settings.resolved_capture_dir) == arrivals
    finally:
        capture.stop()


def test_demo_command_without_serving(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env["MAILER_SMTP_PORT"] = str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "mailer.cli.main", "demo", "--no-serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Campaign 1" in result.stdout and "sent" in result.stdout
    assert len(list((tmp_path / "data" / "captured").glob("*.eml"))) >= 100
