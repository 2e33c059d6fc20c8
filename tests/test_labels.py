"""The words around an issue's content in each language: CLDR dates (Babel), the
catalogs' labels in the rendered email (text and HTML), the profile's own labels per
language, and English for a language we have no catalog for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailer.authoring.content import load_issue_text
from mailer.authoring.labels import issue_date
from mailer.authoring.loader import ContentError
from mailer.authoring.profile import load_profile
from mailer.authoring.render import Renderer
from tests.conftest import REPO, make_settings
from tests.test_render import issue_yaml
from tests.test_seeds import visible_text

DAY = dt.date(2022, 9, 29)

# What CLDR writes (the issue names the first three); English keeps the masthead's look.
DATES = {
    "en": "September 29 2022",
    "zh": "2022年9月29日",
    "th": "29 กันยายน 2022",
    "vi": "29 tháng 9, 2022",
    "km": "29 កញ្ញា 2022",
    "lo": "29 ກັນຍາ 2022",
    "my": "2022 စက်တင်ဘာ 29",
}


@pytest.mark.parametrize(("language", "expected"), sorted(DATES.items()))
def test_dates_follow_cldr_for_each_language(language: str, expected: str) -> None:
    assert issue_date(DAY, language) == expected


def test_a_tag_with_a_region_or_script_reads_its_language_and_others_read_english() -> None:
    assert issue_date(DAY, "zh-Hans") == "2022年9月29日"
    assert issue_date(DAY, "th-TH") == "29 กันยายน 2022"
    assert issue_date(DAY, "fr") == "September 29 2022"  # no catalog: the labels are English


# The issue line, "Contact Us" and the footer's four sentences, as each catalog has them.
WORDS = {
    "en": (
        "Issue 13, 2022",
        "Contact Us",
        "This email was sent to",
        "View in your browser",
        "Manage your subscription",
        "Unsubscribe",
    ),
    "zh": ("2022年第13期", "联系我们", "本邮件发送给", "在浏览器中查看", "管理订阅", "退订"),
    "th": (
        "ฉบับที่ 13 ปี 2022",
        "ติดต่อเรา",
        "อีเมลนี้ส่งถึง",
        "ดูในเบราว์เซอร์",
        "จัดการการรับข่าวสาร",
        "ยกเลิกการรับ",
    ),
    "km": (
        "លេខ 13 ឆ្នាំ 2022",
        "ទាក់ទងមកយើង",
        "អ៊ីមែលនេះត្រូវបានផ្ញើទៅ",
        "មើលក្នុងកម្មវិធីរុករក",
        "គ្រប់គ្រងការជាវរបស់អ្នក",
        "ឈប់ជាវ",
    ),
    "lo": (
        "ສະບັບທີ 13, 2022",
        "ຕິດຕໍ່ພວກເຮົາ",
        "ອີເມວນີ້ສົ່ງເຖິງ",
        "ເບິ່ງໃນບຣາວເຊີ",
        "ຈັດການການຮັບຂ່າວສານ",
        "ຍົກເລີກການຮັບ",
    ),
    "my": (
        "အမှတ် 13၊ 2022",
        "ဆက်သွယ်ရန်",
        "ဤအီးမေးလ်ကို",
        "ဘရောက်ဇာတွင် ကြည့်ရန်",
        "စာရင်းသွင်းမှုကို စီမံရန်",
        "စာရင်းမှထွက်ရန်",
    ),
    "vi": (
        "Số 13, 2022",
        "Liên hệ",
        "Email này được gửi tới",
        "Xem trên trình duyệt",
        "Quản lý đăng ký",
        "Hủy đăng ký",
    ),
}


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer.from_settings(make_settings(tmp_path_factory.mktemp("labels")))


def _issue(language: str) -> str:
    return issue_yaml(
        "  - paragraph: '[A link](https://example.org/a)'\n",
        language=language,
        number="13",
        year="2022",
        date="2022-09-29",
    )


@pytest.mark.parametrize("language", sorted(WORDS))
def test_each_language_gets_its_labels_in_both_parts(renderer: Renderer, language: str) -> None:
    rendered = renderer.render(load_issue_text(_issue(language), f"{language}.yaml"))
    seen = visible_text(rendered.html)
    for words in (*WORDS[language], DATES[language]):
        assert words in rendered.text, words
        assert words in seen, words
    assert f'<html lang="{language}"' in rendered.html
    for other, theirs in WORDS.items():  # no other language's footer slipped in
        if other != language and other != "en":
            assert theirs[1] not in rendered.text
    # The per-recipient places stay slots, whatever the words around them.
    assert "%%NAME%%" in rendered.text and "%%UNSUBSCRIBE_URL%%" in rendered.html


def test_a_language_without_a_catalog_gets_english(renderer: Renderer) -> None:
    rendered = renderer.render(load_issue_text(_issue("fr"), "fr.yaml"))
    for words in (*WORDS["en"], DATES["en"]):
        assert words in rendered.text and words in visible_text(rendered.html)


def _profile_with(tmp_path: Path, labels: str) -> Renderer:
    profile = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8") + labels
    (tmp_path / "newsletter.yaml").write_text(profile, encoding="utf-8")
    return Renderer.from_settings(
        make_settings(tmp_path, newsletter_profile=tmp_path / "newsletter.yaml")
    )


def test_the_profile_overrides_labels_per_language_and_the_flat_form_is_english(
    tmp_path: Path,
) -> None:
    renderer = _profile_with(
        tmp_path,
        "labels:\n"
        "  contact: Write to us\n"  # the older flat form: English
        "  th:\n"
        "    contact: ติดต่อศูนย์\n"
        "    date: 'วันที่ {day} {month} {year}'\n"
        "  zh-Hans:\n"
        "    sent_to: 此邮件寄给 {name}。\n",
    )
    english = renderer.render(load_issue_text(_issue("en"), "en.yaml"))
    assert "Write to us" in english.text and "Contact Us" not in english.text
    assert "Issue 13, 2022" in english.text  # what the profile leaves out: the catalog's
    thai = renderer.render(load_issue_text(_issue("th"), "th.yaml"))
    # The profile's own date pattern for Thai, with CLDR's month name.
    assert "ติดต่อศูนย์" in thai.text and "วันที่ 29 กันยายน 2022" in thai.text
    assert "Write to us" not in thai.text and "ดูในเบราว์เซอร์" in thai.text
    chinese = renderer.render(load_issue_text(_issue("zh-Hans"), "zh.yaml"))
    assert "此邮件寄给 %%NAME%%。" in chinese.text and "联系我们" in chinese.text


def test_a_label_key_that_is_neither_a_label_nor_a_language_is_named(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    base = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8")
    path.write_text(base + "labels:\n  contcat: Contact\n", encoding="utf-8")
    with pytest.raises(ContentError, match=r"unknown label 'contcat'"):
        load_profile(path)
    path.write_text(base + "labels:\n  th:\n    issue: 'ฉบับ {nummer}'\n", encoding="utf-8")
    with pytest.raises(ContentError, match=r"labels\.th\.issue: may only use the placeholders"):
        load_profile(path)


@pytest.mark.parametrize(("language", "spaced"), [("en", True), ("vi", True), ("km", False)])
def test_spaced_capitals_only_where_the_script_takes_them(
    renderer: Renderer, language: str, spaced: bool
) -> None:
    """Letter-spacing pulls a Khmer (Thai, Lao, Burmese) cluster apart; Chinese has no
    capitals: the "Contact Us" heading and a subtitle are spaced capitals in Latin only."""
    source = _issue(language).replace("blocks:", "subtitle: Views of experts\nblocks:")
    markup = renderer.render(load_issue_text(source, f"{language}.yaml")).html
    heading = f'letter-spacing:1.5px;text-transform:uppercase;color:#0b5d4b">{WORDS[language][1]}'
    assert (heading in markup) is spaced
    assert ('<span style="text-transform:uppercase">Views of experts' in markup) is spaced
