"""The block editor in real Chromium, acting as an editor would: compose Issue 13 from
an empty draft and get the email `examples/issues/2022-13.yaml` makes; reload mid-typing
and lose nothing; a dropped connection; two editors on one draft; keyboard reordering;
removal asks first; axe-core. On SQLite (the store's own tests cover both databases).
Screenshots of each step: test-artifacts/editor-*.png (look at them)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
from ruamel.yaml import YAML

from mailer import db
from mailer.authoring.content import load_issue
from mailer.compose import Root, build
from mailer.drafts.document import issue_from_document
from mailer.drafts.store import create_draft, get_draft, history
from mailer.timestamps import utcnow
from tests.conftest import REPO, make_settings
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
DESKTOP: ViewportSize = {"width": 1500, "height": 1000}
PHONE: ViewportSize = {"width": 375, "height": 812}
SEED = REPO / "examples" / "issues" / "2022-13.yaml"
EMPTY: dict[str, Any] = {"newsletter": "lmec", "title": "", "blocks": []}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Site:
    def __init__(self, app: FastAPI, root: Root, base: str, browser: Browser) -> None:
        self.app, self.root, self.base, self.browser = app, root, base, browser
        self.console = ConsoleLog()

    def page(
        self, viewport: ViewportSize = DESKTOP, email: str = "editor@example.org", axe: bool = False
    ) -> Page:
        # axe-core is injected as an inline script: only its pages bypass the CSP.
        context = self.browser.new_context(viewport=viewport, bypass_csp=axe)
        public = self.root.settings.public_base_url
        # The email's images are at the https public URL: fetched from this server.
        context.route(
            f"{public}/**",
            lambda route: route.fulfill(
                response=route.fetch(url=route.request.url.replace(public, self.base, 1))
            ),
        )
        page = context.new_page()
        self.console.attach(page)
        page.goto(f"{self.base}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/issues$"))
        return page

    def draft(self, document: dict[str, Any] | None = None) -> int:
        with self.root.sessions.begin() as session:
            doc = copy.deepcopy(EMPTY if document is None else document)
            return create_draft(session, doc, author_id=None, now=utcnow()).id

    def stored(self, draft_id: int) -> dict[str, Any]:
        with self.root.sessions() as session:
            return get_draft(session, draft_id).document

    def edit(self, page: Page, draft_id: int) -> None:
        page.goto(f"{self.base}/drafts/{draft_id}/edit")
        page.locator("#issue-fields input").first.wait_for()


@pytest.fixture
def site(browser: Browser, tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'editor.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    sock = free_socket()
    host, port = sock.getsockname()
    # Photos are https URLs in content (the model refuses http): the public URL is https
    # (Chromium keeps Secure cookies for 127.0.0.1 over http; Site.page routes the
    # public URL's requests to this server).
    settings = make_settings(tmp_path, database_url=url, public_base_url=f"https://{host}:{port}")
    root = build(settings)
    app = make_app(root)
    add_user(app, "editor@example.org", "editor")
    add_user(app, "admin@example.org", "admin")
    with serve(app, sock) as base:
        yield Site(app, root, base, browser)
    root.close()


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"editor-{name}.png"), full_page=True)


def saved(page: Page) -> None:
    """Everything typed so far is on the server (not only an earlier save)."""
    status = page.locator("#save-status")
    expect(status).to_have_class(re.compile(r"\bsave-ok\b"), timeout=15_000)
    expect(status).to_contain_text("Saved at")


def block(page: Page, index: int) -> Any:
    return page.locator("#blocks > li").nth(index)


def add_block(page: Page, kind: str) -> Any:
    """Add a block of `kind` at the end, as an editor would with the add bar."""
    count = page.locator("#blocks > li").count()
    bar = page.locator("#add-end") if count == 0 else block(page, count - 1).locator(".add-bar")
    bar.locator("select").select_option(kind)
    bar.locator("button").click()
    expect(page.locator("#blocks > li")).to_have_count(count + 1)
    return block(page, count)


def seed_document() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(SEED.read_text(encoding="utf-8"))
    data["date"] = str(data["date"])
    return data


# --- compose Issue 13 -------------------------------------------------------------------


def test_compose_issue_13_from_an_empty_draft(site: Site, artifacts: Path, tmp_path: Path) -> None:
    seed = seed_document()
    page = site.page()
    page.get_by_role("button", name="New draft").click()  # on the Issues page
    page.wait_for_url(re.compile(r".*/drafts/\d+/edit$"))
    draft = int(page.url.rsplit("/", 2)[-2])
    page.locator("#issue-fields input").first.wait_for()
    shot(page, artifacts, "01-empty")
    page.fill("#f-number", str(seed["number"]))
    page.fill("#f-year", str(seed["year"]))
    page.fill("#f-date", seed["date"])
    page.fill("#f-language", seed["language"])
    page.fill("#f-title", seed["title"])
    page.fill("#f-preheader", seed["preheader"])
    photo = tmp_path / "zhou.jpg"
    _portrait(photo)
    for index, item in enumerate(seed["blocks"]):
        ((kind, value),) = item.items()
        card = add_block(page, kind)
        if kind == "paragraph":
            card.locator("textarea").fill(value.strip())
            continue
        assert kind == "statement"
        card.get_by_label("Name", exact=True).fill(value["name"])
        for line, role in enumerate(value["roles"]):
            if line:
                card.get_by_role("button", name="Add a role line").click()
            card.get_by_label(f"Role line {line + 1}", exact=True).fill(role)
        card.get_by_label("Country", exact=True).select_option(value["country"])
        card.get_by_label("Statement text", exact=True).fill(value["text"].strip())
        if index == 2:  # the first card gets a photo, uploaded from the card
            card.get_by_label("Upload a photo (JPEG, PNG or WebP)", exact=True).set_input_files(
                str(photo)
            )
            expect(card.get_by_role("status").first).to_contain_text("Uploaded zhou.jpg")
            shot(page, artifacts, "02-photo-uploaded")
    page.locator("#footer-fields summary").click()
    page.fill("#f-contact", "\n".join(seed["contact"]))
    page.fill("#f-about", seed["about"])
    page.click("#save-now")
    saved(page)
    expect(page.locator("#preview-note")).to_contain_text("Preview updated", timeout=15_000)
    frame = page.frame_locator("#preview-desktop")
    expect(frame.locator("body")).to_contain_text("Dr. LI Xia", timeout=15_000)
    shot(page, artifacts, "03-composed-desktop")
    page.get_by_role("button", name="375 px").click()
    expect(page.frame_locator("#preview-phone").locator("body")).to_contain_text("Dr. LI Xia")
    page.get_by_role("button", name="Plain text").click()
    expect(page.locator("#preview-text")).to_contain_text("Mr. Le Ngoc Tuan")
    assert site.console.errors == []

    # The email made from the draft is the one made from the file, the photo aside:
    # the file's card gets the same photo URL, then both render through one Renderer.
    stored = site.stored(draft)
    renderer = site.root.renderer()
    profile = site.root.profile
    from_draft = renderer.render(issue_from_document(stored, profile))
    photo_url = stored["blocks"][2]["statement"].pop("photo")
    assert photo_url.startswith(f"{site.root.settings.public_base_url}/media/")
    with_photo = copy.deepcopy(seed)
    with_photo["blocks"][2]["statement"]["photo"] = photo_url
    from_file = renderer.render(issue_from_document(with_photo, profile))
    assert from_draft.text == from_file.text
    assert from_draft.html == from_file.html
    assert from_draft.subject == from_file.subject
    # And without the photo it is the seed file's email exactly.
    plain = renderer.render(issue_from_document(stored, profile))
    assert plain.html == renderer.render(load_issue(SEED)).html
    assert plain.text == renderer.render(load_issue(SEED)).text


def _portrait(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (400, 400), (40, 110, 80)).save(path, "JPEG")


# --- nothing typed is lost ----------------------------------------------------------------


def test_reload_mid_typing_and_a_dropped_connection_lose_nothing(
    site: Site, artifacts: Path
) -> None:
    draft = site.draft(seed_document())
    page = site.page()
    site.edit(page, draft)
    # The server is out of reach while typing and as the page unloads (its last-moment
    # save fails too): only the browser has the words.
    page.route("**/drafts/*/save", lambda route: route.abort())
    text = block(page, 2).get_by_label("Statement text", exact=True)
    text.press("End")
    text.press_sequentially(" Typed just before the reload.", delay=5)
    page.reload()
    page.locator("#issue-fields input").first.wait_for()
    page.unroute("**/drafts/*/save")
    offer = page.locator("#local-copy")
    expect(offer).to_contain_text("not saved")
    shot(page, artifacts, "04-reload-offer")
    offer.get_by_role("button", name="Restore my unsaved edits").click()
    expect(block(page, 2).get_by_label("Statement text", exact=True)).to_have_value(
        re.compile("Typed just before the reload.$")
    )
    saved(page)
    assert site.stored(draft)["blocks"][2]["statement"]["text"].endswith("before the reload.")

    page.context.set_offline(True)
    title = page.locator("#f-title")
    title.fill("Written while offline")
    expect(page.locator("#save-status")).to_contain_text("Save failed", timeout=15_000)
    shot(page, artifacts, "05-save-failed")
    page.context.set_offline(False)
    saved(page)
    assert site.stored(draft)["title"] == "Written while offline"
    # The browser logs the failed requests itself; nothing else went wrong.
    # (and a 409 when the page's last-moment save did arrive after all).
    assert [e for e in site.console.errors if "net::ERR_" not in e and "409" not in e] == []


# --- two editors ---------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["Take theirs", "Keep mine"])
def test_two_editors_the_conflict_is_shown_and_resolved(
    site: Site, artifacts: Path, choice: str
) -> None:
    draft = site.draft(seed_document())
    first = site.page()
    second = site.page(email="admin@example.org")
    site.edit(first, draft)
    site.edit(second, draft)
    first.fill("#f-title", "The first editor's title")
    saved(first)
    second.fill("#f-preheader", "The second editor's preheader")
    conflict = second.locator("#conflict")
    expect(conflict).to_contain_text("Someone else saved this draft", timeout=15_000)
    expect(conflict).to_contain_text("The first editor's title")
    expect(conflict).to_contain_text("The second editor's preheader")
    slug = choice.lower().replace(" ", "-")
    shot(second, artifacts, f"06-conflict-{slug}")
    conflict.get_by_role("button", name=choice).click()
    expect(second.locator("#conflict")).to_have_count(0)
    saved(second)
    stored = site.stored(draft)
    if choice == "Take theirs":
        assert stored["title"] == "The first editor's title"
        assert stored["preheader"] != "The second editor's preheader"
        expect(second.locator("#f-title")).to_have_value("The first editor's title")
    else:
        assert stored["preheader"] == "The second editor's preheader"
        assert stored["title"] != "The first editor's title"
    with site.root.sessions() as session:
        documents = [r.document for r in history(session, draft)]
    # Nothing lost either way: both versions are revisions of the draft.
    assert any(d.get("title") == "The first editor's title" for d in documents)
    assert any(d.get("preheader") == "The second editor's preheader" for d in documents)
    shot(second, artifacts, f"07-resolved-{slug}")
    # The browser logs the refused save (409) itself; nothing else went wrong.
    assert [e for e in site.console.errors if "409 (Conflict)" not in e] == []


# --- blocks: keyboard, removal, validation, axe ----------------------------------------------


def test_blocks_reorder_by_keyboard_and_removal_asks_first(site: Site, artifacts: Path) -> None:
    draft = site.draft(seed_document())
    page = site.page()
    site.edit(page, draft)
    handle = block(page, 3).locator("[data-control=handle]")
    handle.focus()
    page.keyboard.press("ArrowUp")
    expect(block(page, 2).locator("h3")).to_contain_text("Mr. Le Ngoc Tuan")
    focused = page.evaluate("document.activeElement.getAttribute('data-control')")
    assert focused == "handle"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(block(page, 4).locator("h3")).to_contain_text("Mr. Le Ngoc Tuan")
    saved(page)
    names = [b["statement"]["name"] for b in site.stored(draft)["blocks"] if "statement" in b]
    assert names[:3] == ["Mr. ZHOU Jun", "Mr. Lonkham Atsanavong", "Mr. Le Ngoc Tuan"]
    block(page, 0).get_by_role("button", name=re.compile("^Duplicate")).click()
    expect(page.locator("#blocks > li")).to_have_count(11)
    block(page, 1).get_by_role("button", name=re.compile("^Remove")).click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Paragraph 2")
    expect(dialog).to_contain_text("words will be removed")
    shot(page, artifacts, "08-remove-asks")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("#blocks > li")).to_have_count(11)
    block(page, 1).get_by_role("button", name=re.compile("^Remove")).click()
    dialog.get_by_role("button", name="Remove").click()
    expect(page.locator("#blocks > li")).to_have_count(10)
    saved(page)
    assert len(site.stored(draft)["blocks"]) == 10
    assert site.console.errors == []


def test_messages_appear_beside_their_fields_and_the_page_passes_axe(
    site: Site, artifacts: Path
) -> None:
    assert AXE.is_file()
    document = seed_document()
    draft = site.draft(document)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = site.page(viewport, axe=True)
        site.edit(page, draft)
        name = block(page, 2).get_by_label("Name", exact=True)
        name.fill("")
        text = block(page, 0).get_by_label("Paragraph text", exact=True)
        text.fill("A [link](ftp://example.org) and <script>alert(1)</script>")
        expect(name).to_have_attribute("aria-invalid", "true", timeout=15_000)
        described = name.get_attribute("aria-describedby") or ""
        error = page.locator(f"#{described.split()[-1]}")
        expect(error).to_contain_text("at least 1 character")
        expect(text).to_have_attribute("aria-invalid", "true")
        shot(page, artifacts, f"09-messages-{label}")
        violations = axe_violations(page)
        assert violations == [], "\n".join(violations)
        if label == "phone":
            assert no_horizontal_overflow(page)
        # Fixed, the email shows the editor's text as text.
        name.fill("Mr. ZHOU Jun")
        text.fill('<script>alert(1)</script> {{ 7*7 }} R&D "quoted"')
        expect(name).not_to_have_attribute("aria-invalid", "true", timeout=15_000)
        body = page.frame_locator("#preview-desktop" if label == "desktop" else "#preview-phone")
        if label == "phone":
            page.get_by_role("button", name="375 px").click()
        expect(body.locator("body")).to_contain_text(
            '<script>alert(1)</script> {{ 7*7 }} R&D "quoted"', timeout=15_000
        )
        shot(page, artifacts, f"10-literal-text-{label}")
        violations = axe_violations(page)
        assert violations == [], "\n".join(violations)
        page.context.close()
    assert site.console.errors == []


def test_markdown_buttons_type_the_markdown(site: Site) -> None:
    draft = site.draft(seed_document())
    page = site.page()
    site.edit(page, draft)
    text = block(page, 0).get_by_label("Paragraph text", exact=True)
    text.fill("Plain words")
    text.evaluate("t => t.setSelectionRange(6, 11)")
    block(page, 0).get_by_role("button", name=re.compile("^Bold")).click()
    expect(text).to_have_value("Plain **words**")
    text.evaluate("t => t.setSelectionRange(0, 5)")
    block(page, 0).get_by_role("button", name=re.compile("^Link")).click()
    page.keyboard.type("https://example.org")
    expect(text).to_have_value("[Plain](https://example.org) **words**")
    saved(page)
    assert site.stored(draft)["blocks"][0]["paragraph"] == "[Plain](https://example.org) **words**"
    assert json.dumps(site.console.errors) == "[]"


DRAG = """({source, target}) => {
  const cards = document.querySelectorAll("#blocks > li");
  const handle = cards[source].querySelector("[data-control=handle]");
  const onto = cards[target];
  const data = new DataTransfer();
  const y = onto.getBoundingClientRect().bottom - 5;  // the lower half: drop below it
  handle.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: data}));
  for (const type of ["dragover", "drop"]) {
    const init = {bubbles: true, cancelable: true, dataTransfer: data, clientY: y};
    onto.dispatchEvent(new DragEvent(type, init));
  }
  handle.dispatchEvent(new DragEvent("dragend", {bubbles: true, dataTransfer: data}));
}"""


def test_a_photo_chosen_from_the_media_library_and_a_block_dragged(
    site: Site, artifacts: Path, tmp_path: Path
) -> None:
    draft = site.draft(seed_document())
    page = site.page()
    site.edit(page, draft)
    photo = tmp_path / "portrait.jpg"
    _portrait(photo)
    first, second = block(page, 2), block(page, 3)
    first.get_by_label("Upload a photo (JPEG, PNG or WebP)", exact=True).set_input_files(str(photo))
    expect(first.get_by_role("status").first).to_contain_text("Uploaded portrait.jpg")
    uploaded = first.get_by_label("Photo address (optional)", exact=True).input_value()
    second.get_by_role("button", name="Choose from the media library").click()
    dialog = page.locator("#media-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("portrait.jpg")
    shot(page, artifacts, "11-media-library")
    dialog.get_by_role("button", name=re.compile("portrait.jpg")).click()
    expect(dialog).to_be_hidden()
    expect(second.get_by_label("Photo address (optional)", exact=True)).to_have_value(uploaded)
    # Drag the first paragraph below the second. Chromium here starts the drag from
    # Playwright's mouse but sends no dragover or drop, so the drag events the browser
    # would send are dispatched: the page's own handlers place the block.
    page.evaluate(DRAG, {"source": 0, "target": 1})
    expect(block(page, 0).get_by_label("Paragraph text", exact=True)).to_have_value(
        re.compile("^Mr. ZHOU Jun, Director")
    )
    saved(page)
    blocks = site.stored(draft)["blocks"]
    seed = seed_document()["blocks"]
    assert blocks[0] == seed[1] and blocks[1] == seed[0]
    assert blocks[2]["statement"]["photo"] == uploaded
    assert blocks[3]["statement"]["photo"] == uploaded
    assert site.console.errors == []
