"""The media library page in Chromium, as an editor uses it: upload photos with the form,
see them listed with their thumbnails, see where one is used, delete an unused one (the
page asks first); axe-core finds no serious or critical WCAG 2.1 AA violation; at 600 px
and 375 px with no sideways scrolling. Screenshots: test-artifacts/media-*.png."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from mailer.compose import Root, build
from tests.conftest import make_settings
from tests.test_accessibility import AXE, axe_violations
from tests.web_harness import (
    CHROMIUM_ARGS,
    PASSWORD,
    ConsoleLog,
    add_user,
    free_socket,
    make_app,
    no_horizontal_overflow,
    serve,
)

pytestmark = pytest.mark.browser
WIDE: ViewportSize = {"width": 600, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run ./run setup (it installs axe-core with npm)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def photo(path: Path, colours: tuple[str, str], size: tuple[int, int]) -> Path:
    """A landscape-ish test photo: two bands and a circle, so a thumbnail is recognisable."""
    image = Image.new("RGB", size, colours[0])
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, size[1] * 2 // 3, size[0], size[1]), fill=colours[1])
    draw.ellipse((size[0] // 3, size[1] // 6, size[0] // 2, size[1] // 2), fill="#f4d35e")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    path.write_bytes(out.getvalue())
    return path


def login(page: Page, base: str) -> None:
    page.goto(f"{base}/media/library")
    assert "/login" in page.url
    page.fill("input[name=email]", "editor@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/media/library")


def shot(page: Page, artifacts: Path, name: str, db: str) -> None:
    page.screenshot(path=str(artifacts / f"media-{name}-{db}.png"), full_page=True)


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[tuple[Root, str]]:
    sock = free_socket()
    host, port = sock.getsockname()
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        public_base_url=f"http://{host}:{port}",
        issues_dir=tmp_path / "issues",
    )
    root = build(settings)
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    with serve(app, sock) as base:
        yield root, base
    root.close()


def test_upload_list_where_used_and_delete_asks_first(
    browser: Browser, site: tuple[Root, str], tmp_path: Path, artifacts: Path
) -> None:
    root, base = site
    db = root.engine.dialect.name
    console = ConsoleLog()
    page = browser.new_context(viewport=WIDE).new_page()
    console.attach(page)
    login(page, base)
    assert "No photos yet" in page.inner_text("main")

    # Over the limit: refused in the page, with the size and the limit, and not sent.
    big = tmp_path / "big.jpg"
    big.write_bytes(bytes(12 * 1024 * 1024))
    page.set_input_files("input[type=file]", str(big))
    page.click("button:has-text('Upload')")
    message = page.locator("input[type=file]").evaluate("i => i.validationMessage")
    assert "big.jpg: 12.0 MB is more than the limit of 10.0 MB" in message
    assert page.url == f"{base}/media/library"

    river = photo(tmp_path / "river.jpg", ("#5fa8d3", "#1b4965"), (1600, 1000))
    page.set_input_files("input[type=file]", str(river))
    page.click("button:has-text('Upload')")
    page.wait_for_url(f"{base}/media/library#photo-*")
    assert "Uploaded river.jpg (1200 x 750 px)." in page.inner_text("main")
    forest = photo(tmp_path / "forest.jpg", ("#a7c957", "#386641"), (900, 600))
    page.set_input_files("input[type=file]", str(forest))
    page.click("button:has-text('Upload')")
    page.wait_for_url(f"{base}/media/library#photo-*")

    notes = tmp_path / "notes.jpg"
    notes.write_text("minutes of the meeting", encoding="utf-8")
    page.set_input_files("input[type=file]", str(notes))
    page.click("button:has-text('Upload')")
    page.wait_for_url(f"{base}/media/library")
    error = page.locator(".flash-error")
    assert "notes.jpg: the content is not an image" in error.inner_text()

    items = page.locator(".media-item")
    assert items.count() == 2
    for index in range(2):  # the thumbnails really load (staff see unused uploads)
        loaded = items.nth(index).locator("img").evaluate("i => i.complete && i.naturalWidth")
        assert loaded > 0

    # Place the river photo in a content file: it is listed as used, and cannot be deleted.
    river_item = items.filter(has_text="river.jpg")
    url = river_item.locator("input[readonly]").input_value()
    issues = root.settings.resolved_issues_dir
    issues.mkdir(parents=True, exist_ok=True)
    (issues / "2022-13.yaml").write_text(f"# photo: {url}\n", encoding="utf-8")
    page.reload()
    river_item = page.locator(".media-item").filter(has_text="river.jpg")
    assert "2022-13.yaml" in river_item.inner_text()
    assert river_item.locator("button").count() == 0
    shot(page, artifacts, "library-600", db)

    phone = browser.new_context(viewport=PHONE).new_page()
    console.attach(phone)
    login(phone, base)
    assert no_horizontal_overflow(phone)
    shot(phone, artifacts, "library-375", db)
    phone.context.close()

    forest_item = page.locator(".media-item").filter(has_text="forest.jpg")
    forest_item.get_by_role("button", name="Delete forest.jpg").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Delete the photo forest.jpg?"
    assert "No content file, campaign or draft uses it now." in page.inner_text("main")
    shot(page, artifacts, "delete-asks-600", db)
    page.click("text=Keep the photo")
    assert page.locator(".media-item").count() == 2  # nothing happened

    page.locator(".media-item").filter(has_text="forest.jpg").get_by_role(
        "button", name="Delete forest.jpg"
    ).click()
    page.click("button:has-text('Delete the photo')")
    page.wait_for_url(f"{base}/media/library")
    assert "Deleted the photo forest.jpg." in page.inner_text("main")
    assert page.locator(".media-item").count() == 1
    shot(page, artifacts, "deleted-600", db)
    page.context.close()
    assert console.errors == []

    # axe-core (its script needs the CSP bypassed) on the library and the question.
    checked = browser.new_context(viewport=WIDE, bypass_csp=True).new_page()
    login(checked, base)
    assert axe_violations(checked) == []
    checked.locator(".media-item").first.locator("input[readonly]").focus()
    (issues / "2022-13.yaml").unlink()
    checked.reload()
    checked.get_by_role("button", name="Delete river.jpg").click()
    checked.wait_for_load_state()
    assert axe_violations(checked) == []
    checked.context.close()
