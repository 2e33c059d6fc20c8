"""The gettext catalogs (mailer/locale): every message of the sources is in the
template, every catalog translates every message (nothing missing, nothing fuzzy)
with the same placeholders, and the committed .mo files are the .po files compiled.

Read with Babel's own pofile reader and extractor, as pybabel does."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from mailer.languages import LANGUAGES, LOCALE_DIR
from tests.conftest import REPO

TEMPLATE = LOCALE_DIR / "messages.pot"
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
# Both kinds the sources use: %(name)s (Jinja2's trans blocks) and {name} (the labels).
PLACEHOLDER = re.compile(r"%\([A-Za-z_]\w*\)[sd]|\{[A-Za-z_]\w*\}")


def _po(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _ids(catalog: Catalog) -> set[str]:
    return {str(m.id) for m in catalog if m.id}


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def problems(catalog: Catalog, expected: set[str]) -> list[str]:
    """What is wrong with one catalog, one line each (empty: complete)."""
    found: list[str] = []
    for msgid in sorted(expected - _ids(catalog)):
        found.append(f"missing: {msgid!r}")
    for message in catalog:
        if not message.id:
            continue
        msgid, msgstr = str(message.id), str(message.string or "")
        if msgid not in expected:
            found.append(f"obsolete (run pybabel update): {msgid!r}")
        elif not msgstr:
            found.append(f"untranslated: {msgid!r}")
        elif message.fuzzy:
            found.append(f"fuzzy: {msgid!r}")
        elif placeholders(msgid) != placeholders(msgstr):
            found.append(
                f"placeholders {placeholders(msgstr)} instead of {placeholders(msgid)}: {msgid!r}"
            )
    return found


def test_the_template_has_every_message_of_the_sources() -> None:
    """`pybabel extract -F babel.cfg -k N_` run again finds nothing new (and nothing gone)."""
    config = io.StringIO((REPO / "babel.cfg").read_text(encoding="utf-8"))
    method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    extracted = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(REPO),
            method_map,
            options_map,
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
        )
    }
    with TEMPLATE.open("rb") as f:
        template = _ids(read_po(f))
    assert extracted == template, "run pybabel extract and update (see README, Languages)"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_with_its_placeholders(language: str) -> None:
    with TEMPLATE.open("rb") as f:
        expected = _ids(read_po(f))
    assert len(expected) > 30
    assert problems(_po(language), expected) == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_is_the_po_file_compiled(language: str) -> None:
    """The .mo files are committed: one left behind its .po would show old words."""
    compiled = io.BytesIO()
    write_mo(compiled, _po(language))
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        committed = read_mo(f)
    fresh = read_mo(io.BytesIO(compiled.getvalue()))
    assert {str(m.id): m.string for m in committed if m.id} == {
        str(m.id): m.string for m in fresh if m.id
    }, "run pybabel compile -d mailer/locale"


def test_the_check_finds_each_kind_of_problem() -> None:
    """The completeness check itself fails on a bad catalog (so it is not a test that
    cannot fail)."""
    catalog = Catalog(locale="th")
    catalog.add("Contact Us", "")
    catalog.add("Issue {number}, {year}", "ฉบับที่ {number}")
    catalog.add("%(address)s will receive no more issues.", "%(adress)s จะไม่ได้รับ")
    catalog.add("Links", "ลิงก์", flags=["fuzzy"])
    catalog.add("Gone", "หายไป")
    expected = {
        "Contact Us",
        "Issue {number}, {year}",
        "%(address)s will receive no more issues.",
        "Links",
        "Unsubscribe",
    }
    found = problems(catalog, expected)
    assert found == [
        "missing: 'Unsubscribe'",
        "untranslated: 'Contact Us'",
        "placeholders ['{number}'] instead of ['{number}', '{year}']: 'Issue {number}, {year}'",
        "placeholders ['%(adress)s'] instead of ['%(address)s']:"
        " '%(address)s will receive no more issues.'",
        "fuzzy: 'Links'",
        "obsolete (run pybabel update): 'Gone'",
    ]


def test_every_language_has_a_catalog_and_no_catalog_is_unlisted() -> None:
    on_disk = {p.parent.parent.name for p in Path(LOCALE_DIR).glob("*/LC_MESSAGES/messages.po")}
    assert on_disk == set(TRANSLATED)
