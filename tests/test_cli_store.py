"""The store's commands, run through the real `mailer` CLI on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mailer.cli.main import app

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "subscribers.csv"


@pytest.fixture
def mailer(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `mailer ...` against the test database; returns the click Result."""
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    return run


def _demo(mailer) -> None:
    mailer("lists", "add", "newsletter", "--name", "LMEC Newsletter", "--public")
    mailer("lists", "add", "partners-only")
    mailer("subscribers", "import", str(DEMO), "--create-partners")


def test_db_commands(mailer) -> None:
    assert "up to date (revision" in mailer("db", "upgrade").stdout
    assert "up to date" in mailer("db", "status").stdout


def test_demo_import_and_audience(mailer) -> None:
    _demo(mailer)
    again = mailer("subscribers", "import", str(DEMO), "--json")
    report = json.loads(again.stdout)
    assert (report["created"], report["unchanged"], report["subscribed"]) == (0, 62, 0)
    counts = json.loads(
        mailer(
            "audience",
            "--list",
            "newsletter",
            "--country",
            "VN,Laos",
            "--exclude-list",
            "partners-only",
            "--json",
        ).stdout
    )
    assert counts["total"] == 8
    assert {(c["country"], c["count"]) for c in counts["counts"]} == {("LA", 4), ("VN", 4)}
    everyone = json.loads(mailer("audience", "--json").stdout)
    assert everyone["total"] == 62
    table = mailer("audience", "--list", "partners-only").stdout
    assert "Red River Environment Centre" in table and "total: 37" in table
    lists = json.loads(mailer("lists", "list", "--json").stdout)
    assert [(x["slug"], x["public"], x["active"]) for x in lists] == [
        ("newsletter", True, 62),
        ("partners-only", False, 37),
    ]
    partners = json.loads(mailer("partners", "list", "--json").stdout)
    assert len(partners) == 7 and {p["country"] for p in partners} >= {"CN", "KH", "LA", "MM"}


def test_subscriber_commands(mailer) -> None:
    mailer("lists", "add", "newsletter")
    mailer("partners", "add", "Ayeyarwady Nature Society", "--country", "Burma")
    added = json.loads(
        mailer(
            "subscribers",
            "add",
            "Aung@Example.org",
            "--name",
            "အောင်ကျော်မင်း",
            "--partner",
            "Ayeyarwady Nature Society",
            "--list",
            "newsletter",
            "--attr",
            "title=U",
            "--json",
        ).stdout
    )
    assert (added["country"], added["timezone"]) == ("MM", "Asia/Yangon")
    assert added["subscriptions"][0]["list"] == "newsletter"
    shown = json.loads(mailer("subscribers", "show", "aung@example.org", "--json").stdout)
    assert shown["name"] == "အောင်ကျော်မင်း" and shown["attributes"] == {"title": "U"}
    mailer("subscribers", "edit", "aung@example.org", "--country", "TH", "--name", "Aung")
    shown = json.loads(mailer("subscribers", "show", str(added["id"]), "--json").stdout)
    assert (shown["name"], shown["country"], shown["timezone"]) == ("Aung", "TH", "Asia/Bangkok")
    found = json.loads(mailer("subscribers", "search", "AUNG", "--json").stdout)
    assert [f["email"] for f in found] == ["Aung@example.org"]
    duplicate = mailer("subscribers", "add", "aung@EXAMPLE.org", code=1)
    assert duplicate.stderr.strip() == "error: subscriber aung@example.org already exists"
    mailer("subscribers", "unsubscribe", "aung@example.org")
    assert json.loads(mailer("audience", "--json").stdout)["total"] == 0
    mailer("subscribers", "resubscribe", "aung@example.org")
    assert json.loads(mailer("audience", "--json").stdout)["total"] == 1
    mailer("subscribers", "remove", "aung@example.org")
    missing = mailer("subscribers", "show", "aung@example.org", code=1)
    assert missing.stderr.strip() == "error: no subscriber 'aung@example.org'"


def test_suppression_commands(mailer) -> None:
    mailer("lists", "add", "newsletter")
    mailer("subscribers", "add", "x@example.org", "--list", "newsletter")
    mailer("suppression", "add", "X@example.org", "--reason", "asked by phone")
    assert json.loads(mailer("audience", "--json").stdout)["total"] == 0
    assert "suppressed" in mailer("suppression", "check", "x@example.org").stdout
    entries = json.loads(mailer("suppression", "list", "--json").stdout)
    assert [(e["email"], e["reason"]) for e in entries] == [("X@example.org", "asked by phone")]
    mailer("suppression", "remove", "x@example.org")
    mailer("suppression", "check", "x@example.org", code=1)
    assert json.loads(mailer("audience", "--json").stdout)["total"] == 1


