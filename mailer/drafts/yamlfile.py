"""A draft as a content file and back: `mailer drafts export` and the YAML import.

The file is written by ruamel.yaml in the layout of the example issues (fields in
the editor's order, long texts as literal blocks), so `mailer check` accepts it and
an editor can read it; read back, it gives the same document, field for field.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from mailer.authoring.content import load_issue_text
from mailer.authoring.loader import parse_yaml

_ORDER = (
    "newsletter",
    "number",
    "year",
    "date",
    "language",
    "title",
    "subtitle",
    "subject",
    "preheader",
    "blocks",
    "contact",
    "about",
)


def to_yaml(document: dict[str, Any]) -> str:
    """The document as a content file's text."""
    ordered = CommentedMap()
    for key in [*_ORDER, *sorted(set(document) - set(_ORDER))]:
        if key in document and document[key] is not None:
            ordered[key] = _node(document[key], top=key)
    yaml = YAML(typ="rt")
    yaml.width = 4096  # long lines stay whole; literal blocks keep the editor's breaks
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(ordered, buffer)
    return buffer.getvalue()


def _node(value: Any, top: str = "") -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            if item is not None:
                out[key] = _node(item)
        return out
    if isinstance(value, list):
        return CommentedSeq(_node(item) for item in value)
    if isinstance(value, str):
        if top == "date":
            return value  # YYYY-MM-DD, read back as text by the content loader
        if "\n" in value:
            return LiteralScalarString(value)
        if value != value.strip() or value == "":
            return DoubleQuotedScalarString(value)
        return value
    return value


def from_yaml(text: str, name: str) -> dict[str, Any]:
    """A content file's fields as a draft's document (dates as YYYY-MM-DD text), once
    the file validates; a ContentError naming lines and fields otherwise."""
    load_issue_text(text, name)
    document: dict[str, Any] = _plain(parse_yaml(text, name))
    return document


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node
