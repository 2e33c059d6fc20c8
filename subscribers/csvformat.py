"""Reading subscriber CSV files: encodings, delimiters, headers, rows, formula cells.

Turns the bytes of a file into validated `Row`s and a `Problem` for every bad
line, without touching the database; `subscribers.csvimport` merges and writes them.
Spreadsheet formulas: export puts an apostrophe before a cell starting with
= + - @ TAB or CR (`neutralise`), and reading removes it (`unneutralise`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from subscribers.countries import normalise_country, validate_timezone
from subscribers.errors import ImportRejected, Problem, StoreInputError
from subscribers.models import SubscriberStatus
from subscribers.repository import clean_language
from subscribers.validation import clean_name, email_key, normalise_email

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_FIELD = 2000  # any single cell; attributes JSON may be longer
MAX_ATTRIBUTES = 20000
MAX_ATTRIBUTE_DEPTH = 5  # {"a": {"b": [1]}} is 3 levels: enough for any real attribute

# canonical column -> accepted header spellings (compared case-insensitively)
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "mail", "email address", "e-mail address", "emailaddress"),
    "name": ("name", "full name", "fullname", "display name", "contact name", "contact"),
    "first_name": ("first name", "first_name", "firstname", "given name"),
    "last_name": ("last name", "last_name", "lastname", "surname", "family name"),
    "country": ("country", "country code", "country_code", "nation"),
    "partner": ("partner", "organisation", "organization", "org", "company"),
    "language": ("language", "lang", "locale"),
    "timezone": ("timezone", "time zone", "time_zone", "tz"),
    "status": ("status",),
    "lists": ("lists", "list"),
    "attributes": ("attributes",),
}
IGNORED = ("id", "created at", "updated at")  # written by export, not imported


def _fold_header(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").split())


_ALIAS_LOOKUP = {
    _fold_header(alias): column for column, aliases in HEADER_ALIASES.items() for alias in aliases
}


def decode(data: bytes, name: str, encoding: str | None = None) -> str:
    """Bytes to text: UTF-8 (BOM or not) unless `encoding` says otherwise; clear errors."""
    if encoding:
        try:
            return data.decode(encoding).removeprefix("\ufeff")  # a BOM is no header text
        except LookupError:
            raise StoreInputError(f"{name}: unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ImportRejected(
                [Problem(name, line, "", f"cannot be decoded as {encoding}: {exc.reason}")]
            ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected(
            [Problem(name, 1, "", "the file is UTF-16; run again with --encoding utf-16")]
        )
    kind = _binary_kind(data)
    if kind:
        raise ImportRejected([Problem(name, 1, "", f"not a CSV text file: {kind}")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex().upper()
        try:
            data.decode("cp1252")
            hint = "it looks like Windows-1252: run again with --encoding cp1252"
        except UnicodeDecodeError:
            hint = "run again with --encoding and the file's encoding (e.g. latin-1, gb18030)"
        raise ImportRejected(
            [Problem(name, line, "", f"not valid UTF-8 (byte 0x{byte}); {hint}")]
        ) from None


_SIGNATURES = {
    b"PK\x03\x04": "a zip file (an .xlsx or .ods spreadsheet?)",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an old Excel (.xls) file",
    b"%PDF": "a PDF document",
}


def _binary_kind(data: bytes) -> str | None:
    """What a file that is not text at all looks like (a spreadsheet saved as is)."""
    for signature, kind in _SIGNATURES.items():
        if data.startswith(signature):
            return f"it looks like {kind}; save it as CSV UTF-8 from the spreadsheet first"
    return None  # NUL bytes are reported per field, with their line


def unneutralise(value: str) -> str:
    """Undo `neutralise`: drop the apostrophe export put before a formula character."""
    if value.startswith("'") and value[1:2] and (value[1] in FORMULA_START or value[1] == "'"):
        return value[1:]
    return value


def neutralise(value: str) -> str:
    """Make a cell safe for spreadsheets: a leading formula character gets an apostrophe."""
    if value.startswith(FORMULA_START) or (
        value.startswith("'") and value[1:2] and (value[1] in FORMULA_START or value[1] == "'")
    ):
        return "'" + value
    return value


@dataclass
class Row:
    """One subscriber as read from the file (None: the cell was empty or absent)."""

    line: int
    email: str
    key: str
    name: str | None = None
    country: str | None = None
    partner: str | None = None
    language: str | None = None
    timezone: str | None = None
    status: SubscriberStatus | None = None
    lists: set[str] = field(default_factory=set)
    attributes: dict[str, Any] = field(default_factory=dict)

    def merge(self, later: Row) -> None:
        """A later row for the same address fills and overrides non-empty fields."""
        for name in ("name", "country", "partner", "language", "timezone", "status"):
            value = getattr(later, name)
            if value is not None:
                setattr(self, name, value)
        self.lists |= later.lists
        self.attributes.update(later.attributes)


def _map_header(header: list[str], name: str) -> dict[int, str]:
    """Column index -> canonical name (unknown columns -> 'attr:<header>')."""
    mapping: dict[int, str] = {}
    seen: dict[str, str] = {}
    problems = []
    for index, raw in enumerate(header):
        title = unneutralise(raw.strip())
        if not title:
            continue
        canonical = _ALIAS_LOOKUP.get(_fold_header(title))
        if canonical is None:
            if _fold_header(title) in IGNORED:
                continue
            canonical = f"attr:{title}"
        if canonical in seen:
            problems.append(
                Problem(name, 1, title, f"duplicate column (same as {seen[canonical]!r})")
            )
        seen[canonical] = title
        mapping[index] = canonical
    if "email" not in seen:
        accepted = ", ".join(HEADER_ALIASES["email"])
        found = ", ".join(h.strip() for h in header if h.strip()) or "nothing"
        problems.append(
            Problem(
                name, 1, "", f"no email column: the header has {found}; name one column {accepted}"
            )
        )
    if problems:
        raise ImportRejected(problems)
    return mapping


def delimiter_of(text: str) -> str:
    """Comma, unless the header row uses semicolons or tabs instead (spreadsheet exports
    in many locales write `email;name`)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return "," if counts[","] or not counts[best] else best


