"""Server-rendered SVG charts: no JavaScript library, no images from elsewhere.

Colours are SVG presentation attributes (not `style=`), which the pages' Content
Security Policy allows; text is escaped by the template engine like everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from mailer.delivery.ledger import Tally

SEGMENTS = (
    ("sent", "#0b6e4f"),
    ("retrying", "#e39b16"),
    ("failed", "#c0392b"),
    ("skipped", "#7d8b94"),
    ("pending", "#b9c6ce"),
)


@dataclass(frozen=True)
class Bar:
    label: str
    tally: Tally


def stacked_bars(
    bars: Sequence[Bar],
    *,
    width: int = 720,
    row: int = 26,
    label_width: int = 240,
    css_class: str = "chart",
) -> Markup:
    """One horizontal bar per group, split into sent / retrying / failed / skipped / pending."""
    if not bars:
        return Markup("")
    biggest = max(b.tally.total for b in bars) or 1
    plot = width - label_width - 70
    height = row * len(bars) + 8
    parts = [
        f'<svg class="{css_class}" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="Progress per group">'
    ]
    for index, bar in enumerate(bars):
        y = 4 + index * row
        parts.append(
            f'<text x="{label_width - 8}" y="{y + row / 2 + 4:.0f}" text-anchor="end" '
            f'font-size="13" fill="#1d2a33">{escape(_short(bar.label, label_width // 8))}</text>'
        )
        x = float(label_width)
        parts.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{plot * bar.tally.total / biggest:.1f}" '
            f'height="{row - 8}" fill="#eef2f4"/>'
        )
        for name, colour in SEGMENTS:
            value = getattr(bar.tally, name)
            if not value:
                continue
            w = plot * value / biggest
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}">'
                f"<title>{escape(bar.label)}: {value} {name}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + row / 2 + 4:.0f}" font-size="12" fill="#5b6b76">'
            f"{bar.tally.sent}/{bar.tally.total}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def responsive_bars(bars: Sequence[Bar]) -> Markup:
    """A wide chart for desktops and a narrow one for phones (CSS shows one of them),
    so the labels stay readable instead of shrinking with the whole picture."""
    wide = stacked_bars(bars, css_class="chart chart-wide")
    narrow = stacked_bars(bars, width=360, row=24, label_width=130, css_class="chart chart-narrow")
    return wide + narrow


def _short(label: str, limit: int = 32) -> str:
    """Labels longer than the label column are cut with an ellipsis (full text in the table)."""
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"
