"""Word documents: the same issue as a .docx imports as it does as plain text.

The documents are made here with python-docx (no binary fixtures): each line of a
text becomes a paragraph, `*...*` italic runs and `**...**` bold runs, as a partner's
word processor would have them.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import Path

import pytest
from docx import Document
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.authoring.content import Issue
from mailer.authoring.importer import ImportRefused, import_bytes
from mailer.authoring.importer import docx as docx_reader
from mailer.authoring.importer.header import is_masthead, issue_date, issue_number
from mailer.authoring.importer.matching import is_contact_heading
from mailer.authoring.profile import Profile, load_profile
from tests.conftest import REPO
from tests.test_importer_layout import (
    LINE,
    SAMPLES,
    SEED_13,
    SEED_15,
    TODAY,
    needs_seeds,
    seen_as,
    strings_of,
)


def _xml_safe(text: str) -> bool:
    """What a Word document can hold (XML refuses control characters)."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") or c in "\ufffe\uffff" for c in text)


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(REPO / "config" / "newsletter.yaml")


def docx_from_text(text: str) -> bytes:
    """A Word document of a text: lines with no empty line between them are one
    paragraph (with line breaks), each further empty line an empty paragraph; `**` and
    `*` switch bold and italic on and off (also over a line break, as a bold role
    wrapped over two lines is)."""
    document = Document()
    bold = italic = False
    paragraph: Paragraph | None = None
    for line in re.split(r"\r\n|\r|\n", text):
        if not line.strip():
            paragraph = None
            document.add_paragraph()
            continue
        if paragraph is None:
            paragraph = document.add_paragraph()
        else:
            paragraph.add_run().add_break()
        for token in re.split(r"(\*\*|\*)", line):
            if token == "**":
                bold = not bold
            elif token == "*":
                italic = not italic
            elif token:
                run = paragraph.add_run(token)
                run.bold = bold or None
                run.italic = italic or None
    return _saved(document)


def _saved(document: object) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def _add_link(paragraph: Paragraph, text: str, url: str) -> None:
    """A hyperlink run, as Word writes one (python-docx reads them but cannot add them)."""
    relation = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), relation)
    run = OxmlElement("w:r")
    words = OxmlElement("w:t")
    words.text = text
    run.append(words)
    link.append(run)
    paragraph._p.append(link)


@needs_seeds
@pytest.mark.parametrize("seed", [SEED_13, SEED_15], ids=["issue-13", "issue-15"])
def test_a_seed_as_a_word_document_imports_as_its_text(seed: Path, profile: Profile) -> None:
    from_text = import_bytes(seed.read_bytes(), "seed.txt", profile)
    from_word = import_bytes(docx_from_text(seed.read_text(encoding="utf-8")), "seed.docx", profile)
    assert from_word.document == from_text.document
    assert from_word.warnings == from_text.warnings == []


@pytest.mark.parametrize("sample", ["youth-dialogue-crlf.txt", "one-statement-cp1252-quotes.txt"])
def test_a_sample_as_a_word_document_imports_as_its_text(sample: str, profile: Profile) -> None:
    data = (SAMPLES / sample).read_bytes()
    from_text = import_bytes(data, "sample.txt", profile, today=TODAY)
    from_word = import_bytes(
        docx_from_text(data.decode("utf-8")), "sample.docx", profile, today=TODAY
    )
    assert from_word.document == from_text.document
    assert [re.sub(r"^paragraph \d+", "", w) for w in from_word.warnings] == [
        re.sub(r"^line \d+", "", w) for w in from_text.warnings
    ]


def test_runs_links_breaks_and_tables_become_markdown(profile: Profile) -> None:
    document = Document()
    for line in ("Issue 2, 2024", "April 9 2024", "Rivers *and* Roads"):
        document.add_paragraph(line)
    lead = document.add_paragraph("The report ")
    lead.add_run("Rivers of the Region").italic = True
    lead.add_run(" (")
    lead.add_run("2024").bold = True
    both = lead.add_run(" final")
    both.bold = both.italic = True
    lead.add_run(") is on ")
    _add_link(lead, "our website", "https://example.org/report")
    lead.add_run(", written by 2*3 authors with snake_case names; write to ")
    _add_link(lead, "team@example.org", "mailto:team@example.org")
    lead.add_run(".")
    name = document.add_paragraph()
    name.add_run("Ms. Mali Chanthavong").bold = True
    name.runs[0].add_break()
    name.add_run("Director, River Institute")
    document.add_paragraph(
        "We measured every tributary this year, and the results will be shared with all"
        " partners before the summer."
    )
    document.add_paragraph("Contact Us")
    table = document.add_table(rows=2, cols=1)
    table.cell(0, 0).text = "River Institute"
    table.cell(1, 0).text = "Email: info@river.example.org"
    imported = import_bytes(_saved(document), "report.docx", profile, today=TODAY)
    result = imported.document
    assert result["title"] == "Rivers *and* Roads"  # the title takes no Markdown
    assert result["blocks"][0] == {
        "paragraph": "The report *Rivers of the Region* (**2024** ***final***) is on"
        " [our website](https://example.org/report), written by 2\\*3 authors with"
        " snake\\_case names; write to <team@example.org>."
    }
    assert result["blocks"][1]["statement"]["name"] == "Ms. Mali Chanthavong"
    assert result["blocks"][1]["statement"]["roles"] == ["Director, River Institute"]
    assert result["contact"] == ["River Institute", "Email: info@river.example.org"]
    assert imported.warnings == []
    Issue.model_validate(result)


def test_a_damaged_or_false_word_document_is_refused(profile: Profile) -> None:
    with pytest.raises(ImportRefused, match=r"x\.docx: not a Word document \(\.docx\)"):
        import_bytes(b"PK\x03\x04 not really a zip", "x.docx", profile)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("hello.txt", "a zip, but not a Word document")
    with pytest.raises(ImportRefused, match=r"x\.docx: not a Word document .* that can be read"):
        import_bytes(package.getvalue(), "x.docx", profile)


def test_a_word_document_that_unpacks_too_large_is_refused(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = docx_from_text("Issue 1, 2024\nTitle\n\nText of the issue, as sentences go.")
    import_bytes(data, "x.docx", profile)  # fine as it is
    monkeypatch.setattr(docx_reader, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(ImportRefused, match=r"x\.docx: the document unpacks to more than"):
        import_bytes(data, "x.docx", profile)


XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=200,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(XML_TEXT, LINE.filter(_xml_safe)), max_size=25))
def test_random_word_documents_never_crash_nor_lose_a_line(
    profile: Profile, lines: list[str]
) -> None:
    text = "\n".join(lines)
    try:
        imported = import_bytes(docx_from_text(text), "random.docx", profile, today=TODAY)
    except ImportRefused as exc:
        assert "holds no text" in str(exc)
        return
    document = imported.document
    if document["blocks"]:
        Issue.model_validate(document)
    found = "\n".join(seen_as(s) for s in strings_of(document) + imported.warnings)
    for line in text.split("\n"):
        number, day = issue_number(line, profile), issue_date(line, profile)
        consumed = (
            (number and number[0] == document["number"])
            or (day and day.isoformat() == document["date"])
            or is_masthead(line, profile)
            or is_contact_heading(line, profile)
        )
        if not consumed:
            assert seen_as(line) in found, line
