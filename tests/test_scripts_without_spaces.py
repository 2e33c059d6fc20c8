"""Thai, Khmer, Lao and Burmese: wrapping the plain text and encoding header names.

These scripts write no spaces between words, so the plain-text part may only break
where ICU's dictionaries see a word end, and an RFC 2047 encoded word must never end
inside a grapheme cluster (a consonant with its vowel signs and tone marks). Every
check compares with ICU's own iterators, never with the code under test.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from datetime import UTC, datetime
from email.header import decode_header
from pathlib import Path

import icu
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer, wrap
from mailer.authoring.wrapping import display_width
from mailer.delivery.message import Identity, MessageTemplate, Recipient, encoded_words
from mailer.people import resets
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent

THAI = (
    "ความร่วมมือด้านสิ่งแวดล้อมในภูมิภาคมีความสำคัญอย่างยิ่งต่อการรับมือกับการเปลี่ยนแปลง"
    "สภาพภูมิอากาศและการแก้ไขปัญหาสิ่งแวดล้อม จึงขอเสนอให้ประเทศสมาชิกร่วมกันฟื้นฟูระบบนิเวศ"
    "และทรัพยากรธรรมชาติของภูมิภาคควบคู่ไปกับการฟื้นฟูเศรษฐกิจจากการระบาดของโรคโควิด-19 "
    "ในช่วงห้าปีที่ผ่านมาความร่วมมือด้านสิ่งแวดล้อมล้านช้าง-แม่โขงมีความก้าวหน้าอย่างมากในด้าน"
    "การเปลี่ยนแปลงสภาพภูมิอากาศ การอนุรักษ์ความหลากหลายทางชีวภาพ และการบริหารจัดการสิ่งแวดล้อม "
    "ในอนาคตความร่วมมือจะให้ความสำคัญกับประเด็นสำคัญของภูมิภาคและของโลกมากขึ้น เช่น "
    "โครงสร้างพื้นฐานที่ทนทานต่อสภาพภูมิอากาศ การคุ้มครองและฟื้นฟูระบบนิเวศ "
    "เศรษฐกิจหมุนเวียนของพลาสติกและการปรับปรุงคุณภาพสิ่งแวดล้อม"
)
KHMER = (
    "កិច្ចសហប្រតិបត្តិការបរិស្ថានឡានឆាង-មេគង្គគឺជាក្របខ័ណ្ឌសហប្រតិបត្តិការដ៏សំខាន់មួយនៅក្នុងតំបន់។ "
    "ក្នុងរយៈពេលប្រាំឆ្នាំកន្លងមកប្រទេសជាសមាជិកបានសហការគ្នាយ៉ាងជិតស្និទ្ធលើការប្រែប្រួលអាកាសធាតុ "
    "ការអភិរក្សជីវចម្រុះ និងអភិបាលកិច្ចបរិស្ថាន។ "
    "មជ្ឈមណ្ឌលសហប្រតិបត្តិការបរិស្ថានឡានឆាង-មេគង្គបានរៀបចំកិច្ចសន្ទនាគោលនយោបាយ "
    "វគ្គបណ្តុះបណ្តាល និងការស្រាវជ្រាវរួមគ្នាជាច្រើនដើម្បីពង្រឹងសមត្ថភាពរបស់មន្ត្រីរាជការ"
    "និងអ្នកជំនាញបរិស្ថាននៅក្នុងប្រទេសនីមួយៗ។ យើងសង្ឃឹមថាក្របខ័ណ្ឌយុទ្ធសាស្ត្រនិងសកម្មភាពថ្មី"
    "នឹងជួយឱ្យប្រទេសទាំងប្រាំមួយសម្រេចបាននូវគោលដៅអភិវឌ្ឍន៍ប្រកបដោយចីរភាព "
    "ការពារធនធានធម្មជាតិ និងលើកកម្ពស់ជីវភាពរស់នៅរបស់ប្រជាជនដែលរស់នៅតាមដងទន្លេមេគង្គ។"
)
LAO = (
    "ການຮ່ວມມືດ້ານສິ່ງແວດລ້ອມລ້ານຊ້າງ-ແມ່ຂອງແມ່ນກອບການຮ່ວມມືທີ່ສຳຄັນຂອງພາກພື້ນ. "
    "ໃນໄລຍະຫ້າປີຜ່ານມາບັນດາປະເທດສະມາຊິກໄດ້ຮ່ວມມືກັນຢ່າງໃກ້ຊິດໃນການຮັບມືກັບການປ່ຽນແປງດິນຟ້າອາກາດ "
    "ການອະນຸລັກຊີວະນາໆພັນ ແລະ ການຄຸ້ມຄອງສິ່ງແວດລ້ອມ. "
    "ສູນຮ່ວມມືດ້ານສິ່ງແວດລ້ອມລ້ານຊ້າງ-ແມ່ຂອງໄດ້ຈັດກອງປະຊຸມປຶກສາຫາລືດ້ານນະໂຍບາຍ "
    "ການຝຶກອົບຮົມ ແລະ ການຄົ້ນຄວ້າຮ່ວມກັນຫຼາຍຄັ້ງເພື່ອເສີມຂະຫຍາຍຄວາມສາມາດຂອງພະນັກງານລັດ"
    "ແລະຊ່ຽວຊານດ້ານສິ່ງແວດລ້ອມໃນແຕ່ລະປະເທດ. ພວກເຮົາຫວັງວ່າຍຸດທະສາດແລະແຜນດຳເນີນງານສະບັບໃໝ່"
    "ຈະຊ່ວຍໃຫ້ທັງຫົກປະເທດບັນລຸເປົ້າໝາຍການພັດທະນາແບບຍືນຍົງ ປົກປັກຮັກສາຊັບພະຍາກອນທຳມະຊາດ "
    "ແລະ ຍົກສູງຊີວິດການເປັນຢູ່ຂອງປະຊາຊົນທີ່ອາໄສຢູ່ຕາມລຳແມ່ນ້ຳຂອງ."
)
BURMESE = (
    "လန်ချန်း-မဲခေါင်ပတ်ဝန်းကျင်ဆိုင်ရာပူးပေါင်းဆောင်ရွက်မှုသည်ဒေသတွင်းအရေးပါသော"
    "ပူးပေါင်းဆောင်ရွက်မှုမူဘောင်တစ်ခုဖြစ်ပါသည်။ "
    "လွန်ခဲ့သောငါးနှစ်အတွင်းအဖွဲ့ဝင်နိုင်ငံများသည်ရာသီဥတုပြောင်းလဲမှု၊ "
    "ဇီဝမျိုးစုံမျိုးကွဲထိန်းသိမ်းရေးနှင့်ပတ်ဝန်းကျင်စီမံအုပ်ချုပ်မှုတို့တွင်နီးကပ်စွာ"
    "ပူးပေါင်းဆောင်ရွက်ခဲ့ကြပါသည်။ မြန်မာနိုင်ငံသည်ဒေသတွင်းနှင့်ကမ္ဘာလုံးဆိုင်ရာ"
    "ပတ်ဝန်းကျင်ထိန်းသိမ်းရေးနှင့်စဉ်ဆက်မပြတ်ဖွံ့ဖြိုးတိုးတက်ရေးအတွက်ပါဝင်ကူညီခဲ့ပါသည်။ "
    "သဘာဝအခြေပြုဖြေရှင်းနည်းများသည်သဘာဝသယံဇာတများကိုပြန်လည်ထူထောင်ရန်နှင့်"
    "ရာသီဥတုနှင့်ပတ်ဝန်းကျင်အကျပ်အတည်းကိုဖြေရှင်းရန်အလွန်အရေးကြီးပါသည်။ "
    "မြန်မာနိုင်ငံသည်အခြားလန်ချန်း-မဲခေါင်နိုင်ငံများနှင့်သက်ဆိုင်ရာကဏ္ဍများတွင်"
    "ပတ်ဝန်းကျင်ဆိုင်ရာပူးပေါင်းဆောင်ရွက်မှုဖြစ်နိုင်ခြေများကိုရှာဖွေလိုပါသည်။"
)
PARAGRAPHS = {"th": THAI, "km": KHMER, "lo": LAO, "my": BURMESE}


def columns(text: str) -> int:
    """Display columns, counted here independently of the code under test."""
    return sum(
        0
        if unicodedata.category(char) in ("Mn", "Me", "Cf")
        else 2
        if unicodedata.east_asian_width(char) in "WF"
        else 1
        for char in text
    )


def boundaries(iterator: icu.BreakIterator, text: str) -> set[int]:
    """ICU's boundaries in `text` (code-point offsets; these texts are all in the BMP)."""
    assert all(ord(char) < 0x10000 for char in text)
    iterator.setText(text)
    return {0, *(int(offset) for offset in iterator)}


