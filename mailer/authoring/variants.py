"""Language variants of an issue: `2022-13.yaml`, `2022-13.zh.yaml`, `2022-13.th.yaml`.

The variants of an issue are content files side by side in one directory whose
names differ only by a language part before the extension. Each is a complete
issue with its own `language`, title, subject, preheader and blocks; together they
must be one issue (same newsletter, number, year and date), each language once.
Given any one of the files, `find_variants` names them all and `load_variants`
loads and compares them, so a campaign made from any variant sends all of them.
The profile's `default_language` says which variant people without their own get.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailer.authoring.content import Issue, Statement, load_issue
from mailer.authoring.loader import ContentError, Problem

SUFFIXES = (".yaml", ".yml")
# The language part of a variant's file name: a BCP 47 tag as `language:` takes it
# ("zh", "zh-Hans", "pt-BR"), any case.
_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# Fields every variant must share; a difference is an error naming both files.
SHARED = ("newsletter", "number", "year", "date")


def split_name(path: Path) -> tuple[str, str | None]:
    """(base name, language part or None): `2022-13.zh.yaml` -> ("2022-13", "zh")."""
    stem = path.name
    for suffix in SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    base, dot, tag = stem.rpartition(".")
    if dot and base and _TAG.match(tag):
        return base, tag
    return stem, None


def find_variants(path: Path) -> list[Path]:
    """Every variant file of the issue `path` is one of (itself included), sorted by
    name: the file without a language part first."""
    base, _ = split_name(path)
    folder = path.parent
    found = {path}
    if folder.is_dir():
        for candidate in folder.iterdir():
            if candidate.suffix.lower() not in SUFFIXES or not candidate.is_file():
                continue
            if split_name(candidate)[0] == base:
                found.add(candidate)
    return sorted(found, key=lambda p: (split_name(p)[1] is not None, p.name))


@dataclass(frozen=True)
class Variant:
    """One language's file of an issue, loaded."""

    path: Path
    issue: Issue

    @property
    def language(self) -> str:
        return self.issue.language


@dataclass(frozen=True)
class Disagreement:
    """Something the variants of an issue should agree on and do not."""

    error: bool  # False: a warning
    file: Path
    other: Path | None
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        level = "error" if self.error else "warning"
        return f"{where}: {self.field}: {level}: {self.message}"


def language_key(tag: str | None) -> str:
    """A language tag compared case-insensitively with `_` read as `-` ("zh_CN" = "zh-cn")."""
    return (tag or "").strip().replace("_", "-").lower()


def pick(languages: Iterable[str], wanted: str | None, default: str) -> str:
    """The variant language for a reader of `wanted`: the same tag, else one of the same
    primary language ("zh-Hans" reader, "zh" variant; "zh" reader, "zh-Hans" variant),
    else `default`. Always exactly one of `languages` when `default` is among them."""
    by_key = {language_key(lang): lang for lang in languages}
    key = language_key(wanted)
    if key in by_key:
        return by_key[key]
    primary = key.split("-")[0]
    if primary:
        same = sorted(lang for k, lang in by_key.items() if k.split("-")[0] == primary)
        if same:
            return same[0]
    return default


@dataclass(frozen=True)
class IssueVariants:
    """The variants of one issue, and which of them is the default."""

    variants: tuple[Variant, ...]
    default_language: str

    @property
    def languages(self) -> list[str]:
        return [v.language for v in self.variants]

    @property
    def default(self) -> Variant:
        """The variant in the profile's default language; without one, the file with no
        language part in its name; without that, the first."""
        chosen = pick(self.languages, self.default_language, "")
        if chosen and language_key(chosen) == language_key(self.default_language):
            return self.of(chosen)
        untagged = [v for v in self.variants if split_name(v.path)[1] is None]
        return untagged[0] if untagged else self.variants[0]

    def of(self, language: str) -> Variant:
        """The variant written in exactly `language` (compared as `language_key`)."""
        for variant in self.variants:
            if language_key(variant.language) == language_key(language):
                return variant
        raise KeyError(language)

    def for_reader(self, language: str | None) -> Variant:
        """The variant a subscriber whose language is `language` gets (see `pick`)."""
        return self.of(pick(self.languages, language, self.default.language))


def _statement_key(statement: Statement) -> str:
    return " ".join(statement.name.split()).casefold()


