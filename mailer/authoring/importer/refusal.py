"""The importer's one error: a file it cannot read at all."""

from __future__ import annotations

from mailer.authoring.loader import ContentError, Problem


class ImportRefused(ContentError):
    """The file is of a kind the importer does not read, is not UTF-8 text, is a corrupt
    Word document or is too large. Like every ContentError it is a UserInputError and
    its message names the file (and the line, where there is one)."""

    def __init__(self, name: str, message: str, line: int | None = None) -> None:
        super().__init__([Problem(name, line, "", message)])
