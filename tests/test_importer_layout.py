"""Plain text laid out like a printed issue -> a document the content model accepts.

The two seeds (the text of the published issues 13 and 15) must import into what an
editor made of them by hand (examples/issues/), and samples the importer was not
written against (tests/fixtures/import/) into what their layout says. Random text
must never crash the importer nor lose a line.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.authoring.content import Issue, Statement, StatementBlock, load_issue
from mailer.authoring.importer import ImportRefused, import_bytes, import_file
from mailer.authoring.importer.header import is_masthead, issue_date, issue_number
from mailer.authoring.importer.matching import is_contact_heading
from mailer.authoring.markdown import Links, Markdown
from mailer.authoring.profile import Profile, load_profile
from mailer.authoring.render import Renderer
from tests.conftest import REPO, make_settings

SEEDS = Path("/work/shared/seeds")
SEED_15 = SEEDS / "000_8e59d98e84d7dee1.txt"
SEED_13 = SEEDS / "001_5c89f1e205625324.txt"
SAMPLES = REPO / "tests" / "fixtures" / "import"
TODAY = dt.date(2026, 12, 2)

needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts are not here")


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(REPO / "config" / "newsletter.yaml")


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer.from_settings(make_settings(tmp_path_factory.mktemp("render")))


def flat(text: str) -> str:
    """Text as a reader sees it, whitespace collapsed: Markdown markers dropped."""
    plain = Markdown().inline_text(text, Links())
    return " ".join(plain.split())


def seed_paragraphs(path: Path) -> list[str]:
    """The seed's paragraphs: runs of lines between empty lines, each read as a reader
    sees it (bold that spans two lines is one paragraph's)."""
    text = path.read_text(encoding="utf-8")
    runs = re.split(r"\n\s*\n", text)
    return [flat(run) for run in runs if run.strip()]


def statements(document: dict[str, Any]) -> list[Statement]:
    return Issue.model_validate(document).statements


def text_blocks(issue: Issue) -> list[tuple[str, str]]:
    """Blocks as (kind, words), whitespace collapsed: what an editor compares."""
    out = []
    for block in issue.blocks:
        if isinstance(block, StatementBlock):
            words = " ".join(block.statement.text.split())
            out.append(("statement", f"{block.statement.name} | {words}"))
        else:
            out.append((block.kind, " ".join(str(block.model_dump()[block.kind]).split())))
    return out


# --- the seeds ------------------------------------------------------------------------


@needs_seeds
@pytest.mark.parametrize("seed", [SEED_13, SEED_15], ids=["issue-13", "issue-15"])
def test_a_seed_renders_every_paragraph_it_holds(
    seed: Path, profile: Profile, renderer: Renderer
) -> None:
    imported = import_file(seed, profile)
    assert imported.warnings == []
    issue = Issue.model_validate(imported.document)
    rendered = renderer.render(issue)
    shown = " ".join(rendered.text.split())
    missing = [p for p in seed_paragraphs(seed) if p not in shown]
    assert missing == []
    assert "<html" in rendered.html.lower()


@needs_seeds
def test_issue_13_has_its_seven_cards_with_names_and_role_lines_as_printed(
    profile: Profile,
) -> None:
    document = import_file(SEED_13, profile).document
    cards = [(s.name, s.roles) for s in statements(document)]
    assert cards == [
        ("Mr. ZHOU Jun", ["Director of the Department of International Cooperation of MEE, China"]),
        (
            "Mr. Le Ngoc Tuan",
            [
                "Director General of International Cooperation Department,",
                "Ministry of Natural Resources and Environment, Vietnam",
            ],
        ),
        (
            "Mr. Lonkham Atsanavong",
            [
                "Director General of Natural Resources and Environment Research Institute",
                "Ministry of Natural Resources and Environment, Laos",
            ],
        ),
        (
            "Mr. Srey Sunleang",
            [
                "Deputy Director General, General Directorate of Natural Protected Area,",
                "Ministry of Environment, Cambodia,",
            ],
        ),
        (
            "Ms. Thaw Thaw Han",
            [
                "Director of Environmental Conservation Department,",
                "Ministry of Resources and Environmental Conservation, Myanmar",
            ],
        ),
        (
            "Ms. Narumon ORIS",
            [
                "Environmental (Senior Professional level),",
                "Foreign Affairs Division Office of the Permanent Secretary,",
                "Ministry of Natural Resources and Environment, Thailand",
            ],
        ),
        (
            "Dr. LI Xia",
            [
                "Director of the Lancang-Mekong Environmental Cooperation Center",
                "Foreign Environmental Cooperation Center, MEE, China",
            ],
        ),
    ]
    text = SEED_13.read_text(encoding="utf-8")
    for name, roles in cards:  # and each exactly as a line of the seed
        assert all(f"\n{line}\n" in text for line in [name, *roles])


@needs_seeds
@pytest.mark.parametrize(
    ("seed", "example"),
    [(SEED_13, "2022-13.yaml"), (SEED_15, "2022-15.yaml")],
    ids=["issue-13", "issue-15"],
)
def test_a_seed_imports_as_an_editor_wrote_it_by_hand(
    seed: Path, example: str, profile: Profile
) -> None:
    """The blocks, cards (with their countries), contact and About equal the example
    made by hand from the same text; only its layout choices differ (the subtitle of
    issue 15 printed on the title's line, empty lines in issue 13's contact block)."""
    imported = Issue.model_validate(import_file(seed, profile).document)
    by_hand = load_issue(REPO / "examples" / "issues" / example)
    assert text_blocks(imported) == text_blocks(by_hand)
    assert [s.country for s in imported.statements] == [s.country for s in by_hand.statements]
    assert [s.roles for s in imported.statements] == [s.roles for s in by_hand.statements]
    assert (imported.number, imported.year, imported.date) == (
        by_hand.number,
        by_hand.year,
        by_hand.date,
    )
    assert " ".join(filter(None, [by_hand.title, by_hand.subtitle])) == imported.title
    assert [line for line in imported.contact or [] if line] == [
        line for line in by_hand.contact or [] if line
    ]
    assert imported.about == by_hand.about


# --- samples the importer was not written against --------------------------------


def test_five_statements_with_crlf_odd_spacing_and_a_contact_block_of_their_own(
    profile: Profile, renderer: Renderer
) -> None:
    raw = (SAMPLES / "youth-dialogue-crlf.txt").read_bytes()
    assert b"\r\n" in raw
    imported = import_bytes(raw, "youth-dialogue-crlf.txt", profile)
    document = imported.document
    assert imported.warnings == []
    assert (document["number"], document["year"], document["date"]) == (21, 2023, "2023-03-03")
    assert document["title"] == "Mekong Youth Dialogue on Wetlands and Climate Resilience"
    cards = [(s.name, s.roles, s.country) for s in statements(document)]
    assert cards == [
        (
            "Ms. Bounmy Phommachanh",
            [
                "Deputy Director, Department of Water Resources,",
                "Ministry of Natural Resources and Environment, Lao PDR",
            ],
            "LA",
        ),
        (
            "Dr. Nguyễn Thị Thu Hà",
            [
                "Lecturer",
                "Faculty of Environmental Sciences",
                "VNU University of Science",
                "Hanoi, Vietnam",
            ],
            "VN",
        ),
        (
            "Prof. Somchai Wongsawat",
            [
                "Senior Advisor to the Office of Natural Resources and Environmental Policy"
                " and Planning, Thailand"
            ],
            "TH",
        ),
        (
            "Mr. Chea Sophal",
            ["Programme Officer", "Wildlife Conservation Society, Cambodia Program", "Phnom Penh"],
            None,
        ),
        (
            "U Kyaw Min Htut",
            [
                "Assistant Director",
                "Forest Department",
                "Ministry of Natural Resources and Environmental Conservation",
                "Nay Pyi Taw, Myanmar",
            ],
            "MM",
        ),
    ]
    kinds = [next(iter(block)) for block in document["blocks"]]
    assert kinds == ["paragraph", "paragraph"] + ["statement"] * 5 + ["paragraph"]
    assert "*Ramsar Convention*" in document["blocks"][0]["paragraph"]
    assert document["blocks"][-1]["paragraph"].startswith("The organisers thanked")
    assert document["contact"] == [
        "Mekong Youth Dialogue Secretariat",
        "c/o Lancang-Mekong Environmental Cooperation Center",
        "",
        "Email: youth@lmec.example.org",
        "Web: <http://en.lmec.org.cn/>",
    ]
    assert "about" not in document  # the profile's, in other spacing
    rendered = renderer.render(Issue.model_validate(document))
    assert "Ramsar Convention</em>" in rendered.html
    assert "Nay Pyi Taw, Myanmar" in rendered.text


def test_one_statement_no_closing_and_windows_1252_quotes(profile: Profile) -> None:
    imported = import_file(SAMPLES / "one-statement-cp1252-quotes.txt", profile)
    document = imported.document
    assert (document["number"], document["date"]) == (8, "2024-01-14")
    assert document["title"] == "A Word from Our Partner in Yunnan"
    assert [(s.name, s.roles) for s in statements(document)] == [
        ("Zhao Minghui", ["Director of Yunnan Academy of Environmental Sciences"])
    ]
    lead = document["blocks"][0]["paragraph"]
    assert "“Green Lancang-Mekong Initiative”" in lead
    assert "academy’s view" in lead
    assert imported.warnings == [
        "line 8: characters saved as Windows-1252 (curly quotes, dashes) were restored;"
        " check the punctuation of this line"
    ]
    assert [next(iter(block)) for block in document["blocks"]] == ["paragraph", "statement"]
    assert "contact" not in document  # the profile's block, line for line
    assert "about" not in document


def test_a_bulletin_of_another_masthead_without_a_contact_block(profile: Profile) -> None:
    imported = import_file(SAMPLES / "workshop-no-contact.txt", profile)
    document = imported.document
    assert (document["number"], document["year"], document["date"]) == (4, 2025, "2025-09-05")
    assert document["title"] == "Regional Workshop on Plastic Pollution in Rivers"
    assert document["subtitle"] == "Summary and Statements"
    blocks = document["blocks"]
    assert blocks[0] == {"paragraph": "Mekong Partners Bulletin"}
    assert blocks[1]["paragraph"].startswith("The regional workshop")
    assert blocks[1]["paragraph"].endswith("every six months.")  # wrapped lines joined
    assert blocks[2] == {"paragraph": "Programme at a glance"}
    first, second = statements(document)
    assert (first.name, first.roles, first.country) == (
        "H.E. Dr. Chanthavy Vongsa",
        [
            "Vice Minister",
            "Ministry of Natural Resources and Environment",
            "Lao People's Democratic Republic",
        ],
        "LA",
    )
    assert first.text.count("\n\n") == 1  # two paragraphs
    assert (second.name, second.country) == ("Ms. Pimchanok Srisuk", "TH")
    assert len(blocks) == 5  # no closing paragraph
    assert "contact" not in document
    assert document["about"].startswith("About the Mekong Partners Bulletin:")
    assert imported.warnings == [
        "line 1: above the issue number and not in the profile's masthead; kept as a"
        " paragraph: 'Mekong Partners Bulletin'",
        "line 11: before a statement; kept as a paragraph: 'Programme at a glance'",
        "line 20: taken as a further paragraph of H.E. Dr. Chanthavy Vongsa's statement",
    ]
    Issue.model_validate(document)


def test_quoted_statements_however_short_and_names_without_case(profile: Profile) -> None:
    imported = import_file(SAMPLES / "voices-quoted.txt", profile)
    document = imported.document
    assert [(s.name, s.roles, s.country, s.text) for s in statements(document)] == [
        (
            "周军",
            ["生态环境部国际合作司司长"],
            None,
            "“我们将继续推动澜沧江-湄公河环境合作，为区域可持续发展作出贡献。”",
        ),
        (
            "Mrs. Nguyen Thi Lan",
            [
                "Director",
                "Department of Climate Change",
                "Ministry of Natural Resources and Environment",
                "Viet Nam",
            ],
            "VN",
            "“We agree.”",
        ),
        (
            "Dr. Aung Ko Ko",
            ["Senior Lecturer, Yangon University"],
            None,
            '"Our students now monitor air quality in six townships, and the data are open'
            ' to everyone."',
        ),
    ]
    assert document["blocks"][-1] == {
        "paragraph": "Thank you to all our partners.\nSee you next year!"
    }
    assert document["contact"] == ["LMEC Secretariat", "Email: info@lmec.example.org"]
    assert imported.warnings == [
        "line 1: above the issue number and not in the profile's masthead; kept as a"
        " paragraph: 'LMEC Newsletter'"
    ]


def test_bold_names_and_roles_lose_their_markers(profile: Profile) -> None:
    """A card styles names and roles itself; bold over both, or over a role wrapped
    onto the next line, is dropped (the wrapped role is one role again)."""
    text = (
        "Issue 5, 2024\nJune 2 2024\nTitle\n\n**Ms. Dara Keo\nAdvisor\nMinistry of Environment**"
        "\n\nWe will plant ten thousand trees along the river before the rains come.\n\n"
        "Mr. Tan Wei\n**Head of the Water Office of the Provincial\nGovernment of Yunnan**\n\n"
        "Our office shares its river data with every partner who asks for it.\n"
    )
    document = import_bytes(text.encode(), "x.txt", profile).document
    assert [(s.name, s.roles) for s in statements(document)] == [
        ("Ms. Dara Keo", ["Advisor", "Ministry of Environment"]),
        ("Mr. Tan Wei", ["Head of the Water Office of the Provincial Government of Yunnan"]),
    ]


def test_what_fits_nowhere_is_kept_and_named(profile: Profile) -> None:
    text = (
        "Issue 3, 2024\n2024-05-06\nA Title\n\nA lead paragraph that reads as a sentence,"
        " as lead paragraphs do.\n\nLooks Like A Name\n\n"
        "Contact Us\nOne line\n\nThe About text of this issue, which differs from the profile.\n"
        "\nA paragraph after everything else, which must not be lost either.\n"
    )
    imported = import_bytes(text.encode(), "x.txt", profile, today=TODAY)
    document = imported.document
    assert document["blocks"] == [
        {"paragraph": "A lead paragraph that reads as a sentence, as lead paragraphs do."},
        {"paragraph": "Looks Like A Name"},
        {"paragraph": "A paragraph after everything else, which must not be lost either."},
    ]
    assert document["contact"] == ["One line"]
    assert document["about"] == "The About text of this issue, which differs from the profile."
    assert imported.warnings == [
        "line 7: a short line outside a statement; kept as a paragraph: 'Looks Like A Name'",
        "line 14: after the contact block; kept as a paragraph at the end",
    ]


def test_a_heading_between_cards_starts_paragraphs_of_their_own(profile: Profile) -> None:
    text = (
        "2024-02-03\n2024-02-04\nIssue 9, 2024\nTitle\n\n"
        "Ms. Dara Keo\nAdvisor, Ministry of Environment\n\n"
        "We will plant ten thousand trees along the river before the rains come.\n\n"
        "Second session\n\nThe afternoon turned to money, and who should pay for what.\n\n"
        "Mr. Tan Wei\nHead of the Water Office\n\n"
        "Our office shares its river data with every partner who asks for it.\n"
    )
    imported = import_bytes(text.encode(), "x.txt", profile)
    blocks = imported.document["blocks"]
    assert imported.document["date"] == "2024-02-03"
    assert blocks[0] == {"paragraph": "2024-02-04"}  # a second date is not dropped
    assert [next(iter(block)) for block in blocks] == [
        "paragraph",
        "statement",
        "paragraph",
        "paragraph",
        "statement",
    ]
    assert blocks[3] == {"paragraph": "The afternoon turned to money, and who should pay for what."}
    assert imported.warnings == [
        "line 2: above the issue number and not in the profile's masthead; kept as a"
        " paragraph: '2024-02-04'",
        "line 11: a short line outside a statement; kept as a paragraph: 'Second session'",
    ]


def test_a_file_without_number_or_date_gets_them_with_a_warning(profile: Profile) -> None:
    text = "Just a title\n\nAnd a paragraph that says something, as paragraphs do.\n"
    imported = import_bytes(text.encode(), "x.txt", profile, today=TODAY)
    assert imported.document["number"] == 1
    assert (imported.document["year"], imported.document["date"]) == (2026, "2026-12-02")
    assert imported.warnings == [
        "line 1: no date found (a line such as 'September 29 2022'); set to 2026-12-02",
        "line 1: no issue number found (a line such as 'Issue 13, 2022'); set to 1",
    ]
    Issue.model_validate(imported.document)


def test_links_the_content_model_refuses_are_kept_as_text(profile: Profile) -> None:
    text = (
        "Issue 1, 2024\nMay 1 2024\nTitle\n\nSee [our site](/about) or"
        " [the map](https://example.org/map) for the details of the meeting.\n"
    )
    imported = import_bytes(text.encode(), "x.txt", profile)
    paragraph = imported.document["blocks"][0]["paragraph"]
    assert paragraph.startswith("See [our site\\](/about) or [the map](https://example.org/map)")
    assert "line 5: a link to something other than a web or mail address" in imported.warnings[0]
    Issue.model_validate(imported.document)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "Issue 1, 2022\nCafé “quoted”\n".encode("cp1252"),
            "x.txt:2: the file is not saved as UTF-8",
        ),
        (b"\n \n\t\n", "x.txt: the file holds no text"),
    ],
)
def test_text_that_cannot_be_read_is_refused(profile: Profile, data: bytes, message: str) -> None:
    with pytest.raises(ImportRefused) as caught:
        import_bytes(data, "x.txt", profile)
    assert message in str(caught.value)


