"""Benchmark: wrapping an issue's words for the plain-text part at 78 columns.

Run from the repository root:

    .venv/bin/python benchmarks/wrap.py [--runs 200] [issue files...]

Every text field of each issue file (title, subtitle, paragraphs, statements,
captions, closing) is wrapped as the plain-text part wraps it, in the issue's
language; the median time per issue is reported. Default: Issue 13 and, when
present, its Chinese and Thai variants.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.authoring.render import wrap  # noqa: E402

DEFAULT = ("2022-13.yaml", "2022-13.zh.yaml", "2022-13.th.yaml")
SKIP = {"newsletter", "language", "date", "src", "photo", "url", "href"}


def strings(node: Any, key: str = "") -> Iterator[str]:
    """Every text value in a parsed issue, not file names, links or ids."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from strings(value, str(name))
    elif isinstance(node, list):
        for value in node:
            yield from strings(value, key)
    elif isinstance(node, str) and key not in SKIP:
        yield node


# Before the ICU wrapping, `wrap` had no locale: the script measures both versions.
_takes_locale = "locale" in wrap.__code__.co_varnames


def wrap_all(texts: list[str], language: str) -> None:
    extra: dict[str, Any] = {"locale": language} if _takes_locale else {}
    for text in texts:
        for paragraph in text.split("\n\n"):
            wrap(paragraph.replace("\n", " "), **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    files = args.files or [
        REPO / "examples" / "issues" / name
        for name in DEFAULT
        if (REPO / "examples" / "issues" / name).exists()
    ]
    for path in files:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        texts = list(strings(data))
        language = str(data.get("language", "en"))
        wrap_all(texts, language)  # warm-up: ICU iterators, caches
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            wrap_all(texts, language)
            times.append(time.perf_counter() - start)
        chars = sum(len(text) for text in texts)
        print(
            f"{path.name}: {chars} characters, median {statistics.median(times) * 1000:.3f} ms "
            f"({len(times)} runs, locale {'used' if _takes_locale else 'not supported'})"
        )


if __name__ == "__main__":
    main()
