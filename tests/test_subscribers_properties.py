"""Properties of the CSV layer that must hold for any text, checked with Hypothesis."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from subscribers.csvformat import FORMULA_START, neutralise, read_rows, unneutralise

# Names: any printable text in any script (no control characters, which are refused).
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60
).filter(lambda s: s.strip() == s and s.strip())


@settings(deadline=None)  # no timing in tests: the machine is shared
@given(st.text())
def test_neutralise_round_trips(value: str) -> None:
    assert unneutralise(neutralise(value)) == value


@settings(deadline=None)  # no timing in tests: the machine is shared
@given(st.text())
def test_neutralised_cells_never_start_a_formula(value: str) -> None:
    assert not neutralise(value).startswith(FORMULA_START)


@settings(deadline=None)  # no timing in tests: the machine is shared
@given(st.lists(names, min_size=1, max_size=20))
def test_any_name_survives_export_format_and_import_parse(values: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["email", "name"])
    for index, name in enumerate(values):
        writer.writerow([f"p{index}@example.org", neutralise(name)])
    rows, problems, _ = read_rows(buffer.getvalue(), "x.csv")
    assert problems == []
    assert [row.name for row in rows] == values
    assert [row.line for row in rows] == list(range(2, len(values) + 2))