def read_rows(
    text: str, name: str, known_keys: Callable[[list[str]], set[str]] | None = None
) -> tuple[list[Row], list[Problem], set[str]]:
    """Parse and validate every row: (good rows, problems, canonical columns present).

    `known_keys`, given the lower-cased ASCII addresses of the file, returns those
    already in the store: they were validated when stored, so they are not
    validated again (a re-import is about twice as fast). Raises `ImportRejected`
    for problems that make the whole file unreadable (empty, no header, no email
    column, a field over the csv size limit).
    """
    if not text.strip():
        raise ImportRejected(
            [Problem(name, 1, "", "the file is empty: expected a header row with an email column")]
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(text))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ImportRejected([Problem(name, 1, "", f"unreadable header: {exc}")]) from None
    mapping = _map_header(header, name)
    columns = set(mapping.values())
    records: list[tuple[int, list[str]]] = []
    problems: list[Problem] = []
    previous_end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = previous_end + 1
            message = str(exc)
            if "field larger than field limit" in message:
                message = (
                    f"a field is longer than {csv.field_size_limit()} characters "
                    "(the csv field size limit); is a closing quote missing?"
                )
            problems.append(Problem(name, line, "", message))
            raise ImportRejected(problems) from None
        line = previous_end + 1
        previous_end = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            problems.append(
                Problem(
                    name,
                    line,
                    "",
                    f"{len(cells)} fields but the header has {len(header)} (an unquoted comma?)",
                )
            )
            continue
        records.append((line, cells))
    known: set[str] = set()
    if known_keys is not None:
        column = next(index for index, canonical in mapping.items() if canonical == "email")
        candidates = [
            unneutralise(cells[column].strip()).lower()
            for _, cells in records
            if column < len(cells) and cells[column].isascii()
        ]
        known = known_keys(candidates)
    rows: list[Row] = []
    for line, cells in records:
        row_or_problem = _parse_row(cells, mapping, name, line, known)
        if isinstance(row_or_problem, Problem):
            problems.append(row_or_problem)
        else:
            rows.append(row_or_problem)
    problems.sort(key=lambda p: p.line)
    if not rows and not problems:
        raise ImportRejected([Problem(name, 2, "", "no data rows after the header")])
    return rows, problems, columns


