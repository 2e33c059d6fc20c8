"""Rendering: editors' text stays text, every script survives MJML, slots, photos, plain text."""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mailer.authoring.content import load_issue, load_issue_text
from mailer.authoring.loader import ContentError
from mailer.authoring.markdown import Links, Markdown
from mailer.authoring.media import MediaError, MediaStore
from mailer.authoring.render import (
    FONT_STACK,
    Renderer,
    Slot,
    TemplateProblem,
    fill,
    initials,
    web_copy,
    wrap,
)
from mailer.compose import Root
from mailer.demo import DemoPlace, prepare
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent

# Real names and roles in the six countries' scripts (Thai, Khmer, Lao and Burmese
# carry combining marks, which mjml-python escapes as \u{...} in attributes).
PEOPLE = [
    ("นางสาวนฤมล โอริส", "ผู้อำนวยการกองการต่างประเทศ กระทรวงทรัพยากรธรรมชาติและสิ่งแวดล้อม", "TH"),
    ("ស្រី សុនលាង", "អគ្គនាយករង អគ្គនាយកដ្ឋានតំបន់ការពារធម្មជាតិ ក្រសួងបរិស្ថាន", "KH"),
    ("ລອນຄຳ ອັດສະນາວົງ", "ກະຊວງຊັບພະຍາກອນທຳມະຊາດ ແລະ ສິ່ງແວດລ້ອມ", "LA"),
    ("ဒေါ်သော်သော်ဟန်", "သယံဇာတနှင့် သဘာဝပတ်ဝန်းကျင်ထိန်းသိမ်းရေးဝန်ကြီးဌာန", "MM"),
    ("Lê Ngọc Tuấn", "Vụ trưởng Vụ Hợp tác quốc tế, Bộ Tài nguyên và Môi trường", "VN"),
    ("周军", "生态环境部国际合作司司长", "CN"),
]


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    return Renderer.from_settings(make_settings(tmp_path))


def make_photo(path: Path, width: int = 400, height: int = 300, colour: str = "#2a7") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path, "JPEG")
    return path


def issue_yaml(blocks: str, **fields: str) -> str:
    head = {
        "newsletter": "lmec",
        "number": "7",
        "year": "2023",
        "date": "2023-03-01",
        "language": "en",
        "title": "A title",
        "preheader": "A preheader",
    }
    head.update(fields)
    return "".join(f"{k}: {v}\n" for k, v in head.items()) + "blocks:\n" + blocks


