"""The layout's promises, checked on the source: the store is a leaf, and only
`mailer.settings` reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_subscriber_store_never_imports_mailer() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            n for n in _imports(path) if n.split(".")[0] == "mailer"
        )
        for path in _modules("subscribers")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_only_settings_reads_the_environment() -> None:
    readers = []
    for path in _modules("mailer") + _modules("subscribers"):
        if path == REPO / "mailer" / "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if isinstance(node, ast.Name) and node.id in ("getenv", "load_dotenv"):
                readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert readers == []
