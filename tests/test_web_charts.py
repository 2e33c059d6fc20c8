"""The server-rendered SVG chart: proportions, and labels always escaped."""

from __future__ import annotations

import re

from mailer.delivery.ledger import Tally
from mailer.web.charts import Bar, responsive_bars, stacked_bars


def test_bars_are_proportional_and_split_by_outcome() -> None:
    svg = str(
        stacked_bars(
            [
                Bar("Vietnam", Tally("VN", total=10, sent=6, pending=1, retrying=1, failed=2)),
                Bar("Laos", Tally("LA", total=5, sent=5)),
            ],
            width=400,
            label_width=100,
        )
    )
    plot = 400 - 100 - 70
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)"', svg)]
    # Vietnam: background 10, then sent 6, retrying 1, failed 2, pending 1; Laos: 5 and 5.
    assert widths[:5] == [plot, plot * 0.6, plot * 0.1, plot * 0.2, plot * 0.1]
    assert widths[5:] == [plot * 0.5, plot * 0.5]
    assert "6/10" in svg and "5/5" in svg
    assert "Vietnam: 2 failed" in svg


def test_hostile_labels_are_text() -> None:
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    svg = str(responsive_bars([Bar(hostile, Tally("x", total=1, sent=1))]))
    assert "<script>" not in svg and "<img" not in svg
    assert "&lt;script&gt;" in svg
    assert svg.count("<svg") == 2  # wide and narrow


def test_no_groups_no_chart() -> None:
    assert str(stacked_bars([])) == ""
