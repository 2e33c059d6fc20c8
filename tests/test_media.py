"""Photo uploads and the media library: what Pillow makes of an upload (upright, no
metadata, bombs and disguised files refused), the library's rows on both databases, the
JSON endpoints the block editor uses, roles, CSRF, where-used, deletion, and who may see
an upload at its public /media/ URL."""

from __future__ import annotations

import io
import json
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from PIL import Image, ImageCms
from sqlalchemy import JSON, DateTime, column, insert, inspect, table, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mailer.app import media as usage
from mailer.authoring import media_library
from mailer.authoring.content import load_issue_text
from mailer.authoring.loader import ContentError
from mailer.authoring.media import (
    UPLOAD_WIDTH,
    MediaStore,
    UploadError,
    UploadLimits,
    prepare_upload,
)
from mailer.cli.main import app as cli
from mailer.compose import Root, build
from mailer.delivery.campaigns import Campaign
from mailer.web import media_page
from tests.conftest import make_settings
from tests.web_harness import add_user, client, login, make_app

LIMITS = UploadLimits(max_bytes=10 * 1024 * 1024, max_pixels=50_000_000)
GPS_IFD = 0x8825
EXIF_IFD = 0x8769
SERIAL = "CAMERA-SERIAL-4711"


# --- fixtures made with Pillow --------------------------------------------------------------


def camera_jpeg(width: int = 80, height: int = 40) -> bytes:
    """A "phone photo": stored sideways with EXIF orientation 6 (turn 90 degrees clockwise),
    GPS position, camera make, model and serial, XMP, an ICC profile and a comment. The
    left half is red, the right half blue, so the turn can be seen in the pixels."""
    image = Image.new("RGB", (width, height), (220, 0, 0))
    image.paste((0, 0, 220), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif.get_ifd(EXIF_IFD)[0xA431] = SERIAL  # BodySerialNumber
    exif.get_ifd(GPS_IFD).update(
        {1: "N", 2: (21.0, 1.0, 30.0), 3: "E", 4: (105.0, 51.0, 12.0)}  # Hanoi
    )
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        b'22-rdf-syntax-ns#"><rdf:Description xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"'
        b' aux:SerialNumber="' + SERIAL.encode() + b'"/></rdf:RDF></x:xmpmeta>'
    )
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    image.save(
        out, "JPEG", exif=exif, xmp=xmp, icc_profile=icc, comment=b"shot by " + SERIAL.encode()
    )
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (30, 20), transparent: bool = False) -> bytes:
    image = Image.new("RGBA", size, (0, 120, 80, 128 if transparent else 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (ten billion by default)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def noisy_jpeg(size: int = 180) -> bytes:
    image = Image.effect_noise((size, size), 80).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


# --- what an upload becomes ---------------------------------------------------------------


def test_an_upload_is_turned_upright_and_keeps_nothing_but_its_pixels() -> None:
    prepared = prepare_upload(camera_jpeg(), "holiday.jpg", "image/jpeg", LIMITS)
    assert prepared.content_type == "image/jpeg" and prepared.name.endswith(".jpg")
    # Orientation 6: the 80 x 40 sideways photo is 40 x 80 upright, red on top.
    assert (prepared.width, prepared.height) == (40, 80)
    with Image.open(io.BytesIO(prepared.data)) as stored:
        assert stored.size == (40, 80)
        top, bottom = stored.getpixel((20, 10)), stored.getpixel((20, 70))
        assert isinstance(top, tuple) and isinstance(bottom, tuple)
        assert top[0] > 150 and top[2] < 80, top  # red
        assert bottom[2] > 150 and bottom[0] < 80, bottom  # blue
        exif = stored.getexif()
        assert len(exif) == 0 and not exif.get_ifd(GPS_IFD) and not exif.get_ifd(EXIF_IFD)
        for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"):
            assert key not in stored.info, key
    for secret in (SERIAL.encode(), b"PhoneMaker", b"Exif", b"ns.adobe.com", b"acsp"):
        assert secret not in prepared.data, secret


def test_a_large_photo_is_kept_at_most_1200_px_wide_and_transparency_stays_png() -> None:
    wide = io.BytesIO()
    Image.new("RGB", (3000, 1000), (10, 20, 30)).save(wide, "WEBP")
    prepared = prepare_upload(wide.getvalue(), "panorama.webp", "image/webp", LIMITS)
    assert (prepared.width, prepared.height) == (UPLOAD_WIDTH, 400)
    assert prepared.content_type == "image/jpeg"  # WebP goes out as JPEG: every client reads it
    logo = prepare_upload(png_bytes(transparent=True), "logo.png", "image/png", LIMITS)
    assert logo.content_type == "image/png" and logo.name.endswith(".png")
    opaque = prepare_upload(png_bytes(), "flat.png", "image/png", LIMITS)
    assert opaque.content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "code", "words"),
    [
        (png_bomb(), "bomb.png", "image/png", "too-large", "too large to read safely"),
        (png_bomb(9000, 9000), "big.png", "image/png", "too-large", "9000 x 9000 pixels"),
        (camera_jpeg(), "portrait.png", "image/png", "type", "the file is a JPEG image"),
        (b"hello, not a photo\n", "notes.jpg", "image/jpeg", "type", "the content is not an image"),
        (png_bytes(), "photo.gif", "image/gif", "type", "not a .gif file"),
        (png_bytes(), "photo", None, "type", "without .jpg, .png or .webp"),
        (png_bytes(), "photo.png", "image/jpeg", "type", "sent as image/jpeg"),
        (b"", "empty.jpg", "image/jpeg", "unreadable", "the file is empty"),
        (camera_jpeg()[:300], "cut.jpg", "image/jpeg", "unreadable", "damaged or incomplete"),
        (noisy_jpeg(), "huge.jpg", "image/jpeg", "too-large", "(MAILER_MEDIA_MAX_BYTES)"),
    ],
)
def test_refused_uploads_name_the_file_and_the_problem(
    data: bytes, filename: str, content_type: str | None, code: str, words: str
) -> None:
    limits = UploadLimits(max_bytes=20_000, max_pixels=50_000_000)
    with pytest.raises(UploadError) as refused:
        prepare_upload(data, filename, content_type, limits)
    assert refused.value.code == code
    assert str(refused.value).startswith(f"{filename}: ")
    assert words in str(refused.value)


