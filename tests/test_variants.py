"""Language variants of an issue as files: finding them beside any one of them, loading
them with the profile's default, choosing a reader's variant, and `mailer check`'s
report of what they disagree on (errors naming both files, warnings for statements).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.authoring.loader import ContentError
from mailer.authoring.profile import load_profile
from mailer.authoring.variants import (
    check_variants,
    find_variants,
    load_variants,
    pick,
    split_name,
)
from mailer.cli.main import app
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "variants"


@pytest.fixture
def issues(tmp_path: Path) -> Path:
    folder = tmp_path / "issues"
    shutil.copytree(FIXTURES, folder)
    (folder / "2022-15.yaml").write_text(
        (REPO / "examples" / "issues" / "2022-15.yaml").read_text("utf-8"), "utf-8"
    )
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")


def test_file_names() -> None:
    assert split_name(Path("2022-13.yaml")) == ("2022-13", None)
    assert split_name(Path("2022-13.zh.yaml")) == ("2022-13", "zh")
    assert split_name(Path("2022-13.zh-Hans.yml")) == ("2022-13", "zh-Hans")
    assert split_name(Path("issue.2022.yaml")) == ("issue.2022", None)  # not a language


def test_any_variant_finds_all_of_them_and_no_other_issue(issues: Path) -> None:
    expected = [issues / n for n in ("2022-13.yaml", "2022-13.th.yaml", "2022-13.zh.yaml")]
    for name in ("2022-13.yaml", "2022-13.zh.yaml", "2022-13.th.yaml"):
        assert find_variants(issues / name) == expected
    assert find_variants(issues / "2022-15.yaml") == [issues / "2022-15.yaml"]


def test_load_picks_the_default_and_each_readers_variant(issues: Path) -> None:
    found = load_variants(issues / "2022-13.th.yaml", "en")
    assert sorted(found.languages) == ["en", "th", "zh"]
    assert found.default.path == issues / "2022-13.yaml"
    assert found.for_reader("zh").issue.title == "2022年澜湄环境合作第二次工作组会议"
    assert found.for_reader("zh-Hans").language == "zh"
    assert found.for_reader("TH").language == "th"
    assert found.for_reader("lo").language == "en"  # Lao: no variant, the default
    assert found.for_reader(None).language == "en"
    assert load_variants(issues / "2022-13.yaml", "zh").default.language == "zh"
    # No variant in the profile's language: the file without a language in its name.
    assert load_variants(issues / "2022-13.zh.yaml", "vi").default.language == "en"


def test_pick_is_exact_then_same_language_then_default() -> None:
    languages = ["en", "zh-Hans", "th"]
    assert pick(languages, "zh-hans", "en") == "zh-Hans"
    assert pick(languages, "zh", "en") == "zh-Hans"
    assert pick(languages, "zh_CN", "en") == "zh-Hans"
    assert pick(languages, "km", "en") == "en"
    assert pick(languages, "", "en") == "en"


def test_the_profile_names_the_default_language(tmp_path: Path) -> None:
    profile = (REPO / "config" / "newsletter.yaml").read_text("utf-8")
    assert load_profile(REPO / "config" / "newsletter.yaml").default_language == "en"
    path = tmp_path / "newsletter.yaml"
    path.write_text(profile + "\ndefault_language: th\n", "utf-8")
    assert load_profile(path).default_language == "th"
    path.write_text(profile + "\ndefault_language: Thai\n", "utf-8")
    with pytest.raises(ContentError) as caught:
        load_profile(path)
    assert "default_language" in str(caught.value) and "'Thai'" in str(caught.value)


def test_disagreements_are_errors_naming_both_files(issues: Path) -> None:
    edit(issues / "2022-13.zh.yaml", "date: 2022-09-29", "date: 2022-09-30")
    edit(issues / "2022-13.th.yaml", "year: 2022", "year: 2023")
    with pytest.raises(ContentError) as caught:
        load_variants(issues / "2022-13.yaml", "en")
    message = str(caught.value)
    assert "2022-13.zh.yaml:5: date: 2022-13.zh.yaml has date 2022-09-30 but 2022-13.yaml" in (
        message
    )
    assert "2022-13.th.yaml has year 2023 but 2022-13.yaml has 2022" in message
    found = check_variants(issues / "2022-13.yaml")
    errors = {(d.field, d.other.name if d.other else "") for d in found if d.error}
    assert errors == {("date", "2022-13.zh.yaml"), ("year", "2022-13.th.yaml")}


def test_a_language_claimed_twice_is_an_error(issues: Path) -> None:
    edit(issues / "2022-13.th.yaml", "language: th", "language: zh")
    found = check_variants(issues / "2022-13.th.yaml")
    errors = [str(d) for d in found if d.error]
    assert any("2022-13.th.yaml and 2022-13.zh.yaml are both in language 'zh'" in e for e in errors)
    warnings = [str(d) for d in found if not d.error]
    assert any("the file name says 'th' but the file says language 'zh'" in w for w in warnings)


def test_statements_missing_from_a_variant_are_warnings(issues: Path) -> None:
    found = check_variants(issues / "2022-13.th.yaml")
    assert not any(d.error for d in found)
    # The Thai variant has the Thai speaker (her name in Thai: matched by country) only.
    messages = sorted(d.message for d in found)
    assert messages == [
        "the statement of 'Mr. ZHOU Jun' in 2022-13.yaml (en) is missing from 2022-13.th.yaml",
        "the statement of '周军先生' in 2022-13.zh.yaml (zh) is missing from 2022-13.th.yaml",
    ]
    assert not check_variants(issues / "2022-15.yaml")  # no variants, nothing to compare


def test_mailer_check_reports_the_disagreements(
    issues: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["check", str(issues / "2022-13.zh.yaml")])
    assert ok.exit_code == 0, ok.output
    assert (
        f"{issues / '2022-13.zh.yaml'}:14: blocks[1].statement.name: warning: the statement of "
        "'周军先生' is in 2022-13.zh.yaml but not in 2022-13.th.yaml (th) [variants]"
    ) in ok.output
    edit(issues / "2022-13.yaml", "number: 13", "number: 14")
    bad = runner.invoke(app, ["check", str(issues / "2022-13.zh.yaml")])
    assert bad.exit_code == 1
    assert (
        f"{issues / '2022-13.zh.yaml'}:3: number: error: 2022-13.zh.yaml has number 13 but "
        "2022-13.yaml has 14: the variants of an issue must agree [variants]"
    ) in bad.output
    assert "2022-13.zh.yaml: FAILED" in bad.output
    edit(issues / "2022-13.th.yaml", "year: 2022", "year: '2022'")
    broken = runner.invoke(app, ["check", str(issues / "2022-13.zh.yaml")])
    assert "its variant 2022-13.th.yaml does not load" in broken.output


def test_translated_names_pair_by_country_in_order(issues: Path) -> None:
    """Two Chinese speakers, their names translated in the Chinese file: paired in order;
    one dropped from a file: both of that country are reported, none taken for the other."""
    second = """  - statement:
      name: {name}
      roles: [{role}]
      country: CN
      text: |
        {text}
