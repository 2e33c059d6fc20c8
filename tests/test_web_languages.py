"""Public pages in the reader's language: the switch (?lang=) first, then the language
of the subscriber the token names, then the browser's Accept-Language, then the
profile's default; staff pages stay English. Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailer.authoring.content import load_issue
from mailer.authoring.render import Renderer
from mailer.compose import Root, build
from mailer.delivery import campaigns, lifecycle, tokens
from mailer.languages import negotiate
from subscribers import mailing_lists, repository
from subscribers.audience import Audience
from tests.conftest import REPO, make_settings
from tests.web_harness import client, csrf_of, make_app

HTML_LANG = re.compile(r'<html lang="([^"]+)"')
SWITCH = re.compile(r'<a href="([^"]+)" lang="([^"]+)" hreflang="[^"]+"( aria-current="true")?>')


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("th-TH", "th"),
        ("en;q=0.5, km-KH", "km"),  # quality, not order, decides
        ("fr-FR, lo;q=0.3", "lo"),  # the first one we have
        ("vi_VN", "vi"),
        ("my;q=0, en;q=0.1", "en"),  # q=0: "not this one"
        ("fr, de", None),
        ("*", None),
        ("", None),
        (None, None),
    ],
)
def test_accept_language_is_negotiated(header: str | None, expected: str | None) -> None:
    assert negotiate(header) == expected


def _root(tmp_path: Path, database_url: str, default_language: str = "en") -> Root:
    profile = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8")
    path = tmp_path / "newsletter.yaml"
    path.write_text(profile + f"default_language: {default_language}\n", encoding="utf-8")
    return build(make_settings(tmp_path, database_url=database_url, newsletter_profile=path))


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[tuple[Root, TestClient]]:
    root = _root(tmp_path, database_url, default_language="vi")
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", "Every issue", public=True)
    yield root, client(make_app(root))
    root.close()


def _person(root: Root, email: str, language: str) -> str:
    """A subscriber of the public list in `language`; their token."""
    with root.sessions.begin() as session:
        subscriber = repository.add_subscriber(
            session, email, name="Reader", language=language, lists=["newsletter"]
        )
        subscriber_id = subscriber.id
    return tokens.make_token(root.settings.secret_key.get_secret_value(), subscriber_id)


def _lang(page: str) -> str:
    found = HTML_LANG.search(page)
    assert found, "no <html lang>"
    return found.group(1)


def test_the_subscribers_language_comes_before_the_browsers(
    site: tuple[Root, TestClient],
) -> None:
    root, http = site
    thai = _person(root, "somchai@example.org", "th")
    page = http.get(f"/unsubscribe/{thai}", headers={"Accept-Language": "zh-CN,zh"})
    assert _lang(page.text) == "th"
    assert "ยกเลิกการรับจดหมายข่าวนี้หรือไม่" in page.text and "退订" not in page.text
    english = _person(root, "ann@example.org", "en")
    page = http.get(f"/preferences/{english}", headers={"Accept-Language": "zh-CN"})
    assert _lang(page.text) == "en" and "Choose what a***@example.org receives" in page.text
    # A language we have no catalog for is no language: the browser's comes next.
    french = _person(root, "luc@example.org", "fr")
    page = http.get(f"/preferences/{french}", headers={"Accept-Language": "km-KH,fr;q=0.8"})
    assert _lang(page.text) == "km" and "ការជាវរបស់អ្នក" in page.text
    # Neither: the profile's default language (Vietnamese here).
    page = http.get(f"/preferences/{french}")
    assert _lang(page.text) == "vi" and "Đăng ký của bạn" in page.text


def test_pages_without_a_subscriber_follow_the_browser_then_the_default(
    site: tuple[Root, TestClient],
) -> None:
    _, http = site
    page = http.get("/archive", headers={"Accept-Language": "lo-LA,lo;q=0.9"})
    assert _lang(page.text) == "lo" and "ຍັງບໍ່ມີສະບັບໃດຖືກສົ່ງ." in page.text
    page = http.get("/archive")
    assert _lang(page.text) == "vi" and "Chưa có số nào được gửi." in page.text
    invalid = http.get("/unsubscribe/not-a-token", headers={"Accept-Language": "th"})
    assert invalid.status_code == 400
    assert _lang(invalid.text) == "th" and "<h1>ลิงก์นี้ใช้ไม่ได้</h1>" in invalid.text
    assert "<title>ลิงก์นี้ใช้ไม่ได้ ·" in invalid.text
    help_page = http.get("/unsubscribe", headers={"Accept-Language": "my"})
    assert _lang(help_page.text) == "my" and "စာရင်းမှထွက်ရန်" in help_page.text


def test_the_switch_wins_and_each_language_is_named_in_itself(
    site: tuple[Root, TestClient],
) -> None:
    root, http = site
    token = _person(root, "dara@example.org", "th")
    page = http.get(f"/preferences/{token}?saved=1&lang=km", headers={"Accept-Language": "zh"})
    assert _lang(page.text) == "km" and "បានរក្សាទុក។" in page.text
    links = SWITCH.findall(page.text)
    names = re.findall(r'hreflang="[^"]+"(?: aria-current="true")?>([^<]+)</a>', page.text)
    assert names == ["English", "中文", "ไทย", "ខ្មែរ", "ລາວ", "မြန်မာ", "Tiếng Việt"]
    assert [code for _, code, _ in links] == ["en", "zh", "th", "km", "lo", "my", "vi"]
    assert [code for _, code, current in links if current] == ["km"]
    for url, code, _ in links:  # the page's own query values are kept
        assert url == f"/preferences/{token}?saved=1&amp;lang={code}"
    # Not a language we have: ignored, the next rule decides.
    assert _lang(http.get(f"/preferences/{token}?lang=%3Cscript%3E").text) == "th"


def test_forms_keep_the_chosen_language_through_the_post(
    site: tuple[Root, TestClient],
) -> None:
    root, http = site
    token = _person(root, "mai@example.org", "th")
    page = http.get(f"/preferences/{token}?lang=zh")
    assert f'action="/preferences/{token}?lang=zh"' in page.text
    saved = http.post(
        f"/preferences/{token}?lang=zh",
        data={"csrf_token": csrf_of(page.text), "lists": ["newsletter"]},
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/preferences/{token}?saved=1&lang=zh"
    page = http.get(saved.headers["location"])
    assert "已保存。您将收到下方勾选的列表。" in page.text
    confirm = http.get(f"/unsubscribe/{token}?lang=vi")
    assert f'action="/unsubscribe/{token}?lang=vi"' in confirm.text
    assert f'href="/preferences/{token}?lang=vi"' in confirm.text
    done = http.post(f"/unsubscribe/{token}?lang=vi", data={"csrf_token": csrf_of(confirm.text)})
    assert done.headers["location"] == f"/unsubscribe/{token}?lang=vi"
    page = http.get(done.headers["location"])
    assert "Bạn đã hủy đăng ký" in page.text and "m***@example.org sẽ không nhận" in page.text
    # Without the switch, the subscriber's own language again: it was never stored.
    assert "คุณยกเลิกการรับแล้ว" in http.get(f"/unsubscribe/{token}").text


def _published(root: Root) -> int:
    """Issue 13 frozen and sending to the public list: in the archive, with a web copy."""
    path = REPO / "examples" / "issues" / "2022-13.yaml"
    issue = load_issue(path)
    with root.sessions.begin() as session:
        campaign = campaigns.create_campaign(
            session,
            name="Issue 13",
            issue_path=path,
            issue=issue,
            sender="LMEC Newsletter <newsletter@lmec.example.org>",
            audience=Audience(lists=("newsletter",)),
        )
        campaigns.freeze(session, campaign.id, Renderer.from_settings(root.settings).render(issue))
        lifecycle.start_sending(session, campaign.id)
        return campaign.id


def test_the_archive_and_the_web_copy_speak_the_readers_language(
    site: tuple[Root, TestClient],
) -> None:
    root, http = site
    _person(root, "reader@example.org", "en")
    campaign_id = _published(root)
    archive = http.get("/archive", headers={"Accept-Language": "zh-CN"})
    assert "<h1>往期通讯</h1>" in archive.text
    assert re.search(r"2022年第13期 · 发送于 \d{4}年\d{1,2}月\d{1,2}日", archive.text)
    copy = http.get(f"/view/{campaign_id}", headers={"Accept-Language": "th"})
    assert '<span lang="th">นี่คือฉบับเว็บของฉบับที่ 13 ปี 2022<br>' in copy.text
    assert '<html lang="en"' in copy.text  # the issue itself is the English variant
    assert "September 29 2022" in copy.text and "Contact Us" in copy.text
    english = http.get(f"/view/{campaign_id}?lang=en", headers={"Accept-Language": "th"})
    assert "This is the web copy of Issue 13, 2022." in english.text
    gone = http.get("/view/999", headers={"Accept-Language": "vi"})
    assert gone.status_code == 404 and "<h1>Số này không xem được</h1>" in gone.text


def test_staff_pages_stay_english(site: tuple[Root, TestClient]) -> None:
    _, http = site
    login = http.get("/login?lang=zh", headers={"Accept-Language": "zh-CN"})
    assert _lang(login.text) == "en" and "退订" not in login.text