def test_octet_stream_is_no_claim_and_jpeg_names_vary() -> None:
    data = camera_jpeg()
    for name, sent in (
        ("a.JPG", "application/octet-stream"),
        ("b.jpeg", "image/pjpeg"),
        ("c.jpg", None),
    ):
        assert prepare_upload(data, name, sent, LIMITS).width == 40


# --- the library on both databases ----------------------------------------------------------


def _store(root: Root) -> MediaStore:
    return MediaStore(root.settings.resolved_media_dir, root.settings.public_base_url)


def test_the_library_keeps_one_row_per_photo(root: Root) -> None:
    store = _store(root)
    with root.sessions() as session:
        first = media_library.add_upload(
            session, store, camera_jpeg(), "a.jpg", "image/jpeg", LIMITS, user_id=None
        )
        session.commit()
        again = media_library.add_upload(
            session, store, camera_jpeg(), "copy.jpg", "image/jpeg", LIMITS, user_id=None
        )
        session.commit()
        assert first.created and not again.created
        assert again.item.id == first.item.id and again.item.original_filename == "a.jpg"
        item = first.item
        assert (item.width, item.height, item.content_type) == (40, 80, "image/jpeg")
        assert item.bytes == (store.directory / item.name).stat().st_size
        assert media_library.find_by_filename(session, item.name) is not None
        assert media_library.find_by_filename(session, item.hash + ".png") is None
        with pytest.raises(UploadError):
            media_library.add_upload(
                session, store, b"text", "x.jpg", "image/jpeg", LIMITS, user_id=None
            )
        assert [i.hash for i in media_library.list_media(session)] == [item.hash]
        media_library.delete_media(session, store, item)
        assert media_library.list_media(session) == []
        assert not (store.directory / item.name).exists()


