"""What is wrong with a content file: `Problem` (located) and `ContentError` (all of them).

Apart from mailer.authoring.loader, which raises them, because code that only
catches them (every command that opens the database, mailer.cli.common) should not
load a YAML parser and pydantic's validation to do so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailer.errors import UserInputError


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a content file, located precisely enough to fix it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ContentError(UserInputError):
    """A content or profile file is invalid; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