"""
    english, chinese = issues / "2022-13.yaml", issues / "2022-13.zh.yaml"
    english.write_text(
        english.read_text("utf-8")
        + second.format(name="Dr. LI Xia", role="LMEC", text="Thank you all."),
        "utf-8",
    )
    chinese.write_text(
        chinese.read_text("utf-8")
        + second.format(name="李霞博士", role="澜湄中心", text="谢谢大家。"),
        "utf-8",
    )
    assert not [d for d in check_variants(chinese) if d.other == english]
    zhou = (
        "  - statement:\n      name: 周军先生\n      roles: [中国生态环境部国际合作司司长]\n"
        "      country: CN\n      text: |\n"
        "        我们将继续与各伙伴携手，共建绿色、繁荣的澜湄地区。\n"
    )
    edit(chinese, zhou, "")  # the first Chinese speaker dropped from the Chinese file
    found = sorted(d.message for d in check_variants(chinese) if d.other == english)
    assert found == [
        "the statement of 'Dr. LI Xia' in 2022-13.yaml (en) is missing from 2022-13.zh.yaml",
        "the statement of 'Mr. ZHOU Jun' in 2022-13.yaml (en) is missing from 2022-13.zh.yaml",
        "the statement of '李霞博士' is in 2022-13.zh.yaml but not in 2022-13.yaml (en)",
    ]
