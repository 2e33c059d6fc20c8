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


def _mailer_imports(path: Path) -> set[str]:
    """Every `mailer...` module a file imports, `from mailer.web import x` as
    `mailer.web.x` (a submodule or a name in the package: both are listed)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "mailer"}


# Entry points that run the web app as one part of a process (web, scheduler and worker
# together); they stand beside the CLI, above the library.
ENTRY_POINTS = {"mailer/serve.py"}


def test_the_library_never_imports_the_cli_or_the_web_app() -> None:
    """Everything under mailer/ but cli/ and web/ (the application layer mailer/app
    included) serves both front ends, so it may import neither."""
    offenders = {}
    for path in _modules("mailer"):
        where = str(path.relative_to(REPO))
        if where.startswith(("mailer/cli/", "mailer/web/")) or where in ENTRY_POINTS:
            continue
        upward = sorted(
            name for name in _mailer_imports(path) if name.startswith(("mailer.cli", "mailer.web"))
        )
        if upward:
            offenders[where] = upward
    assert offenders == {}


# What every web page may use: the app's wiring aside, these hold no routes of their own.
WEB_SUPPORT = {
    "context",  # the WebContext and the request's database session
    "csrf",
    "pages",  # page rendering, flash messages, the email's CSP
    "forms",  # redirects, field errors, paging, upload names
    "confirm",  # the "are you sure?" page
    "charts",
    "archive",  # the public archive's queries and feed
    "library",  # the issue files
    "language",  # which language a public page speaks, its switch
    "slashes",
}
# `auth` is a page (sign-in) that also gives every page its guards (current_user,
# require_admin); `editor` and `operator` gather the pages of an area; `app` wires all.
WEB_GUARDS = {"auth"}
WEB_AREAS = {"editor", "operator"}
WEB_WIRING = {"app", "__init__"}


def _web_siblings(path: Path) -> set[str]:
    return {
        name.split(".")[2]
        for name in _mailer_imports(path)
        if name.startswith("mailer.web.") and len(name.split(".")) >= 3
    } - {path.stem}


def test_web_pages_do_not_import_each_other() -> None:
    """A page module (one with routes) uses only the shared support modules and the
    guards; shared helpers live in support (forms, pages, ...), never in a page."""
    web = REPO / "mailer" / "web"
    modules = {path.stem: path for path in web.glob("*.py")}
    pages = set(modules) - WEB_SUPPORT - WEB_AREAS - WEB_WIRING
    assert {"issues", "campaigns", "subscribers", "lists", "users", "public"} <= pages
    offenders = {}
    for name, path in sorted(modules.items()):
        if name in WEB_WIRING:
            continue
        allowed = WEB_SUPPORT | (WEB_GUARDS - {name})
        if name in WEB_AREAS:
            allowed = allowed | pages
        if name in WEB_SUPPORT:
            allowed = WEB_SUPPORT  # support never reaches into a page
        wrong = sorted(_web_siblings(path) - allowed)
        if wrong:
            offenders[name] = wrong
    assert offenders == {}


# The command modules' shared support; `main` registers every command module.
CLI_SUPPORT = {"common", "present", "output"}


def test_cli_command_modules_do_not_import_each_other() -> None:
    cli = REPO / "mailer" / "cli"
    modules = {path.stem: path for path in cli.glob("*.py")}
    commands = set(modules) - CLI_SUPPORT - {"main", "__init__"}
    assert {"delivery", "schedule", "subscribers", "lists", "partners"} <= commands
    offenders = {}
    for name in sorted(commands | CLI_SUPPORT):
        siblings = {
            imported.split(".")[2]
            for imported in _mailer_imports(modules[name])
            if imported.startswith("mailer.cli.") and len(imported.split(".")) >= 3
        } - {name}
        # Support modules may use `output` (how a command fails), which uses none of them.
        allowed = CLI_SUPPORT if name in commands else {"output"}
        wrong = sorted(siblings - allowed - {name})
        if wrong:
            offenders[name] = wrong
    assert offenders == {}


# `ImportRejected` is not among them: it carries an import's per-line report, which the
# CLI and the web app show line by line (it is a result to present, not an error to map).
STORE_ERRORS = re.compile(r"\b(StoreError|StoreInputError|NotFound|Conflict)\b")


def test_only_the_application_layer_maps_store_errors() -> None:
    """`subscribers.errors.StoreError` becomes one of ours in `mailer.app.errors` alone;
    the CLI and the web app see `MailerError`s (the web app's handler for a store error
    that escaped a page passes it to the same adapter)."""
    handlers = []
    for path in _modules("mailer/cli") + _modules("mailer/web"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                if STORE_ERRORS.search(caught):
                    handlers.append(f"{path.relative_to(REPO)}:{node.lineno}: {caught}")
    assert handlers == []


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


def _annotations(tree: ast.AST) -> set[int]:
    """ids of the nodes inside type annotations (naming a row's type builds no query)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.arg) and node.annotation:
            roots.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(inner) for root in roots for inner in ast.walk(root)}


def _ledger_sql(path: Path) -> list[str]:
    """Where `path` touches the ledger table: the mapped class `LedgerRow` or the table
    module `ledger.rows` named in code (type annotations aside), or SQL text naming the
    `ledger` table."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prose = _docstrings(tree)
    typing_only = _annotations(tree)
    where = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
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
    package: it never names the mapped class `LedgerRow` outside a type annotation (so
    it builds no query on it: select, update, join), never imports
    `mailer.delivery.ledger.rows` (the table), and holds no SQL text naming the `ledger`
    table. Readers such as `progress`,
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