def test_import_errors_are_reported_per_line(mailer, tmp_path: Path) -> None:
    mailer("lists", "add", "newsletter")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'email,name\nbad,x\nok@example.org,"a\nb"\n')
    result = mailer("subscribers", "import", str(bad), "--list", "newsletter", code=1)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:2: email: invalid email address 'bad'")
    assert lines[1] == f"{bad}:3: name: name contains a line break or another control character"
    assert lines[2].startswith("error: 2 problem(s) in the file; nothing was imported")
    assert "Traceback" not in result.stderr
    cp1252 = tmp_path / "cp.csv"
    cp1252.write_bytes("email,name\nj@example.org,José\n".encode("cp1252"))
    result = mailer("subscribers", "import", str(cp1252), "--list", "newsletter", code=1)
    assert "run again with --encoding cp1252" in result.stderr
    mailer("subscribers", "import", str(cp1252), "--list", "newsletter", "--encoding", "cp1252")
    shown = json.loads(mailer("subscribers", "show", "j@example.org", "--json").stdout)
    assert shown["name"] == "José"
    dry = mailer(
        "subscribers", "import", str(bad), "--list", "newsletter", "--skip-invalid", "--dry-run"
    )
    assert dry.stdout.startswith("dry run, nothing written:")
    assert "skipped" in dry.stderr
    assert json.loads(mailer("audience", "--json").stdout)["total"] == 1


def test_export_round_trip_and_privacy(mailer, tmp_path: Path) -> None:
    _demo(mailer)
    out = tmp_path / "out.csv"
    mailer("subscribers", "export", str(out))
    text = out.read_text(encoding="utf-8")
    for name in [
        "王芳",
        "សុខ ចាន់ថា",
        "ສົມພອນ ພົມມະຈັນ",
        "အောင်ကျော်မင်း",
        "สมชาย ใจดี",
        "Nguyễn Thị Thu Hà",
    ]:
        assert name in text
    report = json.loads(mailer("subscribers", "import", str(out), "--json").stdout)
    assert report["unchanged"] == 62
    exported = json.loads(mailer("subscribers", "privacy-export", "wang.fang@example.org").stdout)
    assert exported["subscriber"]["name"] == "王芳"
    assert exported["deliveries"] == []
    mailer("subscribers", "erase", "wang.fang@example.org", code=1)  # needs --yes
    mailer("subscribers", "erase", "wang.fang@example.org", "--yes")
    exported = json.loads(mailer("subscribers", "privacy-export", "wang.fang@example.org").stdout)
    assert exported["subscriber"] is None and exported["suppression"]["address_kept"] is False
    again = json.loads(mailer("subscribers", "import", str(out), "--json").stdout)
    assert again["suppressed_skipped"] == 1 and again["created"] == 0


def test_lists_are_private_unless_made_public(mailer) -> None:
    assert mailer("lists", "add", "partners-only").stdout.strip() == (
        "added private list partners-only: partners-only"
    )
    added = mailer("lists", "add", "newsletter", "--name", "LMEC Newsletter", "--public")
    assert added.stdout.strip() == "added public list newsletter: LMEC Newsletter"

    def shown() -> dict[str, bool]:
        return {
            x["slug"]: x["public"] for x in json.loads(mailer("lists", "list", "--json").stdout)
        }

    assert shown() == {"newsletter": True, "partners-only": False}
    table = mailer("lists", "list").stdout
    assert "visibility" in table and "public" in table and "private" in table
    assert "(public)" in mailer("lists", "edit", "partners-only", "--public").stdout
    assert shown() == {"newsletter": True, "partners-only": True}
    # Editing something else leaves the visibility alone.
    renamed = mailer("lists", "edit", "partners-only", "--name", "Partners").stdout
    assert renamed.strip() == "list partners-only: Partners (public)"
    assert "(private)" in mailer("lists", "edit", "Partners-Only", "--private").stdout
    assert shown() == {"newsletter": True, "partners-only": False}
    unknown = mailer("lists", "edit", "nope", "--public", code=1)
    assert "no list 'nope'" in unknown.stderr
    helped = mailer("lists", "add", "--help").stdout
    assert "--public" in helped and "--private" in helped and "Example: mailer lists add" in helped
    assert "mailer lists edit partners-only --private" in mailer("lists", "edit", "--help").stdout


def test_every_command_has_help_with_an_example(mailer) -> None:
    groups = {
        "db": ["upgrade", "status"],
        "partners": ["add", "list", "edit", "remove"],
        "lists": ["add", "list", "edit", "remove"],
        "subscribers": [
            "add",
            "show",
            "edit",
            "remove",
            "search",
            "import",
            "export",
            "unsubscribe",
            "resubscribe",
            "privacy-export",
            "erase",
        ],
        "suppression": ["add", "remove", "list", "check"],
    }
    for group, commands in groups.items():
        for command in commands:
            assert "Example: mailer" in mailer(group, command, "--help").stdout, (group, command)
    assert "Example: mailer audience" in mailer("audience", "--help").stdout


