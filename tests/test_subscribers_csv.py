"""CSV import and export: good files, every bad input the issue lists, round trips."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from mailer.cli.main import app as cli
from mailer.compose import Root
from subscribers import mailing_lists
from subscribers import partners as partner_store
from subscribers import repository as repo
from subscribers.csvexport import export_csv
from subscribers.csvformat import neutralise, unneutralise
from subscribers.csvimport import import_csv
from subscribers.errors import ImportRejected, StoreInputError
from subscribers.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from subscribers.suppression import suppress
from tests.web_harness import add_user, login, make_app

NAMES = {
    "CN": "张伟",
    "KH": "សុខ ចាន់ថា",
    "LA": "ສົມພອນ ພົມມະຈັນ",
    "MM": "အောင်ကျော်မင်း",
    "TH": "สมชาย ใจดี",
    "VN": "Nguyễn Thị Thu Hà",
}
GOOD = (
    "Email,Full Name,Country,Organisation\r\n"
    + "".join(
        f"{code.lower()}@example.org,{name},{code},Partner {code}\r\n"
        for code, name in NAMES.items()
    )
).encode()


def _setup(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter")
        mailing_lists.add_list(session, "partners-only", "Partners only")
        for code in NAMES:
            partner_store.add_partner(session, f"Partner {code}", code)


def _snapshot(session: Session) -> tuple[int, int, list[tuple[str, str]]]:
    subscribers = session.scalar(select(func.count()).select_from(Subscriber)) or 0
    subscriptions = session.scalar(select(func.count()).select_from(Subscription)) or 0
    rows = session.execute(select(Subscriber.email, Subscriber.name).order_by(Subscriber.id))
    return subscribers, subscriptions, [tuple(r) for r in rows]  # type: ignore[misc]


def _import(sessions: sessionmaker[Session], data: bytes, **kwargs):
    with sessions.begin() as session:
        return import_csv(session, data, name="in.csv", list_slug="newsletter", **kwargs)


def test_import_all_scripts_and_is_idempotent(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    report = _import(sessions, GOOD)
    assert (report.rows, report.created, report.subscribed) == (6, 6, 6)
    with sessions() as session:
        for code, name in NAMES.items():
            subscriber = repo.get_subscriber(session, f"{code.lower()}@example.org")
            assert subscriber.name == name  # byte for byte
            assert subscriber.name.encode() == name.encode()
            assert subscriber.country == code
        assert repo.get_subscriber(session, "mm@example.org").timezone == "Asia/Yangon"
        before = _snapshot(session)
    again = _import(sessions, GOOD)
    assert (again.created, again.updated, again.unchanged, again.subscribed) == (0, 0, 6, 0)
    with sessions() as session:
        assert _snapshot(session) == before


def test_bom_header_aliases_and_duplicates_merged(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    with sessions.begin() as session:
        repo.add_subscriber(session, "Known@Example.org", name="Known", lists=["newsletter"])
    data = (
        "\ufeffE-Mail;Name\n".replace(";", ",")
        + "a@example.org,First\n"
        + "A@EXAMPLE.ORG,\n"
        + "known@example.org,Known Again\n"
    ).encode()
    report = _import(sessions, data)
    assert report.created == 1
    assert report.updated == 1
    assert report.duplicates == [(3, 2, "A@example.org")]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 2
        assert repo.get_subscriber(session, "a@example.org").name == "First"
        assert repo.get_subscriber(session, "known@example.org").name == "Known Again"


def test_import_never_resubscribes(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    _import(sessions, GOOD)
    with sessions.begin() as session:
        vn = repo.get_subscriber(session, "vn@example.org")
        repo.unsubscribe(session, vn.id, "newsletter")
        th = repo.get_subscriber(session, "th@example.org")
        repo.unsubscribe(session, th.id)  # from everything
    report = _import(sessions, GOOD)
    assert report.subscribed == 0
    assert report.kept_unsubscribed == 2
    with sessions.begin() as session:
        result = import_csv(session, GOOD, name="in.csv", list_slug="partners-only")
        assert result.subscribed == 5  # th unsubscribed from everything: not added
    with sessions() as session:
        vn = repo.get_subscriber(session, "vn@example.org")
        statuses = {s.list.slug: s.status for s in repo.subscriptions_of(session, vn.id)}
        assert statuses == {
            "newsletter": SubscriptionStatus.UNSUBSCRIBED,
            "partners-only": SubscriptionStatus.ACTIVE,
        }
        assert repo.get_subscriber(session, "th@example.org").status == (
            SubscriberStatus.UNSUBSCRIBED
        )


def _rejected(sessions: sessionmaker[Session], data: bytes, **kwargs) -> str:
    with sessions() as session:
        before = _snapshot(session)
    with pytest.raises((ImportRejected, StoreInputError)) as caught:
        _import(sessions, data, **kwargs)
    with sessions() as session:
        assert _snapshot(session) == before
    return str(caught.value)


BAD_INPUTS = [
    ("empty", b"", "in.csv:1: the file is empty"),
    ("header only", b"email,name\r\n", "in.csv:2: no data rows after the header"),
    ("no email column", b"name,country\nAn,VN\n", "no email column: the header has name, country"),
    ("invalid address", b"email\nok@example.org\nnot-an-address\n", "in.csv:3: email: invalid"),
    (
        "too many columns",
        b"email,name\na@example.org,A,extra\n",
        "in.csv:2: 3 fields but the header has 2",
    ),
    ("cp1252", "email,name\nj@example.org,José\n".encode("cp1252"), "--encoding cp1252"),
    (
        "line break in name",
        b'email,name\n"a@example.org","two\nlines"\n',
        "in.csv:2: name: name contains a line break",
    ),
    ("NUL", b"email,name\na@example.org,A\x00B\n", "in.csv:2: name: contains a NUL character"),
    ("unknown country", b"email,country\na@example.org,Atlantis\n", "unknown country 'Atlantis'"),
    (
        "unknown partner",
        b"email,partner\na@example.org,Nobody Inc\n",
        "unknown partner 'Nobody Inc'",
    ),
    ("utf-16", "email\na@example.org\n".encode("utf-16"), "--encoding utf-16"),
    (
        "xlsx",  # a spreadsheet saved as is, not as CSV
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xc1\x9b",
        "in.csv:1: not a CSV text file: it looks like a zip file (an .xlsx or .ods"
        " spreadsheet?); save it as CSV UTF-8 from the spreadsheet first",
    ),
    (
        "xls",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00",
        "in.csv:1: not a CSV text file: it looks like an old Excel (.xls) file",
    ),
    (
        "json-infinity",  # PostgreSQL's JSON has no Infinity or NaN
        b'email,attributes\na@example.org,"{""a"": 1e999}"\n',
        "in.csv:2: attributes: not valid JSON: 1e999 is not a finite number",
    ),
    (
        "json-nan",
        b'email,attributes\na@example.org,"{""a"": [NaN]}"\n',
        "in.csv:2: attributes: not valid JSON: NaN is not a finite number",
    ),
    (
        "json-lone-surrogate",  # no text encoding can store it
        b'email,attributes\na@example.org,"{""a"": ""\\ud800""}"\n',
        "in.csv:2: attributes: not valid JSON: '\\ud800' is half of a UTF-16 pair",
    ),
    (
        "json-nul",  # PostgreSQL's JSON cannot hold \u0000
        b'email,attributes\na@example.org,"{""a"": ""x\\u0000y""}"\n',
        "in.csv:2: attributes: not valid JSON for the store: \\u0000 (a NUL character)",
    ),
    (
        "json-deep",  # the parser recurses: 995 levels in 2 KB was a RecursionError
        b'email,attributes\na@example.org,"{""a"": ' + b"[" * 995 + b"]" * 995 + b'}"\n',
        "in.csv:2: attributes: nested more than 5 levels deep",
    ),
]


@pytest.mark.parametrize(("case", "data", "expected"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_reported_and_change_nothing(
    sessions: sessionmaker[Session], case: str, data: bytes, expected: str
) -> None:
    _setup(sessions)
    _import(sessions, GOOD)
    message = _rejected(sessions, data)
    assert expected in message, message


def test_duplicate_with_different_case_is_merged_not_rejected(
    sessions: sessionmaker[Session],
) -> None:
    _setup(sessions)
    report = _import(sessions, b"email,name\nZhang@Example.org,Zhang\nzhang@example.ORG,\n")
    assert report.created == 1 and len(report.duplicates) == 1
    with sessions() as session:
        assert repo.get_subscriber(session, "ZHANG@example.org").email == "Zhang@example.org"


def test_a_10_mb_field_is_refused(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    _import(sessions, GOOD)
    huge = b"email,name\nbig@example.org," + b"x" * (10 * 1024 * 1024) + b"\n"
    message = _rejected(sessions, huge)
    assert "in.csv:2: a field is longer than 131072 characters" in message
    quoted = b'email,name\nbig@example.org,"' + b"y" * (10 * 1024 * 1024) + b'"\n'
    assert "in.csv:2: a field is longer" in _rejected(sessions, quoted)


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf-16-le"])
def test_a_bom_is_dropped_whatever_the_encoding_flag(
    sessions: sessionmaker[Session], encoding: str
) -> None:
    _setup(sessions)
    data = "\ufeffEmail,Name\nbom@example.org,Bờm\n".encode(encoding)
    assert _import(sessions, data, encoding=encoding).created == 1
    with sessions() as session:
        assert repo.get_subscriber(session, "bom@example.org").name == "Bờm"


def test_cp1252_with_flag(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    _import(sessions, "email,name\nj@example.org,José Müller\n".encode("cp1252"), encoding="cp1252")
    with sessions() as session:
        assert repo.get_subscriber(session, "j@example.org").name == "José Müller"


def test_every_bad_row_reported_with_line_numbers(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    data = b"email,country\na@example.org,VN\nbad,VN\nc@example.org,Narnia\n\nd@example.org,LA\n"
    message = _rejected(sessions, data)
    assert message.splitlines()[0].startswith("in.csv:3: email: invalid email address 'bad'")
    assert message.splitlines()[1].startswith("in.csv:4: country: unknown country 'Narnia'")
    assert len(message.splitlines()) == 2


def test_skip_invalid_and_dry_run(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    data = b"email,country\na@example.org,VN\nbad,VN\nc@example.org,LA\n"
    report = _import(sessions, data, dry_run=True, skip_invalid=True)
    assert (report.created, report.subscribed, len(report.problems)) == (2, 2, 1)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
    report = _import(sessions, data, skip_invalid=True)
    assert report.created == 2
    assert str(report.problems[0]).startswith("in.csv:3: email:")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 2


def test_defaults_partner_creation_and_suppressed_rows(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    with sessions.begin() as session:
        suppress(session, "erased@example.org", "erased", keep_address=False)
    data = b"email,name\nnew@example.org,New\nerased@example.org,Back Again\n"
    report = _import(
        sessions, data, partner="Brand New Org", country="Cambodia", create_partners=True
    )
    assert report.partners_created == ["Brand New Org"]
    assert report.suppressed_skipped == 1
    with sessions() as session:
        new = repo.get_subscriber(session, "new@example.org")
        assert (new.country, new.timezone) == ("KH", "Asia/Phnom_Penh")
        assert partner_store.get_partner(session, "Brand New Org").id == new.partner_id
        assert repo.find_subscriber(session, "erased@example.org") is None


def test_formula_cells_are_neutralised_and_round_trip(sessions: sessionmaker[Session]) -> None:
    for value in ['=HYPERLINK("http://evil")', "+1", "-x", "@SUM(A1)", "\tx", "'=x", "''", "plain"]:
        assert unneutralise(neutralise(value)) == value
    assert neutralise('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    _setup(sessions)
    with sessions.begin() as session:
        repo.add_subscriber(
            session,
            "f@example.org",
            name='=HYPERLINK("http://evil.example.com","click")',
            lists=["newsletter"],
            attributes={"role": "@admin"},
        )
    out = io.StringIO()
    with sessions() as session:
        export_csv(session, out)
    text = out.getvalue()
    assert "\n'=HYPERLINK" not in text  # the cell starts with a quote inside a quoted field
    assert ',"\'=HYPERLINK(""http://evil.example.com"",""click"")",' in text


def test_export_writes_what_import_reads(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    _setup(sessions)
    _import(sessions, GOOD)
    with sessions.begin() as session:
        repo.add_subscriber(
            session,
            "-dash@example.org",
            name="=1+1",
            country="DE",
            lists=["partners-only"],
            attributes={"title": "Dr.", "note": "ไทย"},
        )
        gone = repo.add_subscriber(session, "gone@example.org", lists=["newsletter"])
        repo.unsubscribe(session, gone.id)
    path = tmp_path / "export.csv"
    with sessions() as session, path.open("w", encoding="utf-8", newline="") as out:
        assert export_csv(session, out) == 8
        original = _people(session)
    # a fresh store with the same lists and partners
    with sessions.begin() as session:
        for subscriber in session.scalars(select(Subscriber)):
            session.delete(subscriber)
    report = None
    with sessions.begin() as session:
        report = import_csv(session, path)
    assert report.created == 8
    with sessions() as session:
        assert _people(session) == original
    with sessions.begin() as session:
        assert import_csv(session, path).unchanged == 8
    for code, name in NAMES.items():
        assert name in path.read_text(encoding="utf-8"), code


def _people(session: Session) -> list[tuple[object, ...]]:
    result: list[tuple[object, ...]] = []
    for s in session.scalars(select(Subscriber).order_by(Subscriber.email_key)):
        lists = sorted(
            x.list.slug
            for x in repo.subscriptions_of(session, s.id)
            if x.status == SubscriptionStatus.ACTIVE
        )
        result.append(
            (
                s.email,
                s.name,
                s.country,
                s.partner_id,
                s.language,
                s.timezone,
                s.status,
                s.attributes,
                lists,
            )
        )
    return result


def test_semicolon_and_tab_separated_files(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    report = _import(sessions, "E-mail;Name;Country\nsc@example.org;Sơn;VN\n".encode())
    assert report.created == 1
    report = _import(sessions, b"email\tname\ntab@example.org\tTab\n")
    assert report.created == 1
    with sessions() as session:
        assert repo.get_subscriber(session, "sc@example.org").name == "Sơn"
        assert repo.get_subscriber(session, "tab@example.org").name == "Tab"


def test_import_without_any_list_warns(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    with sessions.begin() as session:
        report = import_csv(session, b"email\nnolist@example.org\n", name="in.csv")
    assert report.created == 1 and report.subscribed == 0
    assert report.warnings and "no list given" in report.warnings[0]
    assert _import(sessions, b"email\nother@example.org\n").warnings == []


def test_dry_run_counts_rows_moving_to_a_new_partner(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    _import(sessions, GOOD)
    moved = GOOD.replace(b"Partner VN", b"Brand New Partner")
    report = _import(sessions, moved, dry_run=True, create_partners=True)
    assert (report.updated, report.unchanged) == (1, 5)
    assert report.partners_created == ["Brand New Partner"]
    real = _import(sessions, moved, create_partners=True)
    assert (real.updated, real.unchanged) == (1, 5)


def test_list_slugs_are_matched_in_any_case(sessions: sessionmaker[Session]) -> None:
    _setup(sessions)
    with sessions.begin() as session:
        report = import_csv(
            session,
            b"email,lists\nslug@example.org,Partners-Only\n",
            name="in.csv",
            list_slug=" NewsLetter ",
        )
    assert report.subscribed == 2
    with sessions() as session:
        assert mailing_lists.get_list(session, "PARTNERS-ONLY").slug == "partners-only"


DEEP = b'email,attributes\ndeep@example.org,"' + b"[" * 995 + b"]" * 995 + b'"\n'


def test_deep_attributes_are_a_row_error_in_the_cli_and_the_web_import(
    root: Root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with root.sessions.begin() as session:
        mailing_lists.add_list(session, "newsletter", "Newsletter")
    deep = tmp_path / "deep.csv"
    deep.write_bytes(DEEP)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("MAILER_DATABASE_URL", root.settings.resolved_database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["subscribers", "import", str(deep), "--list", "newsletter"])
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith(f"{deep}:2: attributes: nested more than 5 levels deep")
    assert "Traceback" not in result.stderr

    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    http, token = login(app, "admin@example.org")
    page = http.post(
        "/subscribers/import",
        data={"csrf_token": token},
        files={"file": ("deep.csv", DEEP, "text/csv")},
    )
    assert page.status_code == 400  # a failed form answers 400, beside the field
    assert "nested more than 5 levels deep" in page.text
    with root.sessions() as session:
        assert session.scalars(select(Subscriber)).all() == []


def test_the_report_counts_in_english() -> None:
    """ "1 invalid rows skipped" read badly; one of anything is singular."""
    from subscribers.csvimport import ImportReport
    from subscribers.errors import Problem

    one = ImportReport(file="a.csv", rows=1, created=1, subscribed=1, suppressed_skipped=1)
    one.problems.append(Problem("a.csv", 2, "email", "bad"))
    one.duplicates.append((3, 2, "x@example.org"))
    text = one.summary()
    assert "1 row read; 1 subscriber created" in text
    assert "1 subscription added" in text and "1 duplicate row merged" in text
    assert "1 suppressed address skipped" in text and "1 invalid row skipped" in text
    many = ImportReport(file="a.csv", rows=2, suppressed_skipped=2)
    many.problems.extend([Problem("a.csv", 2, "", "x")] * 2)
    assert "2 rows read; 0 subscribers created" in many.summary()
    assert "2 suppressed addresses skipped" in many.summary()
    assert "2 invalid rows skipped" in many.summary()
