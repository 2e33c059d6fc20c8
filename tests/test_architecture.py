"""The layout's promises, checked on the source: the store is a leaf, and only
`mailer.settings` reads the environment; only the ledger package holds the ledger's
SQL."""

from __future__ import annotations

import ast
import re
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


#: The ledger package: the only code that may read or write the ledger in SQL.
LEDGER_PACKAGE = REPO / "mailer" / "delivery" / "ledger"
#: SQL text naming the ledger table (`UPDATE ledger`, `FROM ledger`, `JOIN "ledger"` ...).
LEDGER_SQL = re.compile(r"\b(from|join|update|into|table)\s+\"?ledger\"?(\s|$|\.|,|\))", re.I)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (prose, not SQL)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _ledger_sql(path: Path) -> list[str]:
    """Where `path` touches the ledger table: the mapped class `LedgerRow` or the table
    module `ledger.rows` named in code, or SQL text naming the `ledger` table."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prose = _docstrings(tree)
    where = []
    for node in ast.walk(tree):
        line = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Name) and node.id == "LedgerRow":
            where.append(f"{line} LedgerRow")
        elif isinstance(node, ast.Attribute) and node.attr == "LedgerRow":
            where.append(f"{line} .LedgerRow")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if "LedgerRow" in names or node.module.startswith("mailer.delivery.ledger.rows"):
                where.append(f"{line} import from {node.module}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in prose:
                continue
            if node.value == "ledger" or LEDGER_SQL.search(node.value):
                where.append(f"{line} SQL {node.value[:40]!r}")
    return where


def test_only_the_ledger_package_holds_the_ledger_sql() -> None:
    """Every read and write of the ledger table is a function of `mailer.delivery.ledger`.

    The rule, checked on the source of every module under `mailer/` outside that
    package: it never names the mapped class `LedgerRow` (so it builds no query on it:
    select, update, join), never imports `mailer.delivery.ledger.rows` (the table), and
    holds no SQL text naming the `ledger` table. Readers such as `progress`,
    `failurescsv`, the scheduler, the CLI and the web pages call the package's functions
    (`progress`, `report`, `failures`, `unsettled`, ...). Migrations are exempt: they
    are the table's history, not its use.
    """
    outside = [
        path
        for path in _modules("mailer")
        if LEDGER_PACKAGE not in path.parents and "migrations" not in path.parts
    ]
    offenders = [where for path in outside for where in _ledger_sql(path)]
    assert offenders == []
    # The detector sees the ledger's own SQL, so the rule above can fail.
    inside = {path.name: _ledger_sql(path) for path in sorted(LEDGER_PACKAGE.glob("*.py"))}
    assert inside["rows.py"] and inside["reports.py"] and inside["enqueuing.py"]
    assert any("SQL 'UPDATE ledger" in where for where in inside["outcomes.py"])