def test_erase_blanks_the_delivery_ledger(mailer, sessions) -> None:
    """The ledger keeps a snapshot of each recipient; erasing a person blanks theirs."""
    from dataclasses import dataclass
    from datetime import UTC, datetime

    from sqlalchemy import select, update

    from mailer.delivery import campaigns, ledger
    from mailer.delivery.ledger import LedgerRow, LedgerStatus
    from subscribers.audience import Audience, audience_query

    @dataclass(frozen=True)
    class Issue:
        slug: str = "2022-15"
        number: int = 15
        language: str = "en"

    _demo(mailer)
    with sessions.begin() as session:
        audience = Audience(lists=("newsletter",), countries=("VN",))
        campaign = campaigns.create_campaign(
            session,
            name="Issue 15",
            issue_path="examples/issues/2022-15.yaml",
            issue=Issue(),
            sender="LMEC <news@lmec.example.org>",
            audience=audience,
        )
        assert (
            ledger.enqueue(session, campaign.id, audience_query(audience), datetime.now(UTC)) == 10
        )
        session.execute(
            update(LedgerRow)
            .where(LedgerRow.email == "thuha.nguyen@example.org")
            .values(status=LedgerStatus.SENT.value, message_id="<1@lmec.example.org>")
        )
    exported = json.loads(
        mailer("subscribers", "privacy-export", "thuha.nguyen@example.org").stdout
    )
    assert exported["deliveries"][0]["message_id"] == "<1@lmec.example.org>"
    assert (
        "1 delivery record(s) anonymised"
        in mailer("subscribers", "erase", "thuha.nguyen@example.org", "--yes").stdout
    )
    mailer("subscribers", "erase", "minh.tran@example.org", "--yes")
    with sessions() as session:
        rows = {r.subscriber_id: r for r in session.scalars(select(LedgerRow))}
        erased = [r for r in rows.values() if r.email == "erased@invalid"]
        assert len(erased) == 2 and all(r.name is None for r in erased)
        assert sorted(r.status for r in erased) == ["failed", "sent"]  # unsent one will not go
        assert not any("thuha" in (r.email or "") for r in rows.values())
        assert len([r for r in rows.values() if r.status == "queued"]) == 8


def test_export_to_stdout_and_partner_names_with_commas(mailer) -> None:
    mailer("lists", "add", "newsletter")
    mailer("partners", "add", "Ministry of Environment, Cambodia", "--country", "KH")
    mailer(
        "subscribers",
        "add",
        "srey@example.org",
        "--name",
        "ស្រី",
        "--partner",
        "Ministry of Environment, Cambodia",
        "--list",
        "newsletter",
    )
    result = mailer("subscribers", "export", "-")
    assert result.stdout.splitlines()[1].startswith(
        'srey@example.org,ស្រី,KH,"Ministry of Environment, Cambodia",en,Asia/Phnom_Penh,'
    )
    assert "1 subscribers exported" in result.stderr
    counts = json.loads(
        mailer("audience", "--partner", "Ministry of Environment, Cambodia", "--json").stdout
    )
    assert counts["total"] == 1


def test_commands_ask_for_an_upgrade_on_an_old_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    result = runner.invoke(app, ["lists", "list"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: the database schema is not up to date: run `mailer db upgrade` first"
    )
    assert "upgrade due" in runner.invoke(app, ["db", "status"]).stdout
    assert "upgraded from empty to" in runner.invoke(app, ["db", "upgrade"]).stdout
    assert runner.invoke(app, ["lists", "list", "--json"]).stdout.strip() == "[]"


def test_lists_remove_archives_a_list_a_campaign_used(mailer, database_url: str) -> None:
    """`mailer lists remove` and the web app share `mailer.people.removals.remove_list`."""
    from mailer import db as mailer_db
    from mailer.delivery.campaigns import Campaign

    _demo(mailer)
    refused = mailer("lists", "remove", "newsletter", code=1)
    assert "active subscriptions and 0 unsubscribed records" in refused.stderr
    assert "Pass --yes to confirm." in refused.stderr
    engine = mailer_db.make_engine(database_url)
    with Session(engine) as session, session.begin():
        session.add(
            Campaign(
                name="Issue 15",
                issue_path="x.yaml",
                issue_slug="2022-15",
                sender="LMEC <news@example.org>",
                audience={"lists": ["newsletter"]},
            )
        )
    engine.dispose()
    assert (
        "It is archived, not deleted: 1 campaign used it"
        in mailer("lists", "remove", "newsletter", code=1).stderr
    )
    done = mailer("lists", "remove", "newsletter", "--yes").stdout
    assert "archived list newsletter:" in done and "kept for the 1 campaign that" in done
    assert "newsletter" not in mailer("lists", "list").stdout
    assert (
        "removed list partners-only and its"
        in mailer("lists", "remove", "partners-only", "--yes").stdout
    )