def words(text: str, language: str) -> set[int]:
    return boundaries(icu.BreakIterator.createWordInstance(icu.Locale(language)), text)


def graphemes(text: str) -> set[int]:
    return boundaries(icu.BreakIterator.createCharacterInstance(icu.Locale.getRoot()), text)


def breaks(text: str, lines: list[str]) -> list[int]:
    """Where in `text` each line after the first starts, checking that the lines give
    back the text: each break either drops one space or nothing at all."""
    position = 0
    starts = []
    for number, line in enumerate(lines):
        assert text.startswith(line, position), (number, line)
        position += len(line)
        if number < len(lines) - 1:
            if text[position] == " ":
                position += 1
            starts.append(position)
    assert position == len(text)
    return starts


@pytest.mark.parametrize("language", sorted(PARAGRAPHS))
def test_a_long_paragraph_breaks_only_at_icu_word_ends(language: str) -> None:
    text = PARAGRAPHS[language]
    assert len(text) >= 400
    lines = wrap(text, locale=language).split("\n")
    assert len(lines) >= 5
    word_ends, clusters = words(text, language), graphemes(text)
    for line in lines:
        assert columns(line) <= 78, line
        assert display_width(line) == columns(line)
        assert line == line.strip()
    for start in breaks(text, lines):
        assert start in clusters, (language, text[start - 5 : start + 5])
        assert start in word_ends, (language, text[start - 5 : start + 5])
    # Greedy: a line ends where the next word would not fit (allowing for the space).
    for line, following in itertools.pairwise(lines):
        first = next(iter(wrap(following, width=1, locale=language).split("\n")))
        assert columns(line) + 1 + columns(first) > 78, (line, first)


