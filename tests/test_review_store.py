"""Acceptance review of the store commands: clumsy use gets one line, exit 1, no change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_store import _demo, mailer  # noqa: F401 - the fixture is used by name


def test_export_refuses_bad_filters_before_touching_the_file(mailer, tmp_path: Path) -> None:  # noqa: F811
    _demo(mailer)
    out = tmp_path / "out.csv"
    bad = mailer("subscribers", "export", str(out), "--country", "Atlantis", code=1)
    assert "unknown country 'Atlantis'" in bad.stderr and "Traceback" not in bad.output
    assert not out.exists()
    bad = mailer("subscribers", "export", str(out), "--partner", "No Such Partner", code=1)
    assert "no partner 'No Such Partner'" in bad.stderr
    assert not out.exists()
    # a partner named in another case, and a country by name, are found as elsewhere
    mailer("subscribers", "export", str(out), "--partner", "red river environment centre")
    assert "thuha.nguyen@example.org" in out.read_text(encoding="utf-8")
    mailer("subscribers", "export", str(out), "--country", "Viet Nam")
    assert "thuha.nguyen@example.org" in out.read_text(encoding="utf-8")


def test_output_files_that_cannot_be_written_are_one_line_errors(
    mailer,  # noqa: F811
    tmp_path: Path,
) -> None:
    _demo(mailer)
    for args in (
        ("subscribers", "export", str(tmp_path)),
        ("subscribers", "export", str(tmp_path / "missing" / "out.csv")),
        ("subscribers", "privacy-export", "wang.fang@example.org", "-o", str(tmp_path)),
    ):
        result = mailer(*args, code=1)
        assert result.stderr.startswith("error: ") and str(tmp_path) in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_arguments_that_are_not_utf8_are_refused_before_the_store(mailer) -> None:  # noqa: F811
    """A terminal in another encoding hands Python surrogate escapes ('\\udce9' for 0xE9)."""
    mailer("lists", "add", "newsletter")
    for args in (
        ("subscribers", "add", "sg@example.org", "--name", "caf\udce9"),
        ("subscribers", "add", "sg@example.org", "--attr", "city=Mal\udce9"),
        ("partners", "add", "Caf\udce9"),
        ("lists", "edit", "newsletter", "--name", "L\udce9"),
        ("suppression", "add", "sg@example.org", "--reason", "\udce9"),
        ("subscribers", "search", "\udce9"),
    ):
        result = mailer(*args, code=1)
        assert result.stderr.startswith("error: ") and "is not UTF-8 text" in result.stderr, args
    assert mailer("subscribers", "search", "sg@example.org").stdout.count("sg@example.org") == 0


def test_a_bad_database_setting_is_a_one_line_error(
    mailer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILER_DATABASE_URL", "not a url")
    result = mailer("db", "status", code=1)
    assert result.stderr.startswith("error: database URL: ") and "not a url" not in result.stderr
    monkeypatch.setenv("MAILER_DATABASE_URL", "")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "file" / "data"))
    result = mailer("db", "upgrade", code=1)
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert "file/data" in result.stderr


def test_audience_finds_partners_named_in_another_case_like_export(mailer) -> None:  # noqa: F811
    _demo(mailer)
    result = mailer("audience", "--partner", "red river environment centre", "--json")
    counts = json.loads(result.stdout)
    assert counts["total"] > 0
    assert counts["audience"]["partners"] == ["Red River Environment Centre"]
    assert "unknown partner(s): Nobody" in mailer("audience", "--partner", "Nobody", code=1).stderr


def test_file_level_import_errors_do_not_suggest_skip_invalid(mailer, tmp_path: Path) -> None:  # noqa: F811
    mailer("lists", "add", "newsletter")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for extra in ((), ("--skip-invalid",)):
        result = mailer("subscribers", "import", str(empty), "--list", "newsletter", *extra, code=1)
        last = result.stderr.splitlines()[-1]
        assert last == "error: the file cannot be imported as it is; nothing was imported", last
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text("email\nnot-an-address\nok@example.org\n", encoding="utf-8")
    result = mailer("subscribers", "import", str(bad_row), "--list", "newsletter", code=1)
    assert "pass --skip-invalid to import the good rows" in result.stderr.splitlines()[-1]


def test_adding_a_suppressed_address_says_it_will_not_be_mailed(mailer) -> None:  # noqa: F811
    mailer("lists", "add", "newsletter")
    mailer("subscribers", "add", "gone@example.org", "--list", "newsletter")
    mailer("subscribers", "erase", "gone@example.org", "--yes")
    result = mailer("subscribers", "add", "Gone@example.org", "--list", "newsletter")
    assert result.stderr.strip() == (
        "warning: Gone@example.org is on the suppression list and will not be mailed"
        " (mailer suppression remove Gone@example.org, if they asked to come back)"
    )
    assert json.loads(mailer("audience", "--json").stdout)["total"] == 0


def test_list_slugs_typed_in_another_case_work_everywhere(mailer) -> None:  # noqa: F811
    _demo(mailer)
    everyone = json.loads(mailer("audience", "--list", "partners-only", "--json").stdout)
    upper = json.loads(
        mailer(
            "audience", "--list", "Partners-Only", "--exclude-list", "NEWSLETTER", "--json"
        ).stdout
    )
    assert everyone["total"] == 37 and upper["total"] == 0
    exported = mailer("subscribers", "export", "-", "--list", "Partners-Only").stdout
    assert len(exported.strip().splitlines()) == 1 + 37
