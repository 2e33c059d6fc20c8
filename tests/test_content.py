"""The issue loader: strict validation, every problem reported with file, line and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailer.authoring.content import (
    ButtonBlock,
    DividerBlock,
    Issue,
    ParagraphBlock,
    StatementBlock,
    _load_fast,
    load_issue,
    load_issue_text,
)
from mailer.authoring.loader import (
    MAX_FILE_BYTES,
    TOO_LARGE,
    ContentError,
    parse_yaml,
    validate_yaml,
)
from mailer.authoring.profile import load_profile
from mailer.errors import UserInputError

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
newsletter: lmec
number: 13
year: 2022
date: 2022-09-29
language: en
title: A title
preheader: A preheader
blocks:
  - paragraph: |
      First *paragraph*.
  - heading: Views
  - statement:
      name: Mr. ZHOU Jun
      roles:
        - Director
      country: cn
      photo: photos/zhou.jpg
      text: Words.
  - image: {src: "https://example.org/a.jpg", alt: A photo, link: "https://example.org"}
  - button: {label: Read, url: "mailto:a@example.org"}
  - divider: {}
  - divider:
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_issue_text(text, "issue.yaml")
    return [str(p) for p in caught.value.problems]


def test_good_issue_loads_with_typed_blocks() -> None:
    issue = load_issue_text(GOOD, "issue.yaml")
    assert issue.slug == "2022-13"
    assert issue.date == dt.date(2022, 9, 29)
    assert [b.kind for b in issue.blocks] == [
        "paragraph",
        "heading",
        "statement",
        "image",
        "button",
        "divider",
        "divider",
    ]
    assert isinstance(issue.blocks[0], ParagraphBlock)
    statement = issue.blocks[2]
    assert isinstance(statement, StatementBlock)
    assert statement.statement.country == "CN"
    assert isinstance(issue.blocks[-1], DividerBlock)
    assert issue.statements[0].name == "Mr. ZHOU Jun"


def test_relative_photo_resolves_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "2022-13.yaml"
    path.write_text(GOOD, encoding="utf-8")
    issue = load_issue(path)
    assert issue.resolve("photos/zhou.jpg") == tmp_path / "photos" / "zhou.jpg"
    assert issue.resolve("https://example.org/a.jpg") is None


def test_every_problem_is_reported_at_once_with_line_and_field() -> None:
    text = """\
newsletter: lmec
number: 0
year: 2022
date: 2022-02-30
language: english
title: Hello
colour: red
blocks:
  - paragraph: Hi
  - statement:
      roles: [a]
      text: hi
      twitter: x
  - quote: x
  - image: {src: "javascript:alert(1)", alt: ""}
  - button: {label: Go, url: /relative}
  - {paragraph: a, heading: b}