def test_the_thai_example_wraps_at_word_ends_in_the_plain_text_part(tmp_path: Path) -> None:
    issue = load_issue(REPO / "examples" / "issues" / "2022-13.th.yaml")
    text = Renderer.from_settings(make_settings(tmp_path)).render(issue).text
    assert max(columns(line) for line in text.splitlines()) <= 78
    assert "เศรษฐกิจจากการระบาดของโรคโควิด-19" in text.replace("\n", "")
    for line in text.splitlines():
        if re.search("[\u0e00-\u0e7f]", line):
            stripped = line.strip()
            # no line starts with a mark that belongs to the letter before it
            assert unicodedata.category(stripped[0]) not in ("Mn", "Mc"), line


def test_chinese_still_breaks_between_characters_and_latin_at_spaces() -> None:
    text = "澜沧江-湄公河环境合作中心成立以来，积极推动“绿色澜湄计划”的实施。" * 4
    lines = wrap(text, locale="zh").split("\n")
    assert "".join(lines) == text
    assert all(columns(line) <= 78 for line in lines)
    assert any(columns(line) >= 76 for line in lines[:-1])  # full lines, not word-sized
    english = "Lancang-Mekong environmental cooperation " * 6
    assert wrap(english.strip(), locale="en") == wrap(english.strip())
    assert all(len(line) <= 78 and not line.endswith("-") for line in wrap(english).split("\n"))


def test_links_addresses_and_slots_stay_whole_in_thai_text() -> None:
    url = "https://ไทย.example/เส้นทาง/ความร่วมมือด้านสิ่งแวดล้อม"
    text = f"ดูรายละเอียดที่ {url} หรือเขียนถึง ข่าวสาร@ตัวอย่าง.ไทย เรียน%%NAME%%ครับ"
    out = wrap(text, width=20, locale="th")
    assert url in out.split("\n")
    assert "ข่าวสาร@ตัวอย่าง.ไทย" in out.split("\n")
    assert "%%NAME%%" in out


LATIN = ["LMEC", "Mekong", "COVID-19", "2023-2027", "Lê", "Ngọc", "(FECO)", "ESCAP,"]


def segments(text: str, language: str) -> list[str]:
    """The words of `text` as ICU's word iterator cuts them (spaces left out)."""
    cuts = sorted(words(text, language) | {len(text)})
    return [text[a:b] for a, b in itertools.pairwise(cuts) if text[a:b].strip()]


# Real words of the four paragraphs, to be run together with and without spaces.
PIECES = [piece for language, text in PARAGRAPHS.items() for piece in segments(text, language)[:40]]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PIECES + LATIN), st.sampled_from(["", "", " ", "  "])),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=8, max_value=78),
    st.sampled_from(["th", "km", "lo", "my", "en"]),
)
def test_random_mixes_of_scripts_break_at_words_and_fit(
    parts: list[tuple[str, str]], width: int, language: str
) -> None:
    text = " ".join("".join(piece + joiner for piece, joiner in parts).split())
    lines = wrap(text, width=width, locale=language).split("\n")
    word_ends, clusters = words(text, language), graphemes(text)
    for start in breaks(text, lines):
        assert start in clusters
        assert text[start - 1] == " " or start in word_ends
    for line in lines:
        # A line is over the width only when it holds one piece that cannot break.
        assert columns(line) <= width or " " not in line, line


# --- headers ------------------------------------------------------------------------

