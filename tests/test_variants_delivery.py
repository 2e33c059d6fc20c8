"""Language variants through delivery, on SQLite and PostgreSQL: each subscriber gets
the variant of their language from a real aiosmtpd server (subject, `lang`, List-Id,
body), the default one when theirs does not exist or none is known; the audience by
language, the report per language, a variant that cannot render refusing the campaign
with nothing enqueued, per-recipient waves with variants, and the web copy and
archive showing each variant.
"""

from __future__ import annotations

import functools
import operator
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from mailer.app import campaigns as app_campaigns
from mailer.app.audiences import audience_from
from mailer.authoring.content import load_issue
from mailer.authoring.loader import ContentError
from mailer.cli.main import app
from mailer.compose import Root, build
from mailer.delivery import campaigns, ledger, lifecycle
from mailer.delivery.campaigns import CampaignState, CampaignVariant
from mailer.delivery.dispatch import Worker
from mailer.delivery.ledger import LedgerRow
from mailer.schedule import plan
from mailer.schedule.runner import WaveRunner
from mailer.schedule.waves import CampaignWave
from subscribers import mailing_lists, repository
from subscribers.audience import Audience, count_audience, count_by_country_and_partner
from tests.conftest import REPO, make_settings
from tests.smtpd import SMTPTestServer
from tests.web_harness import client, make_app

FIXTURES = REPO / "tests" / "fixtures" / "variants"
SUBJECTS = {
    "en": "Issue 13: the Second Working-Group Meeting",
    "zh": "第13期：澜湄环境合作第二次工作组会议",
    "th": "ฉบับที่ 13 การประชุมคณะทำงานครั้งที่ 2",
}
# Words of each variant's body, in its own script.
BODY = {
    "en": "was held online on 29 September 2022",
    "zh": "以线上方式召开",
    "th": "จัดขึ้นทางออนไลน์",
}
LIST_ID = "newsletter.lmec.example.org"
# (email, name, country, language): Chinese, Thai, Lao (no variant), a Chinese regional
# tag, English.
PEOPLE = [
    ("zhang@cn.example.org", "张玉军", "CN", "zh"),
    ("li@cn.example.org", "李霞", "CN", "zh-CN"),
    ("narumon@th.example.org", "นฤมล โอริส", "TH", "th"),
    ("lonkham@la.example.org", "ລອນຄຳ ອັດສະນາວົງ", "LA", "lo"),
    ("tuan@vn.example.org", "Lê Ngọc Tuấn", "VN", "en"),
]
EXPECTED = {
    "zhang@cn.example.org": "zh",
    "li@cn.example.org": "zh",
    "narumon@th.example.org": "th",
    "lonkham@la.example.org": "en",  # no Lao variant: the default
    "tuan@vn.example.org": "en",
}


@pytest.fixture
def server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as running:
        yield running


@pytest.fixture
def issues(tmp_path: Path) -> Path:
    """A copy of the fixture variants, so a test may break one."""
    folder = tmp_path / "issues"
    shutil.copytree(FIXTURES, folder)
    return folder


def make_root(tmp_path: Path, database_url: str, port: int = 2525) -> Root:
    return build(
        make_settings(
            tmp_path,
            database_url=database_url,
            smtp_port=port,
            smtp_connections=1,
            retry_base_seconds=0.0,
        )
    )


def add_people(session: Session) -> None:
    mailing_lists.add_list(session, "newsletter", "LMEC Newsletter", public=True)
    for email, name, country, language in PEOPLE:
        repository.add_subscriber(
            session, email, name=name, country=country, language=language, lists=["newsletter"]
        )


def create(root: Root, path: Path, audience: Audience | None = None) -> int:
    with root.sessions.begin() as session:
        campaign = app_campaigns.create_from_issue(
            session,
            root.profile,
            path,
            load_issue(path),
            audience or Audience(lists=("newsletter",)),
        )
        return campaign.id


def send_all(worker: Worker, sessions: sessionmaker[Session], campaign_id: int) -> None:
    for _ in range(50):
        worker.run(threading.Event(), until_idle=True)
        with sessions() as session:
            if campaigns.get_campaign(session, campaign_id).state != CampaignState.SENDING:
                return
    raise AssertionError("campaign did not finish")