"""
    found = problems(text)
    assert found == [
        "issue.yaml:2: number: Input should be greater than or equal to 1",
        "issue.yaml:4: date: Input should be a valid date or datetime, day value is outside"
        " expected range",
        "issue.yaml:5: language: expected a language tag such as 'en' or 'zh-Hans', got 'english'",
        "issue.yaml:7: colour: unknown field",
        "issue.yaml:10: blocks[1].statement.name: field required",
        "issue.yaml:13: blocks[1].statement.twitter: unknown field",
        "issue.yaml:14: blocks[2]: unknown block type 'quote'; expected one of: paragraph,"
        " heading, statement, image, button, divider",
        "issue.yaml:15: blocks[3].image.src: expected a path inside the issue's folder (e.g."
        " photos/name.jpg) or an https URL: 'javascript:alert(1)'",
        "issue.yaml:15: blocks[3].image.alt: String should have at least 1 character",
        "issue.yaml:16: blocks[4].button.url: not an absolute http(s) or mailto URL: '/relative'",
        "issue.yaml:17: blocks[5]: a block is a mapping with one key, one of: paragraph,"
        " heading, statement, image, button, divider",
    ]


def test_missing_top_level_fields_are_named() -> None:
    found = problems("newsletter: lmec\n")
    assert "issue.yaml:1: number: field required" in found
    assert "issue.yaml:1: blocks: field required" in found
    assert "issue.yaml:1: date: field required" in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1,\n", "issue.yaml:2: the file ends in the middle of a value"),
        ("a: 1\na: 2\n", "issue.yaml:2: the field 'a' appears twice in the same place"),
        ("- just\n- a list\n", "issue.yaml:1: expected a mapping of fields at the top level"),
        ("", "issue.yaml:1: expected a mapping of fields at the top level"),
        ("title: a\x00b\n", "issue.yaml:1: contains a control character (U+0000)"),
        ("--- {a: 1}\n--- {b: 2}\n", "issue.yaml:2: a line '---' starts a second document"),
    ],
)
def test_broken_yaml_is_located(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_error_is_user_input_error_with_one_line_per_problem() -> None:
    with pytest.raises(UserInputError) as caught:
        load_issue_text("newsletter: lmec\nnumber: x\n", "bad.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) >= 4  # type: ignore[attr-defined]
    assert all(line.startswith("bad.yaml:") for line in lines)


def test_missing_file_is_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="no such file"):
        load_issue(tmp_path / "nope.yaml")


def test_example_issues_and_profile_load() -> None:
    for name in ("2022-13", "2022-15"):
        issue = load_issue(REPO / "examples" / "issues" / f"{name}.yaml")
        assert issue.slug == name
        assert issue.newsletter == "lmec"
    profile = load_profile(REPO / "config" / "newsletter.yaml")
    assert profile.masthead.local_name == "澜沧江-湄公河环境合作中心"
    assert profile.masthead.name == "Lancang-Mekong Environmental Cooperation Center"
    assert profile.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    "src",
    ["/etc/ssl/cert.jpg", "../other/x.jpg", "photos/../../x.jpg", "~/x.jpg", "http://a/b.jpg"],
)
def test_photos_come_from_the_issue_folder_or_https(src: str) -> None:
    text = GOOD.replace("photo: photos/zhou.jpg", f'photo: "{src}"')
    assert problems(text) == [
        "issue.yaml:17: blocks[2].statement.photo: expected a path inside the issue's folder"
        f" (e.g. photos/name.jpg) or an https URL: {src!r}"
    ]


@pytest.mark.parametrize("name", ["2022-13", "2022-15"])
def test_fast_and_located_parses_agree(name: str) -> None:
    text = (REPO / "examples" / "issues" / f"{name}.yaml").read_text(encoding="utf-8")
    fast = _load_fast(text)
    located = validate_yaml(Issue, parse_yaml(text, name), name)
    assert fast == located


def test_values_only_the_located_parse_accepts_still_load() -> None:
    # libyaml reads an unquoted date-like title as a date; the located parse keeps text.
    issue = load_issue_text(GOOD.replace("title: A title", "title: 2022-09-29"), "t.yaml")
    assert issue.title == "2022-09-29"
    assert issue.line_of("title") == 6


def test_profile_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        "id: x\nmasthead: {name: X}\nsender: {name: X, address: nobody}\n"
        "list_id: not a domain\ntimezone: Mars/Olympus\ncolours: {primary: green}\n"
        "labels: {issue: 'No. {nummer}'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as caught:
        load_profile(path)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["sender.address", "list_id", "timezone", "colours.primary", "labels.issue"]
    assert [p.line for p in caught.value.problems] == [3, 4, 5, 6, 7]


def test_link_addresses_are_percent_encoded() -> None:
    text = GOOD.replace('url: "mailto:a@example.org"', "url: 'https://example.org/ສົ?q=\"x\"&a=%20'")
    issue = load_issue_text(text, "u.yaml")
    button = issue.blocks[4]
    assert isinstance(button, ButtonBlock)
    assert button.button.url == "https://example.org/%E0%BA%AA%E0%BA%BB?q=%22x%22&a=%20"


def test_links_in_text_fields_must_be_absolute_and_are_located() -> None:
    text = (
        GOOD.replace("First *paragraph*.", "See [the report](reports/x.pdf) and <a@example.org>.")
        .replace("- Director", "- Director of [MEE](mee.gov.cn)")
        .replace("title: A title", "title: A [title](https://example.org/t)")
    )
    assert problems(text) == [
        "issue.yaml:9: blocks[0].paragraph: link is not an absolute http(s) or mailto URL:"
        " 'reports/x.pdf'",
        "issue.yaml:15: blocks[2].statement.roles[0]: link is not an absolute http(s) or mailto"
        " URL: 'mee.gov.cn'",
    ]
    # links markdown-it refuses (javascript:, data:) stay text, and absolute ones pass
    ok = GOOD.replace("First *paragraph*.", "[x](javascript:alert(1)) [y](http://example.org)")
    assert load_issue_text(ok, "ok.yaml").blocks[0] == ParagraphBlock(
        paragraph=ok.split("\n")[9].strip()
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("number: 13", "number: true", "issue.yaml:2: number: Input should be a valid integer"),
        ("number: 13", 'number: "13"', "issue.yaml:2: number: Input should be a valid integer"),
        ("year: 2022", "year: 2022.0", "issue.yaml:3: year: Input should be a valid integer"),
    ],
)
def test_numbers_must_be_written_as_numbers(old: str, new: str, expected: str) -> None:
    assert problems(GOOD.replace(old, new)) == [expected]


def test_unreadable_files_are_located_content_errors(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(GOOD.replace("A title", "Caf\xe9").encode("latin-1"))
    with pytest.raises(ContentError) as caught:
        load_issue(latin1)
    assert str(caught.value) == (
        f"{latin1}:6: the file is not saved as UTF-8 text (character 11 of this line is not"
        " UTF-8; accented or non-Latin letters were saved in another encoding): save it as"
        " UTF-8 in your editor"
    )
    with pytest.raises(ContentError, match="cannot read"):
        load_issue(tmp_path)
    with pytest.raises(ContentError) as caught:
        load_issue_text(GOOD.replace("A title", "A\x00title"), "nul.yaml")
    assert str(caught.value).startswith("nul.yaml:6: contains a control character (U+0000)")
    for bad in (latin1, tmp_path):
        with pytest.raises(ContentError):
            load_profile(bad)


def test_yaml_aliases_are_refused_so_they_cannot_multiply_a_file() -> None:
    laughs = 'x0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, 9):
        laughs += f"x{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]\n"
    found = problems(laughs + GOOD.replace("blocks:", "contact: *a8\nblocks:"))
    assert found == [
        "issue.yaml:2: aliases (*a0) are not supported in content files; write the value out"
    ]
    # an anchor alone is harmless, and "&" in text is text
    text = GOOD.replace("title: A title", "title: &t R&D & more")
    assert load_issue_text(text, "a.yaml").title == "R&D & more"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "date: 2022-09-29",
            "date: 1664409600",
            "issue.yaml:4: date: expected a date written as YYYY-MM-DD, got 1664409600",
        ),
        (
            "title: A title",
            "title: " + "[" * 5000 + "]" * 5000,
            "issue.yaml:6: nested more than 50 levels deep; an issue needs only a few levels",
        ),
    ],
)
def test_odd_values_are_located_errors(old: str, new: str, expected: str) -> None:
    found = problems(GOOD.replace(old, new))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_profile_names_used_in_headers_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        'id: x\nmasthead: {name: "X\\nBcc: a@example.org"}\n'
        'sender: {name: "N\\r\\nBcc: a@example.org", address: n@example.org}\n'
        "list_id: news.example.org\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as caught:
        load_profile(path)
    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [
        (2, "masthead.name", "must be one line (it goes into mail headers)"),
        (3, "sender.name", "must be one line (it goes into mail headers)"),
    ]


@pytest.mark.parametrize(
    "label", ["Issue {email}", "No. {number.real}", "No. {number[0]}", "{}", "{number:{email}}"]
)
def test_profile_labels_use_only_their_own_placeholders(tmp_path: Path, label: str) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        "id: x\nmasthead: {name: X}\nsender: {name: X, address: n@example.org}\n"
        f"list_id: news.example.org\nlabels:\n  issue: '{label}'\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as caught:
        load_profile(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:6: labels.issue: may only use the placeholders {{number}} {{year}}: {label!r}"
    ]


def test_control_characters_are_located_errors() -> None:
    text = (
        GOOD.replace("title: A title", 'title: "A\\e[31m title"')
        .replace("- Director", '- "Dir\\x07ector"')
        .replace("text: Words.", 'text: "Words\\uffff"')
    )
    assert problems(text) == [
        "issue.yaml:6: title: contains a control character or non-character (U+001B)",
        "issue.yaml:14: blocks[2].statement.roles: contains a control character or"
        " non-character (U+0007)",
        "issue.yaml:18: blocks[2].statement.text: contains a control character or"
        " non-character (U+FFFF)",
    ]
    # tabs and line breaks are text
    assert load_issue_text(GOOD.replace("A title", '"A\\ttitle"'), "t.yaml").title == "A\ttitle"


def test_statement_country_is_a_real_country_code_or_name() -> None:
    assert load_issue_text(GOOD.replace("country: cn", "country: Viet Nam"), "v.yaml")
    issue = load_issue_text(GOOD.replace("country: cn", "country: Lao PDR"), "v.yaml")
    assert issue.statements[0].country == "LA"
    found = problems(GOOD.replace("country: cn", "country: XX"))
    assert len(found) == 1
    assert found[0].startswith("issue.yaml:16: blocks[2].statement.country: unknown country 'XX'")


def test_sender_addresses_are_ascii_in_headers(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    base = "id: x\nmasthead: {name: X}\nlist_id: news.example.org\n"
    path.write_text(
        base + "sender: {name: X, address: news@bücher.example, reply_to: Li@Bücher.example}\n",
        encoding="utf-8",
    )
    sender = load_profile(path).sender
    assert (sender.address, sender.reply_to) == (
        "news@xn--bcher-kva.example",
        "Li@xn--bcher-kva.example",
    )
    path.write_text(base + "sender: {name: X, address: 新闻@example.org}\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_profile(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4: sender.address: the part before @ must be ASCII (many mail servers refuse"
        " others): '新闻@example.org'"
    ]


LIBRARY_WORDS = ("while parsing", "while scanning", "<block", "YAML()", "max_depth", "token")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title: a\n- b\n", "issue.yaml:2: this line is indented differently"),
        ("title: a\n  number: 1\n", "issue.yaml:2: unexpected ': ' (a colon and a space)"),
        ("blocks:\n  - paragraph: a\n   - paragraph: b\n", "issue.yaml:3: this line is indented"),
        ('title: "a" b\n', "issue.yaml:1: unexpected text after a value"),
        ('title: "abc\nyear: 1\n', "issue.yaml:1: a quoted value is never closed"),
        ("title: a\n\tyear: 1\n", "issue.yaml:2: a tab character: indent with spaces"),
        ("title: @me\n", "issue.yaml:1: a value cannot start with '@'; put the value in quotes"),
        ("title: [a, b\nyear: 1\n", "issue.yaml:2: a '[' opened on line 1 is not closed"),
        ("title: a\nfoo\nyear: 1\n", "issue.yaml:2: expected 'field: value' on this line"),
        ("title: |x\n  a\n", "issue.yaml:1: '|' or '>' must end the line"),
        ('title: "\\q"\n', "issue.yaml:1: \\q is not a valid escape"),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "issue.yaml:1: nested more than 50 levels deep"),
        ("title: *x\n", "issue.yaml:1: aliases (*x) are not supported"),
    ],
)
def test_yaml_errors_say_in_plain_words_what_is_wrong_and_where(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert not any(word in found[0] for word in LIBRARY_WORDS), found


def test_issue_numbers_fit_the_database_and_are_sensible() -> None:
    assert problems(GOOD.replace("number: 13", "number: 2147483648")) == [
        "issue.yaml:2: number: Input should be less than or equal to 99999"
    ]
    assert load_issue_text(GOOD.replace("number: 13", "number: 99999"), "i.yaml").number == 99999
    assert problems(GOOD.replace("year: 2022", "year: 99999999999")) == [
        "issue.yaml:3: year: Input should be less than or equal to 2999"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "title: A title",
            "title: A title\nsubject: " + "S" * 201,
            "issue.yaml:7: subject: the subject has 201 characters; at most 200 are allowed",
        ),
        (
            "title: A title",
            "title: " + "T" * 201,
            "issue.yaml:6: title: the title has 201 characters; at most 200 are allowed",
        ),
        (
            "preheader: A preheader",
            "preheader: " + "P" * 301,
            "issue.yaml:7: preheader: the preheader has 301 characters; at most 300 are allowed",
        ),
        (
            "title: A title",
            'title: A title\nsubject: "Two\\nlines"',
            "issue.yaml:7: subject: must be one line (it goes into mail headers and inbox lines)",
        ),
        (
            "name: Mr. ZHOU Jun",
            "name: " + "N" * 201,
            "issue.yaml:13: blocks[2].statement.name: the name has 201 characters;"
            " at most 200 are allowed",
        ),
        (
            "newsletter: lmec",
            "newsletter: " + "L" * 201,
            "issue.yaml:1: newsletter: the name has 201 characters; at most 200 are allowed",
        ),
    ],
)
def test_subject_preheader_and_names_are_bounded_with_a_located_error(
    old: str, new: str, expected: str
) -> None:
    assert problems(GOOD.replace(old, new)) == [expected]


def test_the_longest_allowed_subject_and_preheader_load() -> None:
    text = GOOD.replace("title: A title", "title: A title\nsubject: " + "S" * 200).replace(
        "preheader: A preheader", "preheader: " + "P" * 300
    )
    issue = load_issue_text(text, "i.yaml")
    assert len(issue.subject or "") == 200 and len(issue.preheader) == 300


def test_profile_sender_name_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        "id: x\nmasthead: {name: X}\n"
        f"sender: {{name: {'N' * 201}, address: n@example.org}}\n"
        "list_id: news.example.org\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as caught:
        load_profile(path)
    assert [(p.line, p.field) for p in caught.value.problems] == [(3, "sender.name")]
    assert "at most 200 characters" in caught.value.problems[0].message


def test_a_file_over_the_upload_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "# padding\n" * 100_001, encoding="utf-8")
    assert big.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(ContentError) as caught:
        load_issue(big)
    assert str(caught.value) == f"{big}: {TOO_LARGE}"