def _unpaired(
    mine: Sequence[Statement], theirs: Sequence[Statement]
) -> tuple[list[Statement], list[Statement]]:
    """The statements of each side with no counterpart on the other. Names are often
    translated (Mr. ZHOU Jun, 周军, นายโจว จวิน), so statements pair by, in turn: the
    same name; the same photo; then, country by country, in order, when both sides
    have as many statements left from that country (so a dropped speaker is not
    mistaken for the next one)."""
    left, right = list(mine), list(theirs)

    def pair(same: Callable[[Statement, Statement], bool]) -> None:
        for one in list(left):
            match = next((other for other in right if same(one, other)), None)
            if match is not None:
                left.remove(one)
                right.remove(match)

    pair(lambda a, b: _statement_key(a) == _statement_key(b))
    pair(lambda a, b: bool(a.photo) and a.photo == b.photo)
    for country in {s.country for s in left}:
        here = [s for s in left if s.country == country]
        there = [s for s in right if s.country == country]
        if len(here) == len(there):
            for statement in here:
                left.remove(statement)
            for statement in there:
                right.remove(statement)
    return left, right


def _field_of(issue: Issue, statement: Statement) -> str:
    """The field path of a statement's name, for its line: "blocks[2].statement.name"."""
    for index, block in enumerate(issue.blocks):
        if getattr(block, "statement", None) is statement:
            return f"blocks[{index}].statement.name"
    return "statement"


def disagreements(variant: Variant, others: Sequence[Variant]) -> list[Disagreement]:
    """What `variant` disagrees on with the `others`: a shared field (`SHARED`) or a
    language claimed twice is an error naming both files; a statement (by its speaker's
    name, or photo when the name is translated) in one and missing from the other is a
    warning (see `_unpaired`); so is a file name whose language part is not the
    file's `language`."""
    found: list[Disagreement] = []
    me, mine = variant.path, variant.issue
    tag = split_name(me)[1]
    if tag is not None and language_key(tag) != language_key(mine.language):
        found.append(
            Disagreement(
                False,
                me,
                None,
                "language",
                f"the file name says {tag!r} but the file says language {mine.language!r}",
                mine.line_of("language"),
            )
        )
    for other in others:
        theirs = other.issue
        if language_key(mine.language) == language_key(theirs.language):
            found.append(
                Disagreement(
                    True,
                    me,
                    other.path,
                    "language",
                    f"{me.name} and {other.path.name} are both in language {mine.language!r}:"
                    " each language may have one variant",
                    mine.line_of("language"),
                )
            )
        for field in SHARED:
            if getattr(mine, field) != getattr(theirs, field):
                found.append(
                    Disagreement(
                        True,
                        me,
                        other.path,
                        field,
                        f"{me.name} has {field} {getattr(mine, field)} but {other.path.name} has "
                        f"{getattr(theirs, field)}: the variants of an issue must agree",
                        mine.line_of(field),
                    )
                )
        only_mine, only_theirs = _unpaired(mine.statements, theirs.statements)
        for statement in only_mine:
            field = _field_of(mine, statement)
            found.append(
                Disagreement(
                    False,
                    me,
                    other.path,
                    field,
                    f"the statement of {statement.name!r} is in {me.name} but not in "
                    f"{other.path.name} ({theirs.language})",
                    mine.line_of(field),
                )
            )
        for statement in only_theirs:
            found.append(
                Disagreement(
                    False,
                    me,
                    other.path,
                    "statement",
                    f"the statement of {statement.name!r} in {other.path.name} "
                    f"({theirs.language}) is missing from {me.name}",
                )
            )
    return found


def compare(variants: Sequence[Variant]) -> list[Disagreement]:
    """Every disagreement among `variants`, each pair of files looked at once."""
    return [d for i, v in enumerate(variants) for d in disagreements(v, variants[:i])]


def check_variants(path: Path) -> list[Disagreement]:
    """What the issue file `path` disagrees on with its other variants (`mailer check`);
    a variant that does not load is an error here too, its problems being its own."""
    me: Variant | None = None
    others: list[Variant] = []
    found: list[Disagreement] = []
    for file in find_variants(path):
        try:
            loaded = Variant(file, load_issue(file))
        except (ContentError, OSError):
            if file != path:
                found.append(
                    Disagreement(
                        True,
                        path,
                        file,
                        "variants",
                        f"its variant {file.name} does not load: check it with `mailer check "
                        f"{file}`",
                    )
                )
            continue
        if file == path:
            me = loaded
        else:
            others.append(loaded)
    if me is None:
        return found
    return found + disagreements(me, others)


def load_variants(path: Path, default_language: str) -> IssueVariants:
    """Load every variant of the issue `path` belongs to; raises ContentError listing
    every problem of every file, and every disagreement that is an error."""
    problems: list[Problem] = []
    loaded: list[Variant] = []
    for file in find_variants(path):
        try:
            loaded.append(Variant(file, load_issue(file)))
        except ContentError as exc:
            problems.extend(exc.problems)
        except OSError as exc:
            problems.append(Problem(str(file), None, "", f"cannot read: {exc.strerror}"))
    if problems:
        raise ContentError(problems)
    errors = [d for d in compare(loaded) if d.error]
    if errors:
        raise ContentError([Problem(str(d.file), d.line, d.field, d.message) for d in errors])
    return IssueVariants(tuple(loaded), default_language)