def html_lang(message: EmailMessage) -> str:
    html = message.get_body(("html",))
    assert html is not None
    match = re.search(r'<html[^>]*\blang="([^"]+)"', html.get_content())
    assert match, "no lang attribute on <html>"
    return match[1]


def body_text(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    return str(text.get_content())


def test_each_subscriber_gets_their_variant_or_the_default(
    tmp_path: Path, database_url: str, server: SMTPTestServer, issues: Path
) -> None:
    root = make_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        add_people(session)
    # Made from the Thai file: every variant goes, each to its readers.
    campaign_id = create(root, issues / "2022-13.th.yaml")
    lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    with root.sessions() as session:
        frozen = session.scalars(
            select(CampaignVariant).where(CampaignVariant.campaign_id == campaign_id)
        ).all()
        assert sorted(v.language for v in frozen) == ["en", "th", "zh"]
        campaign = campaigns.get_campaign(session, campaign_id)
        assert campaign.language == "en" and campaign.frozen_subject == SUBJECTS["en"]
    send_all(root.worker(), root.sessions, campaign_id)

    arrivals = server.arrivals()
    assert arrivals == {email: 1 for email in EXPECTED}  # never nothing, never two
    for received in server.messages:
        message = received.parse()
        email = message["To"].addresses[0].addr_spec
        language = EXPECTED[email]
        assert str(message["Subject"]) == SUBJECTS[language]
        assert html_lang(message) == language
        assert message["Content-Language"] == language
        list_id = LIST_ID if language == "en" else f"{language}.{LIST_ID}"
        assert message["List-Id"] == f"LMEC Newsletter <{list_id}>"
        text = body_text(message)
        # Wrapping may break a line between two Thai words (ICU), where the text has no
        # space: compare without any whitespace.
        bare = "".join(text.split())
        assert "".join(BODY[language].split()) in bare
        for other, words in BODY.items():
            if other != language:
                assert "".join(words.split()) not in bare
        # "view in browser" shows this reader's variant.
        assert f"/view/{campaign_id}?lang={language}" in text
    with root.sessions() as session:
        report = ledger.report(session, campaign_id)
    by_language = {t.key: (t.total, t.sent) for t in report.by_language}
    assert by_language == {"en": (1, 1), "lo": (1, 1), "th": (1, 1), "zh": (1, 1), "zh-CN": (1, 1)}
    root.close()


def test_a_row_without_a_language_gets_the_default(
    tmp_path: Path, database_url: str, server: SMTPTestServer, issues: Path
) -> None:
    root = make_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        add_people(session)
    campaign_id = create(root, issues / "2022-13.zh.yaml")
    lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    with root.sessions.begin() as session:  # e.g. rows queued before languages were kept
        session.execute(update(LedgerRow).values(language=None))
    send_all(root.worker(), root.sessions, campaign_id)
    subjects = {str(r.parse()["Subject"]) for r in server.messages}
    assert len(server.messages) == len(PEOPLE) and subjects == {SUBJECTS["en"]}
    root.close()


def test_the_default_language_comes_from_the_profile(
    tmp_path: Path, database_url: str, server: SMTPTestServer, issues: Path
) -> None:
    profile = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8")
    (tmp_path / "profile.yaml").write_text(profile + "\ndefault_language: zh\n", "utf-8")
    root = build(
        make_settings(
            tmp_path,
            database_url=database_url,
            smtp_port=server.port,
            newsletter_profile=tmp_path / "profile.yaml",
        )
    )
    with root.sessions.begin() as session:
        add_people(session)
    campaign_id = create(root, issues / "2022-13.yaml")
    lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    send_all(root.worker(), root.sessions, campaign_id)
    got = {
        r.parse()["To"].addresses[0].addr_spec: str(r.parse()["Subject"]) for r in server.messages
    }
    assert got["lonkham@la.example.org"] == SUBJECTS["zh"]  # Lao: the default, now Chinese
    assert got["tuan@vn.example.org"] == SUBJECTS["en"]  # English has its variant
    assert got["narumon@th.example.org"] == SUBJECTS["th"]
    root.close()


def test_the_audience_by_language(tmp_path: Path, database_url: str, issues: Path) -> None:
    root = make_root(tmp_path, database_url)
    with root.sessions.begin() as session:
        add_people(session)
        audience = audience_from(session, ["newsletter"], languages=["ZH, th"])
        assert audience.languages == ("zh", "th")
        assert count_audience(session, audience) == 3  # zh, zh-CN and th
        rows = count_by_country_and_partner(session, audience)
        assert {(r.country, r.count) for r in rows} == {("CN", 2), ("TH", 1)}
        assert Audience.from_json(audience.to_json()) == audience
        assert count_audience(session, Audience(languages=("zh-CN",))) == 1
    campaign_id = create(root, issues / "2022-13.yaml", audience)
    lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    with root.sessions() as session:
        emails = set(session.scalars(select(LedgerRow.email)))
        report = ledger.report(session, campaign_id)
    assert emails == {"zhang@cn.example.org", "li@cn.example.org", "narumon@th.example.org"}
    assert {t.key: t.total for t in report.by_language} == {"th": 1, "zh": 1, "zh-CN": 1}
    root.close()


def test_cli_language_option_and_report(
    tmp_path: Path,
    database_url: str,
    issues: Path,
    server: SMTPTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = make_root(tmp_path, database_url)
    with root.sessions.begin() as session:
        add_people(session)
    root.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILER_SECRET_KEY", "test-secret-key-0123456789abcdef")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "campaign",
            "create",
            str(issues / "2022-13.zh.yaml"),
            "--list",
            "newsletter",
            "--language",
            "th,lo",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "languages th, lo" in made.output and "2 recipient(s)" in made.output
    assert "variants: en, th, zh" in made.output
    campaign_id = int(re.findall(r"campaign (\d+) created", made.output)[0])
    sent = runner.invoke(app, ["send", str(campaign_id)])
    assert sent.exit_code == 0, sent.output
    report = runner.invoke(app, ["campaign", "report", str(campaign_id)])
    assert report.exit_code == 0, report.output
    per_language = report.output.split("per language", 1)[1]
    assert re.search(r"│\s*lo\s*│\s*1\s*│", per_language)
    assert re.search(r"│\s*th\s*│\s*1\s*│", per_language)


def test_a_variant_that_cannot_render_refuses_the_campaign(
    tmp_path: Path, database_url: str, issues: Path
) -> None:
    root = make_root(tmp_path, database_url)
    with root.sessions.begin() as session:
        add_people(session)
    campaign_id = create(root, issues / "2022-13.yaml")
    # After the campaign was made, the Thai variant gains a photo that is not there.
    thai = issues / "2022-13.th.yaml"
    thai.write_text(
        thai.read_text("utf-8").replace(
            "      country: TH\n", "      country: TH\n      photo: photos/missing.jpg\n"
        ),
        "utf-8",
    )
    with pytest.raises(ContentError) as caught:
        lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    assert "2022-13.th.yaml" in str(caught.value) and "missing.jpg" in str(caught.value)
    # A Chinese variant with a broken field: named with its file and line.
    thai.write_text(thai.read_text("utf-8").replace("      photo: photos/missing.jpg\n", ""))
    chinese = issues / "2022-13.zh.yaml"
    chinese.write_text(chinese.read_text("utf-8").replace("number: 13", "number: '13'"))
    with root.sessions.begin() as session, pytest.raises(ContentError) as caught:
        plan.schedule(
            session,
            campaign_id,
            datetime(2030, 1, 1, 9),
            local_time=True,
            renderer=root.renderer(),
        )
    assert "2022-13.zh.yaml:" in str(caught.value) and "number" in str(caught.value)
    with root.sessions() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        assert campaign.state == CampaignState.DRAFT and not campaign.frozen
        assert session.scalar(select(func.count()).select_from(LedgerRow)) == 0
        assert session.scalar(select(func.count()).select_from(CampaignVariant)) == 0
        assert session.scalar(select(func.count()).select_from(CampaignWave)) == 0
    root.close()


def test_two_variants_in_one_language_are_refused_when_creating(
    tmp_path: Path, database_url: str, issues: Path
) -> None:
    root = make_root(tmp_path, database_url)
    with root.sessions.begin() as session:
        add_people(session)
    second = (issues / "2022-13.zh.yaml").read_text("utf-8")
    (issues / "2022-13.zh-Hans.yaml").write_text(second, "utf-8")  # still `language: zh`
    with pytest.raises(ContentError) as caught:
        create(root, issues / "2022-13.yaml")
    message = str(caught.value)
    assert "2022-13.zh.yaml and 2022-13.zh-Hans.yaml are both in language 'zh'" in message
    with root.sessions() as session:
        assert campaigns.list_campaigns(session) == []
    root.close()


def test_local_time_waves_send_each_zone_its_variants(
    tmp_path: Path, database_url: str, server: SMTPTestServer, issues: Path
) -> None:
    root = make_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        add_people(session)
    campaign_id = create(root, issues / "2022-13.yaml")
    now = datetime(2029, 12, 31, 0, 0, tzinfo=UTC)
    with root.sessions.begin() as session:
        waves = plan.schedule(
            session,
            campaign_id,
            datetime(2030, 1, 1, 9),
            local_time=True,
            renderer=root.renderer(),
            now=now,
        )
        planned = [(w.id, w.timezone, w.starts_at) for w in waves]
        assert campaigns.get_campaign(session, campaign_id).frozen  # every variant, now
        assert session.scalar(select(func.count()).select_from(CampaignVariant)) == 3
    assert {zone for _, zone, _ in planned} == {
        "Asia/Shanghai",
        "Asia/Bangkok",
        "Asia/Vientiane",
        "Asia/Ho_Chi_Minh",
    }
    # The files change after scheduling: what goes out is what was frozen.
    for path in issues.glob("*.yaml"):
        path.write_text(path.read_text("utf-8").replace("13", "14"), "utf-8")
    worker = root.worker()
    seen: dict[str, str] = {}
    for wave_id, zone, starts_at in sorted(planned, key=lambda p: p[2]):
        clock = functools.partial(operator.add, starts_at, timedelta(seconds=1))
        fired = WaveRunner(root.sessions, default_grace_seconds=3600, clock=clock)
        assert fired.fire(wave_id) == "started"
        worker.run(threading.Event(), until_idle=True)
        for received in server.messages:
            message = received.parse()
            seen[message["To"].addresses[0].addr_spec] = str(message["Subject"])
        with root.sessions() as session:
            zones = set(session.scalars(select(LedgerRow.timezone)))
        assert zone in zones
    assert server.arrivals() == {email: 1 for email in EXPECTED}
    assert seen == {email: SUBJECTS[lang] for email, lang in EXPECTED.items()}
    root.close()


def test_web_copy_shows_the_readers_variant_and_the_archive_links_the_others(
    tmp_path: Path, database_url: str, issues: Path
) -> None:
    root = make_root(tmp_path, database_url)
    with root.sessions.begin() as session:
        add_people(session)
    campaign_id = create(root, issues / "2022-13.zh.yaml")
    lifecycle.start_sending(root.sessions, campaign_id, renderer=root.renderer())
    http = client(make_app(root))
    for lang, expected in (("zh", "zh"), ("th", "th"), ("en", "en"), ("lo", "en"), (None, "en")):
        page = http.get(f"/view/{campaign_id}" + (f"?lang={lang}" if lang else ""))
        assert page.status_code == 200
        assert re.search(rf'<html[^>]*\blang="{expected}"', page.text)
        assert BODY[expected] in " ".join(page.text.split())
    archive = http.get("/archive")
    assert SUBJECTS["en"] in archive.text  # the default variant
    for lang in ("th", "zh"):
        assert f'href="/view/{campaign_id}?lang={lang}"' in archive.text
    root.close()


def test_a_campaign_frozen_before_variants_sends_its_one_content_to_everyone(
    tmp_path: Path, database_url: str, server: SMTPTestServer, issues: Path
) -> None:
    """Campaigns frozen before migration 0015 (one rendered issue in the campaign's own
    columns, no variant rows) send as they did, whatever the readers' languages."""
    root = make_root(tmp_path, database_url, server.port)
    with root.sessions.begin() as session:
        add_people(session)
    campaign_id = create(root, issues / "2022-13.yaml")
    with root.sessions.begin() as session:
        campaigns.freeze(
            session, campaign_id, root.renderer().render(load_issue(issues / "2022-13.yaml"))
        )
        assert session.scalar(select(func.count()).select_from(CampaignVariant)) == 0
    lifecycle.start_sending(root.sessions, campaign_id)
    send_all(root.worker(), root.sessions, campaign_id)
    assert server.arrivals() == {email: 1 for email in EXPECTED}
    for received in server.messages:
        message = received.parse()
        assert str(message["Subject"]) == SUBJECTS["en"] and html_lang(message) == "en"
        assert message["List-Id"] == f"LMEC Newsletter <{LIST_ID}>"
    root.close()
