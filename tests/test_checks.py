"""Lints on issues and on the rendered email (size, alt text, links, images, escapes)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from mailer.authoring.checks import (
    MIN_CONTRAST,
    TEXT_ON_BACKGROUND,
    WHITE,
    Finding,
    Level,
    check_colours,
    check_issue,
    check_rendered,
    contrast_ratio,
    has_errors,
)
from mailer.authoring.content import load_issue, load_issue_text
from mailer.authoring.media import MediaError
from mailer.authoring.profile import Colours, load_profile
from mailer.authoring.render import Renderer
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    return Renderer.from_settings(make_settings(tmp_path))


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.level.value, f.code) for f in findings]


@pytest.mark.parametrize("slug", ["2022-13", "2022-15"])
def test_seed_issues_pass_every_check(renderer: Renderer, slug: str) -> None:
    findings = check_issue(load_issue(REPO / "examples" / "issues" / f"{slug}.yaml"), renderer)
    assert findings == []


def test_missing_and_broken_images_are_errors_with_lines(
    renderer: Renderer, tmp_path: Path
) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (10, 10)).save(tmp_path / "photos" / "ok.jpg")
    path = tmp_path / "i.yaml"
    path.write_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: T\n"
        "preheader: P\nblocks:\n"
        "  - statement: {name: A, photo: photos/ok.jpg, text: x}\n"
        "  - statement: {name: B, photo: photos/gone.jpg, text: x}\n"
        "  - image: {src: photos/broken.jpg, alt: Broken}\n",
        encoding="utf-8",
    )
    findings = check_issue(load_issue(path), renderer)
    assert codes(findings) == [("error", "image-missing"), ("error", "image-missing")]
    assert [(f.field, f.line) for f in findings] == [
        ("blocks[1].statement.photo", 9),
        ("blocks[2].image.src", 10),
    ]
    assert "image not found" in findings[0].message
    assert "not a readable image" in findings[1].message
    assert (
        findings[0]
        .format("i.yaml")
        .startswith("i.yaml:9: blocks[1].statement.photo: error: image not found: ")
    )


def test_field_advice_is_a_warning(renderer: Renderer) -> None:
    issue = load_issue_text(
        "newsletter: lmec\nnumber: 1\nyear: 2020\ndate: 2023-01-05\n"
        f"title: {'Long title ' * 15}\nblocks:\n  - paragraph: Hi\n",
        "w.yaml",
    )
    findings = check_issue(issue, renderer)
    assert codes(findings) == [
        ("warning", "preheader"),
        ("warning", "subject"),
        ("warning", "date"),
    ]
    assert not has_errors(findings)
    assert [f.line for f in findings] == [None, 5, 4]


def test_rendered_html_lints(renderer: Renderer) -> None:
    issue = load_issue_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: T\n"
        "preheader: P\nblocks:\n  - paragraph: Hi\n",
        "r.yaml",
    )
    good = renderer.render(issue)
    assert check_rendered(good) == []
    broken_html = good.html.replace(
        "</body>",
        '<img src="https://x.org/a.png"><img src="relative.png" alt="r">'
        '<a href="/relative">x</a><a href="javascript:alert(1)">y</a>'
        '<a href="mailto:a@b.org">ok</a><img alt="\\u{e31}" src="https://x.org/b.png"'
        ' title="\\"q\\"">'
        "</body>",
    )
    findings = check_rendered(replace(good, html=broken_html))
    assert codes(findings) == [
        ("error", "mjml-escape"),
        ("error", "mjml-escape"),
        ("error", "alt-text"),
        ("error", "image-src"),
        ("error", "link"),
        ("error", "link"),
    ]


def test_size_limit(renderer: Renderer) -> None:
    issue = load_issue_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: T\n"
        "preheader: P\nblocks:\n  - paragraph: Hi\n",
        "s.yaml",
    )
    good = renderer.render(issue)
    pad = "<!-- " + "x" * 1024 + " -->"
    near = replace(good, html=good.html + pad * (80 - len(good.html) // 1024))
    far = replace(good, html=good.html + pad * 95)
    assert [(f.level, f.code) for f in check_rendered(near)] == [(Level.WARNING, "html-size")]
    assert [(f.level, f.code) for f in check_rendered(far)] == [(Level.ERROR, "html-size")]


def test_truncated_and_oversized_images_are_located_errors(
    renderer: Renderer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (200, 100), "red").save(tmp_path / "photos" / "whole.jpg")
    data = (tmp_path / "photos" / "whole.jpg").read_bytes()
    (tmp_path / "photos" / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.new("1", (100, 100)).save(tmp_path / "photos" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100x100 is a "bomb" now
    path = tmp_path / "i.yaml"
    path.write_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: T\n"
        "preheader: P\nblocks:\n"
        "  - statement: {name: A, photo: photos/cut.jpg, text: x}\n"
        "  - image: {src: photos/huge.png, alt: Huge}\n",
        encoding="utf-8",
    )
    findings = check_issue(load_issue(path), renderer)
    assert [(f.code, f.field, f.line) for f in findings] == [
        ("image-missing", "blocks[0].statement.photo", 8),
        ("image-missing", "blocks[1].image.src", 9),
    ]
    assert "not a readable image" in findings[0].message
    assert "too large to read safely: Image size (10000 pixels) exceeds" in findings[1].message
    with pytest.raises(MediaError, match=r"too large to read safely: Image size \(10000 pixels\)"):
        renderer.media.publish(tmp_path / "photos" / "huge.png", 56)


def test_backslashes_typed_by_editors_are_not_taken_for_compiler_leaks(
    renderer: Renderer,
) -> None:
    issue = load_issue_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: 'Path C:\\u{41}'\n"
        "preheader: P\nblocks:\n"
        "  - paragraph: 'Write \\u{e31} or \\\"quoted\\\" in code'\n"
        "  - image: {src: 'https://example.org/a.png', alt: 'a \\\" b \\u{41}'}\n",
        "b.yaml",
    )
    rendered = renderer.render(issue)
    assert check_rendered(rendered) == []
    assert "Write \\u{e31} or" in rendered.text and "\\u{e31}" not in rendered.html


def test_per_recipient_placeholders_in_content_are_pointed_out(renderer: Renderer) -> None:
    issue = load_issue_text(
        "newsletter: lmec\nnumber: 1\nyear: 2023\ndate: 2023-01-05\ntitle: T\npreheader: P\n"
        "blocks:\n  - paragraph: Hi\n  - statement: {name: A, roles: [x, 'Dear %%NAME%%'],"
        " text: y}\n",
        "s.yaml",
    )
    findings = check_issue(issue, renderer)
    assert [(f.level.value, f.code, f.field, f.line) for f in findings] == [
        ("warning", "slot", "blocks[1].statement.roles[1]", 9)
    ]
    assert "%%NAME%% is replaced with each recipient's own value" in findings[0].message


def test_contrast_ratio_follows_wcag() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    # The gold accent the seeds used on the statement cards, as axe-core measured it.
    assert contrast_ratio("#c98a1b", "#f6f9f8") == pytest.approx(2.77, abs=0.01)
    assert contrast_ratio("#c98a1b", "#ffffff") == pytest.approx(2.94, abs=0.01)


def test_the_profile_colours_are_readable_where_the_templates_use_them() -> None:
    profile = load_profile(REPO / "config" / "newsletter.yaml")
    assert check_colours(profile.colours) == []
    assert check_colours(Colours()) == []  # the defaults too
    palette = profile.colours.model_dump()
    for fg, bg, where in TEXT_ON_BACKGROUND:
        ratio = contrast_ratio(palette.get(fg, WHITE), palette.get(bg, WHITE))
        assert ratio >= MIN_CONTRAST, (fg, bg, where, ratio)


def test_mailer_check_warns_about_a_low_contrast_text_colour(tmp_path: Path) -> None:
    profile = (REPO / "config" / "newsletter.yaml").read_text(encoding="utf-8")
    accent = re.search(r'accent: "(#[0-9a-f]{6})"', profile)
    assert accent
    low = tmp_path / "newsletter.yaml"
    low.write_text(
        profile.replace(accent.group(1), "#c98a1b").replace(
            'primary: "#0b5d4b"', 'primary: "#6fc3a5"'
        ),
        encoding="utf-8",
    )
    renderer = Renderer.from_settings(make_settings(tmp_path, newsletter_profile=low))
    findings = check_issue(load_issue(REPO / "examples" / "issues" / "2022-13.yaml"), renderer)
    assert codes(findings) == [("warning", "contrast")] * 3
    assert not has_errors(findings)  # advice: the email can still be sent
    accent_warning, primary_warning, band_warning = (str(f) for f in findings)
    assert "colours.accent #c98a1b on colours.card #f6f9f8" in accent_warning
    assert "2.78:1" in accent_warning and "4.5:1" in accent_warning
    assert "colours.primary #6fc3a5 on colours.card #f6f9f8" in primary_warning
    assert "white (#ffffff) on colours.primary #6fc3a5 (masthead names" in band_warning