NAMES = [
    # Thai, Khmer, Lao, Burmese: long enough to need several encoded words.
    "นางสาวนฤมล โอริส นักวิชาการสิ่งแวดล้อมชำนาญการพิเศษ กองการต่างประเทศ",
    "លោកស្រី ស្រី សុនលាង អគ្គនាយករងនៃអគ្គនាយកដ្ឋានតំបន់ការពារធម្មជាតិ",
    "ທ່ານ ລອນຄຳ ອັດສະນາວົງ ຫົວໜ້າສະຖາບັນຄົ້ນຄວ້າຊັບພະຍາກອນທຳມະຊາດ",
    "ဒေါ်သော်သော်ဟန် ညွှန်ကြားရေးမှူး ပတ်ဝန်းကျင်ထိန်းသိမ်းရေးဦးစီးဌာန",
    # Vietnamese with combining accents (NFD): a letter and its marks are one cluster.
    unicodedata.normalize("NFD", "Ông Lê Ngọc Tuấn, Tổng cục trưởng Vụ Hợp tác Quốc tế"),
]


def encoded(raw: str) -> list[str]:
    """Each RFC 2047 encoded word in `raw`, decoded on its own."""
    out = []
    for word in re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", raw):
        assert len(word) <= 75
        ((payload, charset),) = decode_header(word)
        assert isinstance(payload, bytes) and charset is not None
        out.append(payload.decode(charset))  # raises if a word ends inside a character
    return out


def assert_whole_clusters(name: str, pieces: list[str]) -> None:
    assert len(pieces) >= 2, "the name should need several encoded words"
    assert "".join(pieces) == name
    clusters = graphemes(name)
    position = 0
    for piece in pieces:
        position += len(piece)
        assert position in clusters, (piece, name[position - 3 : position + 3])


@pytest.mark.parametrize("name", NAMES)
def test_encoded_words_never_split_a_grapheme_cluster(name: str) -> None:
    assert_whole_clusters(name, encoded(encoded_words(name)))


@pytest.mark.parametrize("name", NAMES)
def test_names_and_subjects_in_sent_messages_keep_their_clusters(name: str) -> None:
    identity = Identity(
        public_base_url="https://news.example.org",
        secret="test-secret-key-0123456789abcdef",
        sender_domain="lmec.example.org",
        list_id="newsletter.lmec.example.org",
        list_name=name,
    )
    template = MessageTemplate(
        identity=identity,
        campaign_id=7,
        nonce="n1",
        subject=name,
        sender=f"{encoded_words(name).replace(chr(13) + chr(10), '')} <news@lmec.example.org>",
        html="<p>Hi</p>",
        text="Hi",
    )
    out = template.personalise(
        Recipient(1, "x@example.org", name), datetime(2022, 9, 29, tzinfo=UTC)
    )
    head = out.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in ("To", "From", "Subject", "List-Id"):
        found = re.search(rf"^{field}: (.*?)\r\n(?! )", head, re.S | re.M)
        assert found is not None, field
        assert_whole_clusters(name, encoded(found.group(1)))


@pytest.mark.parametrize("name", NAMES)
def test_the_password_reset_mail_keeps_name_clusters(name: str) -> None:
    data, _ = resets.message(
        name=name,
        to="staff@example.org",
        sender_name=name,
        sender_address="news@lmec.example.org",
        site="LMEC",
        url="https://news.example.org/reset/x",
        minutes=30,
        domain="lmec.example.org",
    )
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in ("To", "From"):
        found = re.search(rf"^{field}: (.*?)\r\n(?! )", head, re.S | re.M)
        assert found is not None, field
        assert_whole_clusters(name, encoded(found.group(1)))


def test_characters_outside_the_basic_plane_keep_their_place() -> None:
    """ICU counts UTF-16 units: a CJK Extension B character or an emoji takes two, and
    the cuts must still land between the right code points."""
    text = "𠮷野家的𩸽鱼饭。" * 12 + " 👩‍👩‍👧 ไทย👍🏽ภาษาไทยอ่านง่ายมาก" * 4
    lines = wrap(text, width=30, locale="zh").split("\n")
    assert len(lines) > 3
    for start in breaks(text, lines):
        assert start in grapheme_offsets(text)
    for line in lines:
        assert columns(line) <= 30, line
    name = " 👩‍👩‍👧 ไทย👍🏽ภาษาไทยอ่านง่ายมาก" * 2
    pieces = encoded(encoded_words(name))
    assert len(pieces) > 2 and "".join(pieces) == name
    position = 0
    for piece in pieces:
        position += len(piece)
        assert position in grapheme_offsets(name), piece


def grapheme_offsets(text: str) -> set[int]:
    """ICU's grapheme boundaries as code-point offsets (for text outside the BMP too)."""
    units = [
        index for index, char in enumerate(text) for _ in range(len(char.encode("utf-16-le")) // 2)
    ]
    units.append(len(text))
    iterator = icu.BreakIterator.createCharacterInstance(icu.Locale.getRoot())
    iterator.setText(text)
    return {0, *(units[int(offset)] for offset in iterator)}
