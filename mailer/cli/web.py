"""Commands of this area; see the module docstring of the library it wraps."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root command."""