def _parse_row(
    cells: list[str], mapping: dict[int, str], name: str, line: int, known: set[str]
) -> Row | Problem:
    values: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for index, column in mapping.items():
        raw = cells[index] if index < len(cells) else ""
        if "\x00" in raw:
            return Problem(name, line, _title(column), "contains a NUL character")
        limit = MAX_ATTRIBUTES if column == "attributes" else MAX_FIELD
        if len(raw) > limit:
            return Problem(name, line, _title(column), f"longer than {limit} characters")
        value = unneutralise(raw.strip())
        if column.startswith("attr:"):
            if value:
                attributes[column[5:]] = value
        elif value:
            values[column] = value
    field_name = "email"
    try:
        if "\n" in values.get("email", "") or "\r" in values.get("email", ""):
            raise StoreInputError("contains a line break")
        given_email = values.get("email", "")
        if given_email.isascii() and given_email.lower() in known:
            # Stored, hence validated, under this key; ASCII case is all that differs.
            row = Row(line=line, email=given_email, key=given_email.lower())
        else:
            email = normalise_email(given_email)
            row = Row(line=line, email=email, key=email_key(email))
        field_name = "name"
        given = " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
        row.name = clean_name(values.get("name") or given) or None
        field_name = "country"
        row.country = normalise_country(values["country"]) if "country" in values else None
        field_name = "partner"
        row.partner = clean_name(values["partner"]) if "partner" in values else None
        field_name = "language"
        row.language = clean_language(values["language"]) if "language" in values else None
        field_name = "timezone"
        row.timezone = validate_timezone(values["timezone"]) if "timezone" in values else None
        field_name = "status"
        if "status" in values:
            try:
                row.status = SubscriberStatus(values["status"].lower())
            except ValueError:
                allowed = ", ".join(s.value for s in SubscriberStatus)
                raise StoreInputError(
                    f"unknown status {values['status']!r}: use {allowed}"
                ) from None
        field_name = "lists"
        slugs = values.get("lists", "").replace(",", ";").split(";")
        row.lists = {slug.strip().lower() for slug in slugs} - {""}
        field_name = "attributes"
        if "attributes" in values:
            _shallow(values["attributes"])
            parsed = json.loads(
                values["attributes"], parse_float=_finite, parse_constant=_not_finite
            )
            if not isinstance(parsed, dict):
                raise StoreInputError("must be a JSON object")
            _storable(parsed)
            row.attributes.update(parsed)
        row.attributes.update(attributes)
    except StoreInputError as exc:
        return Problem(name, line, field_name, str(exc))
    except json.JSONDecodeError as exc:
        return Problem(name, line, field_name, f"not valid JSON: {exc.msg}")
    return row


def _shallow(text: str) -> None:
    """Refuse JSON nested deeper than MAX_ATTRIBUTE_DEPTH before parsing it: the parser
    recurses, and about a thousand brackets (2 KB) would be a RecursionError."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped = char == "\\"
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_ATTRIBUTE_DEPTH:
                raise StoreInputError(
                    f"nested more than {MAX_ATTRIBUTE_DEPTH} levels deep; attributes are a"
                    ' flat object such as {"team": "water", "since": 2019}'
                )
        elif char in "]}":
            depth -= 1


def _has_nul(value: Any) -> bool:
    """Whether a NUL is in any key or string (PostgreSQL's JSON cannot hold one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _finite(text: str) -> float:
    """JSON numbers PostgreSQL can store: no Infinity or NaN (Python's json allows them)."""
    value = float(text)
    if not math.isfinite(value):
        _not_finite(text)
    return value


def _storable(parsed: dict[str, Any]) -> None:
    """JSON's \\uD800-style escapes can make text no database can store: refuse it, and
    \\u0000, which PostgreSQL's JSON cannot hold."""
    if _has_nul(parsed):
        raise StoreInputError("not valid JSON for the store: \\u0000 (a NUL character)")
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise StoreInputError(
            f"not valid JSON: {bad!r} is half of a UTF-16 pair (an unpaired surrogate)"
        ) from None


def _not_finite(text: str) -> NoReturn:
    raise StoreInputError(f"not valid JSON: {text} is not a finite number")


def _title(column: str) -> str:
    return column[5:] if column.startswith("attr:") else column