def _campaign(session: Session, html: str) -> int:
    campaign = Campaign(
        name="Issue 13",
        issue_path="elsewhere/2022-13.yaml",
        issue_slug="2022-13",
        sender="LMEC <news@example.org>",
        audience={"lists": ["newsletter"]},
        frozen_html=html,
    )
    session.add(campaign)
    session.commit()
    return campaign.id


def test_where_used_finds_content_files_frozen_campaigns_and_other_finders(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    issues = root.settings.resolved_issues_dir
    issues.mkdir(parents=True)
    (issues / "2022-13.yaml").write_text("photo: https://x/media/aaaaaaaaaaaaaaaaaaaa.jpg\n")
    with root.sessions() as session:
        campaign_id = _campaign(session, '<img src="https://x/media/bbbbbbbbbbbbbbbbbbbb.jpg">')

        def drafts(_s: Session, _d: Path, hashes: list[str]) -> list[tuple[str, usage.Usage]]:
            return [(h, usage.Usage("draft", "Draft 1", "/drafts/1", False)) for h in hashes]

        monkeypatch.setattr(usage, "FINDERS", [*usage.FINDERS, drafts])
        found = usage.where_used(session, issues, ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"])
        assert [u.label for u in found["aaaaaaaaaaaaaaaaaaaa"]] == ["2022-13.yaml", "Draft 1"]
        assert [u.url for u in found["bbbbbbbbbbbbbbbbbbbb"]] == [
            f"/campaigns/{campaign_id}",
            "/drafts/1",
        ]
        assert usage.is_public(session, issues, "aaaaaaaaaaaaaaaaaaaa")
        monkeypatch.setattr(usage, "FINDERS", [drafts])
        assert not usage.is_public(session, issues, "aaaaaaaaaaaaaaaaaaaa")  # a draft is not


def test_an_uploaded_photo_placed_by_its_url_is_resized_for_its_slot(root: Root) -> None:
    store = _store(root)
    big = io.BytesIO()
    Image.new("RGB", (1000, 1000), (200, 100, 0)).save(big, "JPEG")
    with root.sessions() as session:
        item = media_library.add_upload(
            session, store, big.getvalue(), "face.jpg", "image/jpeg", LIMITS, user_id=None
        ).item
        session.commit()
    url = store.url_of(item.name)
    issue = load_issue_text(
        "newsletter: lmec\nnumber: 1\nyear: 2022\ndate: 2022-01-05\nlanguage: en\n"
        "title: T\nblocks:\n  - statement:\n      name: A. Person\n"
        f"      photo: {url}\n      photo_alt: Portrait of A. Person\n      text: Words.\n",
        "draft.yaml",
    )
    html = root.renderer().render(issue).html
    assert url not in html  # a copy at the portrait's size, not the 1000 px upload
    portrait = [n for n in store.directory.iterdir() if n.name != item.name]
    assert len(portrait) == 1 and portrait[0].name in html
    with Image.open(portrait[0]) as small:
        assert small.width < 200


# --- the endpoints --------------------------------------------------------------------------


def _app(root: Root) -> FastAPI:
    app = make_app(root)
    add_user(app, "admin@example.org", "admin")
    add_user(app, "editor@example.org", "editor")
    return app


def _upload(http: TestClient, token: str | None, data: bytes, name: str, kind: str) -> Response:
    fields = {"csrf_token": token} if token else {}
    return http.post("/media", data=fields, files={"file": (name, data, kind)})


def test_editors_upload_and_the_public_sees_a_photo_only_once_it_is_used(root: Root) -> None:
    app = _app(root)
    editor, token = login(app, "editor@example.org")
    response = _upload(editor, token, camera_jpeg(), "holiday.jpg", "image/jpeg")
    answer = response.json()
    assert response.status_code == 201, answer
    assert answer["width"] == 40 and answer["height"] == 80
    url: str = answer["url"]
    assert url.startswith("https://news.example.org/media/") and answer["hash"] in url
    path = url.removeprefix("https://news.example.org")

    again = _upload(editor, token, camera_jpeg(), "again.jpg", "image/jpeg")
    assert again.status_code == 200 and again.json()["hash"] == answer["hash"]

    seen = editor.get(path)
    assert seen.status_code == 200 and seen.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(seen.content)) as stored:
        assert stored.size == (40, 80) and len(stored.getexif()) == 0
    public = client(app)
    assert public.get(path).status_code == 404  # unused: the public never sees it

    listed = editor.get("/media.json").json()
    assert [(i["hash"], i["filename"], i["used_in"]) for i in listed] == [
        (answer["hash"], "holiday.jpg", [])
    ]
    assert listed[0]["uploaded_by"] == "editor@example.org"

    issues = root.settings.resolved_issues_dir
    issues.mkdir(parents=True, exist_ok=True)
    (issues / "2022-13.yaml").write_text(f"photo: {url}\n", encoding="utf-8")
    assert public.get(path).status_code == 200  # placed in a content file: public
    used = editor.get("/media.json").json()[0]["used_in"]
    assert used == [
        {"kind": "content file", "label": "2022-13.yaml", "url": "/issues/2022-13", "public": True}
    ]


def test_a_frozen_campaign_makes_an_upload_public(root: Root) -> None:
    app = _app(root)
    admin, token = login(app, "admin@example.org")
    answer = _upload(admin, token, png_bytes(transparent=True), "logo.png", "image/png").json()
    path = "/media/" + answer["name"]
    assert path.endswith(".png")
    public = client(app)
    assert public.get(path).status_code == 404
    with root.sessions() as session:
        _campaign(session, f'<img src="{answer["url"]}" alt="Logo">')
    assert public.get(path).status_code == 200


def test_uploads_need_a_session_and_the_csrf_token_and_errors_are_json(root: Root) -> None:
    app = _app(root)
    public = client(app)
    refused = public.post("/media", files={"file": ("a.jpg", camera_jpeg(), "image/jpeg")})
    assert refused.status_code == 401 and "sign in" in refused.json()["error"]
    assert public.get("/media.json").status_code in (401, 303)
    assert public.get("/media/library").status_code == 303  # to the sign-in page
    editor, token = login(app, "editor@example.org")
    no_token = _upload(editor, None, camera_jpeg(), "a.jpg", "image/jpeg")
    assert no_token.status_code == 403 and "Refused" in no_token.json()["error"]
    wrong = _upload(editor, "forged", camera_jpeg(), "a.jpg", "image/jpeg")
    assert wrong.status_code == 403
    missing = editor.post("/media", data={"csrf_token": token})
    assert missing.status_code == 400 and "file" in missing.json()["error"]
    for data, name, kind, status, words in (
        (b"not an image", "notes.jpg", "image/jpeg", 415, "notes.jpg: the content is not an image"),
        (camera_jpeg(), "photo.png", "image/png", 415, "photo.png: the name says PNG"),
        (png_bomb(), "bomb.png", "image/png", 413, "bomb.png: too large to read safely"),
    ):
        response = _upload(editor, token, data, name, kind)
        assert response.status_code == status, response.text
        assert words in response.json()["error"]
    assert editor.get("/media.json").json() == []  # nothing refused was kept


def test_the_size_limit_is_the_setting(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, media_max_bytes=20_000)
    root = build(settings)
    try:
        app = _app(root)
        editor, token = login(app, "editor@example.org")
        over = _upload(editor, token, noisy_jpeg(), "huge.jpg", "image/jpeg")
        assert over.status_code == 413
        assert (
            "huge.jpg: " in over.json()["error"]
            and "MAILER_MEDIA_MAX_BYTES" in over.json()["error"]
        )
        # Far over it, the server refuses the body as it arrives (plain text, unread).
        far_over = _upload(editor, token, noisy_jpeg(800), "bigger.jpg", "image/jpeg")
        assert far_over.status_code == 413
        assert _upload(editor, token, camera_jpeg(), "ok.jpg", "image/jpeg").status_code == 201
    finally:
        root.close()


def test_deleting_asks_first_and_refuses_a_photo_in_use(root: Root) -> None:
    app = _app(root)
    editor, token = login(app, "editor@example.org")
    unused = _upload(editor, token, camera_jpeg(), "unused.jpg", "image/jpeg").json()
    used = _upload(editor, token, png_bytes(), "used.png", "image/png").json()
    issues = root.settings.resolved_issues_dir
    issues.mkdir(parents=True, exist_ok=True)
    (issues / "2022-15.yaml").write_text(f"photo: {used['url']}\n", encoding="utf-8")

    page = editor.get("/media/library")
    assert page.status_code == 200
    assert "unused.jpg" in page.text and "used.png" in page.text and "2022-15.yaml" in page.text
    assert f"/media/library/{unused['hash']}/delete" in page.text
    assert f"/media/library/{used['hash']}/delete" not in page.text

    asked = editor.post(f"/media/library/{unused['hash']}/delete", data={"csrf_token": token})
    assert asked.status_code == 200 and "Delete the photo unused.jpg?" in asked.text
    assert (root.settings.resolved_media_dir / unused["name"]).exists()
    no_token = editor.post(f"/media/library/{unused['hash']}/delete", data={"confirm": "yes"})
    assert no_token.status_code == 403
    done = editor.post(
        f"/media/library/{unused['hash']}/delete", data={"csrf_token": token, "confirm": "yes"}
    )
    assert done.status_code == 303
    assert not (root.settings.resolved_media_dir / unused["name"]).exists()
    assert "Deleted the photo unused.jpg." in editor.get("/media/library").text

    refused = editor.post(
        f"/media/library/{used['hash']}/delete", data={"csrf_token": token, "confirm": "yes"}
    )
    assert refused.status_code == 303
    assert "used.png is used (content file 2022-15.yaml)" in editor.get("/media/library").text
    assert (root.settings.resolved_media_dir / used["name"]).exists()
    assert [i["hash"] for i in editor.get("/media.json").json()] == [used["hash"]]
    assert (
        editor.post(
            "/media/library/0123456789abcdef0123/delete", data={"csrf_token": token}
        ).status_code
        == 404
    )


def test_the_library_page_upload_form(root: Root) -> None:
    app = _app(root)
    editor, token = login(app, "editor@example.org")
    posted = editor.post(
        "/media/library/upload",
        data={"csrf_token": token},
        files={"file": ("notes.jpg", b"text", "image/jpeg")},
    )
    assert posted.status_code == 303
    assert (
        "Not uploaded: notes.jpg: the content is not an image" in editor.get("/media/library").text
    )
    posted = editor.post(
        "/media/library/upload",
        data={"csrf_token": token},
        files={"file": ("C:\\Users\\me\\cat.jpg", camera_jpeg(), "image/jpeg")},
    )
    assert posted.status_code == 303
    page = editor.get("/media/library").text
    assert "Uploaded cat.jpg (40 x 80 px)." in page and "Not used yet" in page


def test_renderer_copies_and_other_files_stay_public_and_inside_the_folder(root: Root) -> None:
    app = _app(root)
    media = root.settings.resolved_media_dir
    (media / "0123456789abcdef0123.jpg").write_bytes(b"\xff\xd8\xff\xe0 a renderer's copy")
    (media / "notes.txt").write_text("not an image", encoding="utf-8")
    public = client(app)
    assert public.get("/media/0123456789abcdef0123.jpg").status_code == 200
    assert public.get("/media/notes.txt").status_code == 404
    assert public.get("/media/.hidden.jpg").status_code == 404
    assert public.head("/media/0123456789abcdef0123.jpg").status_code == 200


def test_every_media_staff_route_is_registered_with_its_guards() -> None:
    paths = {getattr(r, "path", "") for r in media_page.staff.routes}
    assert paths == {"/media.json", "/media/library", "/media/library/{hash_}/delete"}


def _draft_tables(session: Session) -> tuple[Any, Any]:
    """The drafts' tables as migration 0013 makes them; made here when this branch runs
    without that migration (the columns this test writes are the same)."""
    json_type = "json" if session.get_bind().dialect.name == "postgresql" else "text"
    stamp = "timestamp with time zone" if json_type == "json" else "datetime"
    if not inspect(session.connection()).has_table("drafts"):
        session.execute(
            text(
                f"CREATE TABLE drafts (id integer PRIMARY KEY, created_by integer,"
                f" created_at {stamp} NOT NULL, updated_at {stamp} NOT NULL,"
                f" version integer NOT NULL, document {json_type} NOT NULL,"
                f" head_revision_id integer)"
            )
        )
        session.execute(
            text(
                f"CREATE TABLE draft_revisions (id integer PRIMARY KEY, draft_id integer NOT NULL,"
                f" number integer NOT NULL, author_id integer, created_at {stamp} NOT NULL,"
                f" updated_at {stamp} NOT NULL, document {json_type} NOT NULL,"
                f" kind varchar(16) NOT NULL, restored_from integer)"
            )
        )

    def stamps() -> tuple[Any, Any]:
        return (
            column("created_at", DateTime(timezone=True)),
            column("updated_at", DateTime(timezone=True)),
        )

    drafts = table("drafts", column("id"), column("version"), column("document", JSON), *stamps())
    revisions = table(
        "draft_revisions",
        column("id"),
        column("draft_id"),
        column("number"),
        column("kind"),
        column("document", JSON),
        *stamps(),
    )
    return drafts, revisions


def test_drafts_and_their_revisions_use_photos_but_do_not_make_them_public(root: Root) -> None:
    now = datetime.now(UTC)
    old = {
        "title": "Issue 13",
        "blocks": [{"statement": {"photo": "https://x/media/cccccccccccccccccccc.jpg"}}],
    }
    new = {
        "title": "Issue 13",
        "blocks": [{"image": {"src": "https://x/media/dddddddddddddddddddd.jpg"}}],
    }
    with root.sessions() as session:
        drafts, revisions = _draft_tables(session)
        session.execute(
            insert(drafts).values(id=7, version=2, document=new, created_at=now, updated_at=now)
        )
        for number, document in ((1, old), (2, new)):
            session.execute(
                insert(revisions).values(
                    id=70 + number,
                    draft_id=7,
                    number=number,
                    kind="save",
                    document=document,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
        issues = root.settings.resolved_issues_dir
        found = usage.where_used(
            session,
            issues,
            ["cccccccccccccccccccc", "dddddddddddddddddddd", "eeeeeeeeeeeeeeeeeeee"],
        )
        assert found["dddddddddddddddddddd"] == [
            usage.Usage("draft", "Draft 7: Issue 13", "/drafts/7/edit", False)
        ]
        assert found["cccccccccccccccccccc"] == [
            usage.Usage("draft", "Draft 7 (an earlier revision)", "/drafts/7/history", False)
        ]
        assert found["eeeeeeeeeeeeeeeeeeee"] == []
        assert not usage.is_public(session, issues, "dddddddddddddddddddd")


ISSUE_HEAD = (
    "newsletter: lmec\nnumber: 1\nyear: 2022\ndate: 2022-01-05\nlanguage: en\ntitle: T\nblocks:\n"
)


def test_alt_text_is_required_where_a_photo_is_placed(root: Root) -> None:
    """Not at upload: in the issue. An image block without alt is refused with its line;
    a statement's photo is described by photo_alt, or else by the person's name."""
    url = "https://news.example.org/media/0123456789abcdef0123.jpg"
    with pytest.raises(ContentError) as refused:
        load_issue_text(ISSUE_HEAD + f"  - image: {{src: '{url}'}}\n", "a.yaml")
    assert [(p.line, p.field) for p in refused.value.problems] == [(8, "blocks[0].image.alt")]
    with pytest.raises(ContentError) as empty:
        load_issue_text(ISSUE_HEAD + f"  - image: {{src: '{url}', alt: ''}}\n", "b.yaml")
    assert empty.value.problems[0].field == "blocks[0].image.alt"
    issue = load_issue_text(
        ISSUE_HEAD + "  - statement:\n      name: Ms. Dara Chan\n"
        f"      photo: {url}\n      text: Words.\n",
        "c.yaml",
    )
    html = root.renderer().render(issue).html
    assert f'src="{url}" alt="Ms. Dara Chan"' in html


def test_the_media_commands(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILER_PUBLIC_BASE_URL", "https://news.example.org")
    runner = CliRunner()
    (tmp_path / "zhou.jpg").write_bytes(camera_jpeg())
    (tmp_path / "notes.png").write_text("not a photo", encoding="utf-8")

    added = runner.invoke(cli, ["media", "add", "zhou.jpg"])
    assert added.exit_code == 0, added.output
    assert "added zhou.jpg (40 x 80 px) https://news.example.org/media/" in added.stdout
    again = runner.invoke(cli, ["media", "add", "zhou.jpg"])
    assert "already in the library: zhou.jpg" in again.stdout
    refused = runner.invoke(cli, ["media", "add", "notes.png"])
    assert refused.exit_code == 1
    assert "error: notes.png: the content is not an image" in refused.stderr
    listed = json.loads(runner.invoke(cli, ["media", "list", "--json"]).stdout)
    assert [(row["filename"], row["width"], row["used_in"]) for row in listed] == [
        ("zhou.jpg", 40, [])
    ]
    assert "zhou.jpg" in runner.invoke(cli, ["media", "list"]).stdout
    assert (
        "mailer media add photos/zhou.jpg" in runner.invoke(cli, ["media", "add", "--help"]).stdout
    )


@pytest.mark.parametrize(
    ("src", "accepted"),
    [
        ("http://127.0.0.1:8000/media/0123456789abcdef0123.jpg", True),
        ("http://localhost:8000/media/0123456789abcdef0123.jpg", True),
        ("http://[::1]:8000/media/0123456789abcdef0123.jpg", True),
        ("https://news.example.org/media/0123456789abcdef0123.jpg", True),
        ("http://news.example.org/media/0123456789abcdef0123.jpg", False),
        ("http://127.0.0.1.example.org/x.jpg", False),
        ("http://localhost@example.org/x.jpg", False),
    ],
)
def test_the_local_web_apps_http_photo_urls_can_be_placed(src: str, accepted: bool) -> None:
    """The demo and development serve on http://127.0.0.1: their uploads' URLs are the
    only http images an issue may use (nobody else could load them anyway)."""
    text = ISSUE_HEAD + f"  - image: {{src: '{src}', alt: A river}}\n"
    if accepted:
        assert load_issue_text(text, "a.yaml").blocks[0].image.src == src  # type: ignore[union-attr]
    else:
        with pytest.raises(ContentError) as refused:
            load_issue_text(text, "a.yaml")
        assert "an https URL" in str(refused.value.problems[0])