# --- random text -----------------------------------------------------------------------

LINE = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).map(str.title),
    st.sampled_from(["Contact Us", "About LMEC: words.", "**bold", "of the**", "*", "[x](y)"]),
    st.sampled_from(["Issue 3, 2022", "No. 4", "2022-09-29", "May 1 2023", "Newsletter"]),
    st.lists(st.sampled_from(["the", "of", "Ministry", "river", "a", "Mr.", "Lao"]), max_size=30)
    .map(" ".join)
    .map(lambda words: words + "."),
)


def seen_as(text: str) -> str:
    """A line as the document may hold it: control characters removed and
    Windows-1252 punctuation restored (as the importer does), without Markdown markers,
    escapes, angle brackets and invisible characters, whitespace collapsed."""
    text = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
    text = re.sub("[\x80-\x9f]", _cp1252, text)
    text = " ".join(text.split())
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Co", "Cn"))
    return " ".join(re.sub(r"[*_\\<>]", "", text).split())


def _cp1252(found: re.Match[str]) -> str:
    return found.group().encode("latin-1").decode("cp1252", "ignore")


def strings_of(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_of(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_of(item)]
    return [value] if isinstance(value, str) else []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(LINE, max_size=40),
    ends=st.sampled_from(["\n", "\r\n", "\r", "\n\n"]),
)
def test_random_text_never_crashes_nor_loses_a_line(
    profile: Profile, lines: list[str], ends: str
) -> None:
    text = ends.join(lines)
    try:
        imported = import_bytes(text.encode(), "random.txt", profile, today=TODAY)
    except ImportRefused as exc:  # only for a file with no text at all
        assert "holds no text" in str(exc)
        assert not seen_as(text)
        return
    document = imported.document
    if document["blocks"]:
        Issue.model_validate(document)
    found = "\n".join(seen_as(s) for s in strings_of(document) + imported.warnings)
    for line in re.split(r"\r\n|\r|\n", text):
        number, day = issue_number(line, profile), issue_date(line, profile)
        consumed = (
            (number and number[0] == document["number"])
            or (day and day.isoformat() == document["date"])
            or is_masthead(line, profile)
            or is_contact_heading(line, profile)
        )
        if not consumed:
            assert seen_as(line) in found, line


def test_a_title_alone_is_imported_with_a_warning(profile: Profile) -> None:
    imported = import_bytes(b"Issue 1, 2022\nMay 1 2022\nOnly a Title\n", "x.txt", profile)
    assert imported.document["title"] == "Only a Title"
    assert imported.document["blocks"] == []
    assert imported.warnings == ["line 3: no paragraph or statement found; add at least one block"]