class Attributes(HTMLParser):
    """Every attribute value of every tag, unescaped as a browser would."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.values.extend((tag, name, value or "") for name, value in attrs)


def attributes(markup: str) -> list[tuple[str, str, str]]:
    parser = Attributes()
    parser.feed(markup)
    return parser.values


HOSTILE = (
    "<script>alert(1)</script> {{ 7*7 }} {% if x %}y{% endif %} Tom & Jerry \"quoted\" 'single'"
)


def test_editor_text_is_text_never_markup_or_template(renderer: Renderer, tmp_path: Path) -> None:
    yaml_text = issue_yaml(
        f"""\
  - paragraph: |
      {HOSTILE}
      - a line starting with a dash
      # not a heading
  - heading: '{HOSTILE.replace("'", "''")}'
  - statement:
      name: '{HOSTILE.replace("'", "''")}'
      roles: ['{HOSTILE.replace("'", "''")}']
      text: '{HOSTILE.replace("'", "''")}'
  - button: {{label: '{HOSTILE.replace("'", "''")}', url: "https://example.org/?a=1&b=2"}}
""",
        title=f"'{HOSTILE.replace(chr(39), chr(39) * 2)}'",
        preheader=f"'{HOSTILE.replace(chr(39), chr(39) * 2)}'",
    )
    rendered = renderer.render(load_issue_text(yaml_text, "hostile.yaml"))
    markup = rendered.html
    assert "<script>" not in markup
    assert "alert(1)" in markup
    assert markup.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert "{{ 7*7 }}" in markup and "49" not in markup
    assert "{% if x %}y{% endif %}" in markup
    assert "Tom &amp; Jerry" in markup
    assert "- a line starting with a dash" in markup
    assert "<li>" not in markup and "<ul>" not in markup and "<h1>#" not in markup
    assert 'href="https://example.org/?a=1&amp;b=2"' in markup
    # The plain-text part shows the very characters the editor typed.
    assert rendered.text.count("<script>alert(1)</script>") >= 5
    assert "{{ 7*7 }}" in rendered.text and "Tom & Jerry \"quoted\" 'single'" in rendered.text
    assert "- a line starting with a dash" in rendered.text
    assert rendered.subject == HOSTILE
    assert rendered.preheader == HOSTILE


def test_markdown_formatting_and_links(renderer: Renderer) -> None:
    yaml_text = issue_yaml(
        """\
  - paragraph: |
      An *italic title*, **bold words**, a [report](https://example.org/report) and
      <https://example.org/> and <someone@example.org>.\\
      A hard break.

      A second paragraph.
"""
    )
    rendered = renderer.render(load_issue_text(yaml_text, "md.yaml"))
    assert "<em>italic title</em>" in rendered.html
    assert "<strong>bold words</strong>" in rendered.html
    assert 'href="https://example.org/report"' in rendered.html
    assert 'href="mailto:someone@example.org"' in rendered.html
    assert re.search(r"<br\s*/?>\s*A hard break\.", rendered.html)
    assert "a report [1] and <https://example.org/> and someone@example.org." in " ".join(
        rendered.text.split()
    )
    assert "\nLinks:\n[1] https://example.org/report\n" in rendered.text
    assert "A second paragraph." in rendered.text


@pytest.mark.parametrize(("name", "role", "country"), PEOPLE)
def test_names_in_every_script_survive_in_text_and_attributes(
    renderer: Renderer, tmp_path: Path, name: str, role: str, country: str
) -> None:
    make_photo(tmp_path / "photos" / "p.jpg")
    path = tmp_path / "issue.yaml"
    path.write_text(
        issue_yaml(
            f"""\
  - statement:
      name: {name}
      roles: ["{role}"]
      country: {country}
      photo: photos/p.jpg
      photo_alt: "{name} — {role}"
      text: "{role} {name}"
  - statement:
      name: {name}
      text: No photo, a monogram.
  - image: {{src: photos/p.jpg, alt: "{role}", caption: "{name}"}}
""",
            title=f'"{name}"',
            language={"TH": "th", "KH": "km", "LA": "lo", "MM": "my", "VN": "vi", "CN": "zh"}[
                country
            ],
        ),
        encoding="utf-8",
    )
    from mailer.authoring.content import load_issue

    rendered = renderer.render(load_issue(path))
    markup = rendered.html
    assert "\\u{" not in markup
    assert '\\"' not in markup
    values = attributes(markup)
    alts = {v for tag, attr, v in values if attr == "alt"}
    titles = {v for tag, attr, v in values if attr == "title"}
    assert f"{name} — {role}" in alts
    assert role in alts
    assert name in titles
    assert any(attr == "aria-label" and v == name for _, attr, v in values)
    # Element text keeps the characters themselves.
    assert name in markup and role in markup
    assert name in rendered.text and role in rendered.text
    assert f'<html lang="{rendered.language}"' in markup
    title = re.search(r"<title>(.*?)</title>", markup)
    assert title is not None and html.unescape(title.group(1)) == name


def test_font_stack_covers_the_six_scripts(renderer: Renderer) -> None:
    rendered = renderer.render(load_issue_text(issue_yaml("  - paragraph: Hi\n"), "f.yaml"))
    for family in (
        "Noto Sans SC",
        "Noto Sans Thai",
        "Noto Sans Khmer",
        "Noto Sans Lao",
        "Noto Sans Myanmar",
        "Microsoft YaHei",
        "Leelawadee UI",
        "Khmer UI",
        "Myanmar Text",
    ):
        assert family in FONT_STACK
    assert f"font-family:{FONT_STACK}" in rendered.html
    assert '<meta name="color-scheme" content="light" />' in rendered.html
    assert "googleapis" not in rendered.html  # no web font downloads from Google


def test_slots_survive_mjml_and_escaping_byte_for_byte(renderer: Renderer) -> None:
    rendered = renderer.render(load_issue_text(issue_yaml("  - paragraph: Hi\n"), "s.yaml"))
    for slot in Slot:
        assert slot.value in rendered.html, slot
        assert slot.value in rendered.text, slot
    assert f'href="{Slot.UNSUBSCRIBE_URL}"' in rendered.html
    assert f'href="{Slot.PREFERENCES_URL}"' in rendered.html
    assert rendered.html.count(f'href="{Slot.VIEW_URL}"') == 2  # top and footer
    assert f"Unsubscribe: {Slot.UNSUBSCRIBE_URL}\n" in rendered.text
    assert f"sent to {Slot.NAME} ({Slot.EMAIL})" in rendered.text


def test_fill_escapes_for_html_and_not_for_text(renderer: Renderer) -> None:
    rendered = renderer.render(load_issue_text(issue_yaml("  - paragraph: Hi\n"), "s.yaml"))
    values = {
        Slot.UNSUBSCRIBE_URL: "https://news.example.org/unsubscribe/abc?x=1&y=2",
        Slot.PREFERENCES_URL: "https://news.example.org/preferences/abc",
        Slot.VIEW_URL: "https://news.example.org/view/3",
        Slot.NAME: 'Somchai "<b>" & ใจดี',
        Slot.EMAIL: "somchai@example.org",
    }
    filled_html = fill(rendered.html, values, html=True)
    filled_text = fill(rendered.text, values, html=False)
    assert "%%" not in filled_html and "%%" not in filled_text
    assert 'href="https://news.example.org/unsubscribe/abc?x=1&amp;y=2"' in filled_html
    assert "Somchai &quot;&lt;b&gt;&quot; &amp; ใจดี" in filled_html
    assert 'Somchai "<b>" & ใจดี (somchai@example.org)' in filled_text
    # Slots not given stay in place for a later pass.
    partial = fill(rendered.text, {Slot.NAME: "X"}, html=False)
    assert Slot.EMAIL.value in partial and Slot.NAME.value not in partial


def test_photos_are_resized_hashed_and_linked_absolutely(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_base_url="https://news.example.org")
    renderer = Renderer.from_settings(settings)
    photo = make_photo(tmp_path / "issue" / "photos" / "zhou.jpg", 1200, 900)
    path = tmp_path / "issue" / "i.yaml"
    path.write_text(
        issue_yaml(
            "  - statement: {name: Mr. ZHOU Jun, photo: photos/zhou.jpg, text: Hi}\n"
            "  - image: {src: photos/zhou.jpg, alt: The meeting}\n"
            "  - image: {src: 'https://cdn.example.org/x.jpg', alt: Remote}\n"
        ),
        encoding="utf-8",
    )
    from mailer.authoring.content import load_issue

    first = renderer.render(load_issue(path)).html
    srcs = [v for tag, attr, v in attributes(first) if tag == "img" and attr == "src"]
    assert "https://cdn.example.org/x.jpg" in srcs
    local = [s for s in srcs if s.startswith("https://news.example.org/media/")]
    assert len(local) == 2
    widths = {}
    for url in local:
        name = url.rsplit("/", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{20}\.jpg", name)
        with Image.open(settings.resolved_media_dir / name) as stored:
            widths[stored.width] = stored.height
    assert widths == {112: 84, 1088: 816}  # twice the displayed widths, aspect kept
    assert renderer.render(load_issue(path)).html == first  # stable URLs
    make_photo(photo, 1200, 900, colour="#a33")
    changed = renderer.render(load_issue(path)).html
    assert changed != first  # a new photo gets a new address


def test_missing_photo_is_a_clear_error(renderer: Renderer, tmp_path: Path) -> None:
    path = tmp_path / "i.yaml"
    path.write_text(
        issue_yaml("  - statement: {name: A, photo: photos/none.jpg, text: Hi}\n"),
        encoding="utf-8",
    )
    from mailer.authoring.content import load_issue

    with pytest.raises(MediaError, match=r"photos/none\.jpg: photo not found"):
        renderer.render(load_issue(path))


def test_unknown_newsletter_is_rejected(renderer: Renderer) -> None:
    issue = load_issue_text(issue_yaml("  - paragraph: Hi\n", newsletter="other"), "n.yaml")
    with pytest.raises(ContentError, match="newsletter: unknown newsletter 'other'"):
        renderer.render(issue)


def test_plain_text_is_wrapped_at_78_columns(renderer: Renderer) -> None:
    words = " ".join(["environmental-cooperation"] * 40)
    rendered = renderer.render(load_issue_text(issue_yaml(f"  - paragraph: {words}\n"), "w.yaml"))
    lines = rendered.text.splitlines()
    assert max(len(line) for line in lines) <= 78
    assert "environmental-cooperation environmental-cooperation" in rendered.text
    assert not any(
        line.endswith("-") and len(line) > 1 and line != "-" * len(line)
        for line in lines
        if line.strip("-=")
    )


def test_wrap_keeps_long_words_and_hard_breaks() -> None:
    assert wrap("a\nb") == "a\nb"
    url = "https://example.org/" + "x" * 100
    assert wrap(f"see {url} now") == f"see\n{url}\nnow"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mr. ZHOU Jun", "ZJ"),
        ("Dr. LI Xia", "LX"),
        ("Zhang Yujun", "ZY"),
        ("周军", "周"),
        ("Ms. Thaw Thaw Han", "TH"),
        ("ສົມພອນ", "ສົ"),
        ("นฤมล โอริส", "น"),
        ("เพ็ญศรี", "พ็"),
        ("นายโจว จวิน", "จ"),
        ("ดร.หลี่ เสีย", "ห"),
        ("นางสาวนฤมล โอริส", "น"),
        ("Lê Ngọc Tuấn", "LT"),
        ("Ông Nguyễn", "ÔN"),
    ],
)
def test_monogram_initials(name: str, expected: str) -> None:
    assert initials(name) == expected


def test_preheader_is_hidden_first_text_with_spacers(renderer: Renderer) -> None:
    rendered = renderer.render(load_issue_text(issue_yaml("  - paragraph: Body\n"), "p.yaml"))
    hidden = re.search(r'<div style="display:none[^"]*">(.*?)</div>', rendered.html)
    assert hidden is not None
    assert hidden.group(1).startswith("A preheader&#847;&zwnj;&nbsp;")
    assert rendered.html.index("A preheader") < rendered.html.index("Body")
    without = load_issue_text(issue_yaml("  - paragraph: Body\n", preheader='""'), "p.yaml")
    assert "display:none" not in renderer.render(without).html


ALLOWED_TAGS = {"p", "em", "strong", "a", "br"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="<>&\"'*_[]()\\\n abcs:/.#-=!`{}%j", max_size=80))
def test_markdown_emits_only_its_own_tags_and_safe_links(source: str) -> None:
    md = Markdown()
    markup = md.html(source) + md.inline_html(source)
    for tag in re.findall(r"<\s*/?\s*([a-zA-Z0-9]+)", markup):
        assert tag in ALLOWED_TAGS, (source, markup)
    for href in re.findall(r'href="([^"]*)"', markup):
        assert re.match(r"(https?:|mailto:|[^:]*$)", html.unescape(href)), (source, href)
    links = Links()
    text = " ".join(md.text(source, links))
    assert "<script" not in markup.lower()
    # Every non-markup character the editor typed survives in the text part.
    for char in "<>&\"'{}%=!#-":
        if char in source and char not in "<>":  # < > may form an autolink
            assert char in text + "".join(links.urls), (source, text)


def test_media_store_keeps_transparency_and_refuses_odd_names(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", "https://news.example.org")
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (300, 100), (10, 90, 70, 0)).save(logo)
    url = store.publish(logo, 100)
    name = url.rsplit("/", 1)[1]
    assert name.endswith(".png")
    with Image.open(tmp_path / "media" / name) as stored:
        assert stored.mode == "RGBA" and stored.size == (200, 67)
    small = make_photo(tmp_path / "small.jpg", 50, 40)
    with Image.open(tmp_path / "media" / store.publish(small, 100).rsplit("/", 1)[1]) as kept:
        assert kept.size == (50, 40)  # never enlarged
    (tmp_path / "fake.jpg").write_text("not an image", encoding="utf-8")
    with pytest.raises(MediaError, match="not a readable image"):
        store.publish(tmp_path / "fake.jpg", 100)
    assert store.path_of(name) == tmp_path / "media" / name
    for bad in ("../logo.png", ".hidden", "a/b.png", "missing.png"):
        assert store.path_of(bad) is None


def test_a_media_folder_that_cannot_be_written_is_a_media_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file", encoding="utf-8")
    store = MediaStore(tmp_path / "taken" / "media", "https://news.example.org")
    photo = make_photo(tmp_path / "p.jpg", 50, 40)
    with pytest.raises(MediaError, match=r"taken/media: cannot store photos: Not a directory"):
        store.publish(photo, 56)


def test_wrap_counts_chinese_as_two_columns_and_breaks_between_characters() -> None:
    text = "澜沧江-湄公河环境合作中心成立以来，积极推动“绿色澜湄计划”的实施。" * 4
    lines = wrap(text).splitlines()
    assert len(lines) > 1
    assert "".join(lines) == text
    for line in lines:
        width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
        assert width <= 78
        assert line[0] not in "，。”"  # closing punctuation never starts a line


def test_labels_come_from_the_profile_not_the_server_locale(tmp_path: Path) -> None:
    # The profile's labels for a language are under its tag (the flat form is English:
    # mailer.authoring.labels); what it gives wins over the catalogs.
    profile = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8")
    profile += (
        "labels:\n  zh:\n    issue: '第{number}期 ({year})'\n    date: '{year}年{month}{day}日'\n"
        "    months: [1月, 2月, 3月, 4月, 5月, 6月, 7月, 8月, 9月, 10月, 11月, 12月]\n"
        "    contact: 联系我们\n"
    )
    (tmp_path / "newsletter.yaml").write_text(profile, encoding="utf-8")
    settings = make_settings(tmp_path, newsletter_profile=tmp_path / "newsletter.yaml")
    rendered = Renderer.from_settings(settings).render(
        load_issue_text(issue_yaml("  - paragraph: 你好\n", language="zh"), "zh.yaml")
    )
    for words in ("第7期 (2023)", "2023年3月1日", "联系我们"):
        assert words in rendered.text and words in rendered.html


def test_spaces_between_formatted_words_survive(renderer: Renderer) -> None:
    issue = load_issue_text(issue_yaml("  - paragraph: '**bold**  *italic* **again**'\n"), "s.yaml")
    markup = renderer.render(issue).html
    assert re.search(r"</strong>\s+<em>italic</em>\s+<strong>again", markup)


def test_a_broken_template_is_a_one_line_error(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    partial = templates / "partials" / "heading.mjml.j2"
    partial.write_text("<mj-text>{{ block.heading }</mj-text>\n", encoding="utf-8")
    renderer = Renderer.from_settings(make_settings(tmp_path, templates_dir=templates))
    issue = load_issue_text(issue_yaml("  - heading: Hi\n"), "t.yaml")
    with pytest.raises(TemplateProblem, match=r"heading\.mjml\.j2:1: unexpected '}'"):
        renderer.render(issue)
    partial.write_text("<mj-text>{{ block.nonsense }}</mj-text>\n", encoding="utf-8")
    with pytest.raises(TemplateProblem, match=r"template error: .*nonsense"):
        renderer.render(issue)


def test_profile_logo_is_published_and_shown(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    Image.new("RGBA", (400, 400), (255, 255, 255, 0)).save(config / "logo.png")
    profile = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8")
    profile += "logo: {src: logo.png, alt: LMEC logo, width: 60}\n"
    (config / "newsletter.yaml").write_text(profile, encoding="utf-8")
    settings = make_settings(tmp_path, config_dir=config)
    rendered = Renderer.from_settings(settings).render(
        load_issue_text(issue_yaml("  - paragraph: Hi\n"), "l.yaml")
    )
    srcs = [v for t, a, v in attributes(rendered.html) if t == "img" and a == "src"]
    assert any(v == "LMEC logo" for t, a, v in attributes(rendered.html) if a == "alt")
    assert len(srcs) == 1 and srcs[0].startswith("https://news.example.org/media/")
    with Image.open(settings.resolved_media_dir / srcs[0].rsplit("/", 1)[1]) as stored:
        assert stored.size == (120, 120)  # twice the displayed width


@pytest.mark.parametrize("field", ["subject", "title"])
def test_a_per_recipient_slot_in_the_subject_or_title_is_a_located_error(field: str) -> None:
    """The title is the subject by default; either goes into the Subject header, where a
    slot would stay literal while the HTML title filled it: refused, with file and line."""
    text = issue_yaml("  - paragraph: Hi\n", **{field: "News for %%EMAIL%%"})
    with pytest.raises(ContentError) as refused:
        load_issue_text(text, "slot.yaml")
    line = 1 + text.splitlines().index(f"{field}: News for %%EMAIL%%")
    assert [str(p) for p in refused.value.problems] == [
        f"slot.yaml:{line}: {field}: %%EMAIL%% cannot be used here: the subject is the same"
        " for every recipient (per-recipient placeholders are filled in the body only)"
    ]


def test_the_web_copy_replaces_what_only_the_email_shows(renderer: Renderer) -> None:
    """The recipient's lines and links (and "view in browser") are marked in the HTML so
    the web copy can put its own there; mail clients show nothing of the marks."""
    rendered = renderer.render(load_issue(REPO / "examples" / "issues" / "2022-15.yaml"))
    assert rendered.html.count("<span data-email-only=") == 2
    page = web_copy(rendered.html, {"footer": "<b>the web copy's footer</b>"})
    assert page is not None
    assert "<b>the web copy's footer</b>" in page and "email-only" not in page
    assert "This email was sent to" not in page and "View in your browser" not in page
    assert [slot for slot in Slot if slot.value in page] == []
    assert page.count("Contact Us") == rendered.html.count("Contact Us") == 1  # the rest stays
    assert web_copy("<p>frozen before the marks existed</p>", {"footer": "x"}) is None


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILER_DATA_DIR": str(cwd / "data")}
    env.pop("MAILER_PUBLIC_BASE_URL", None)
    code = "from mailer.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_mailer_render_files_show_sample_values_unless_slots_are_kept(tmp_path: Path) -> None:
    """Opened in a browser or a mail client, the files show a sample reader, a link to
    the file itself for "view in browser", never a bare %%NAME%%; --keep-slots keeps them."""
    seed = REPO / "examples" / "issues" / "2022-13.yaml"
    result = _cli(["render", str(seed), "--out", "filled"], tmp_path)
    assert result.returncode == 0, result.stderr
    html_path = tmp_path / "filled" / "2022-13.html"
    html_text = html_path.read_text(encoding="utf-8")
    text = (tmp_path / "filled" / "2022-13.txt").read_text(encoding="utf-8")
    eml = email.message_from_bytes(
        (tmp_path / "filled" / "2022-13.eml").read_bytes(), policy=email.policy.default
    )
    eml_html = eml.get_body(("html",))
    assert isinstance(eml_html, email.message.EmailMessage)
    for shown in (html_text, eml_html.get_content()):
        assert "%%" not in shown
        assert "This email was sent to Preview Reader (reader@example.org)." in shown
        assert f'href="{html_path.resolve().as_uri()}"' in shown  # view in browser
        assert "/unsubscribe/preview" in shown and "/preferences/preview" in shown
    assert "%%" not in text and "Preview Reader" in text

    kept = _cli(["render", str(seed), "--out", "kept", "--keep-slots"], tmp_path)
    assert kept.returncode == 0, kept.stderr
    for suffix in ("html", "txt"):
        raw = (tmp_path / "kept" / f"2022-13.{suffix}").read_text(encoding="utf-8")
        assert Slot.NAME.value in raw and Slot.VIEW_URL.value in raw


def test_the_demo_writes_its_rendered_issues_with_sample_values(root: Root) -> None:
    """`./run demo` renders both seeds into data/rendered/ for people to open (its step 4)."""
    report = prepare(
        root.sessions,
        root.renderer(),
        DemoPlace.of(root.settings),
        upgrade=root.upgrade_database,
        send=lambda: None,
    )
    assert sorted(path.name for path in report.rendered) == [
        "2022-13.html",
        "2022-13.th.html",
        "2022-13.th.txt",
        "2022-13.txt",
        "2022-13.zh.html",
        "2022-13.zh.txt",
        "2022-15.html",
        "2022-15.txt",
    ]
    for path in report.rendered:
        shown = path.read_text(encoding="utf-8")
        assert "%%" not in shown, path
        assert "Preview Reader" in shown, path
