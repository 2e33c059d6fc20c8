"""Editors' commands: render an issue to files, check it (`mailer preview` is in
mailer.cli.preview, as it needs a web server).

Thin wrappers over the `mailer.authoring` modules content, render and checks.
A broken content file prints one line per problem (file:line: field: message) on
stderr and exits with status 1, without a traceback; so does a file over 1 MB, the
web upload's limit (mailer.authoring.loader.MAX_FILE_BYTES), which is refused before parsing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mailer.authoring.checks import Level, check_issue, check_variant_files, has_errors
from mailer.authoring.content import Issue, load_issue
from mailer.authoring.loader import ContentError
from mailer.authoring.render import RenderedIssue, with_sample_values
from mailer.cli.common import EnvOpt, fail, friendly_errors, root
from mailer.compose import Root
from mailer.delivery.testsend import preview_eml


@contextmanager
def _content_errors() -> Iterator[None]:
    """One line per problem of a content file, then exit status 1."""
    with friendly_errors():
        try:
            yield
        except ContentError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(1) from None


def render_command(
    issues: Annotated[list[Path], typer.Argument(help="Issue files.", dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the files.")] = Path("out"),
    keep_slots: Annotated[
        bool,
        typer.Option(
            "--keep-slots",
            help="Leave the per-recipient placeholders (%%UNSUBSCRIBE_URL%%...) unfilled.",
        ),
    ] = False,
    mjml_source: Annotated[
        bool, typer.Option("--mjml", help="Also write the MJML source (for debugging).")
    ] = False,
    env_file: EnvOpt = None,
) -> None:
    """Render issues to NAME.html, NAME.txt and a complete NAME.eml in --out."""
    the_root = root(env_file, database=False)
    with _content_errors():
        renderer = the_root.renderer()
        loaded: list[tuple[Path, Issue, RenderedIssue]] = []
        for path in issues:
            issue = load_issue(path)
            same = next((p for p, i, _ in loaded if i.slug == issue.slug), None)
            if same is not None:  # both would be written to the same files
                raise fail(
                    f"error: {path} and {same} are both issue {issue.slug}:"
                    " render them into different --out folders"
                )
            loaded.append((path, issue, renderer.render(issue)))
        try:
            _write_parts(out, loaded, the_root, keep_slots, mjml_source)
        except OSError as exc:
            raise fail(f"error: {out}: cannot write: {exc.strerror}") from None


def _write_parts(
    out: Path,
    loaded: list[tuple[Path, Issue, RenderedIssue]],
    the_root: Root,
    keep_slots: bool,
    mjml_source: bool,
) -> None:
    """NAME.html, NAME.txt, NAME.eml (and NAME.mjml) for each rendered issue; the .eml
    is built by delivery's message builder for a sample reader, sample values filled."""
    out.mkdir(parents=True, exist_ok=True)
    base_url = the_root.settings.public_base_url
    identity = the_root.identity()
    for path, issue, rendered in loaded:
        html_path = out / f"{issue.slug}.html"
        sampled = with_sample_values(rendered, base_url, html_path.resolve().as_uri())
        shown = rendered if keep_slots else sampled
        html_path.write_text(shown.html, encoding="utf-8")
        (out / f"{issue.slug}.txt").write_text(shown.text, encoding="utf-8")
        eml = preview_eml(identity, the_root.profile, sampled)
        (out / f"{issue.slug}.eml").write_bytes(eml)
        if mjml_source:
            mjml = the_root.renderer().mjml(issue)
            (out / f"{issue.slug}.mjml").write_text(mjml, encoding="utf-8")
        size = len(rendered.html.encode("utf-8")) / 1024
        typer.echo(f"{path}: {out / issue.slug}.html ({size:.1f} KB), .txt, .eml")


def check_command(
    issues: Annotated[list[Path], typer.Argument(help="Issue files.", dir_okay=False)],
    env_file: EnvOpt = None,
) -> None:
    """Validate issues and lint the emails they make; exit status 1 on any error.

    A file with language variants beside it (2022-13.zh.yaml next to 2022-13.yaml)
    is also compared with them: a different number, year or date, or a language
    given twice, is an error naming both files; a statement missing from one a warning.
    """
    the_root = root(env_file, database=False)
    failed = False
    with _content_errors():  # a broken profile: one line per problem
        renderer = the_root.renderer()
    with friendly_errors():
        for path in issues:
            try:
                issue = load_issue(path)
            except ContentError as exc:
                for problem in exc.problems:
                    typer.echo(f"error: {problem}", err=True)
                failed = True
                continue
            findings = check_issue(issue, renderer) + check_variant_files(path)
            for finding in findings:
                typer.echo(finding.format(str(path)), err=True)
            errors = sum(f.level is Level.ERROR for f in findings)
            warnings = len(findings) - errors
            verdict = "FAILED" if has_errors(findings) else "ok"
            size = ""
            if not has_errors(findings):
                rendered = renderer.render(issue)
                size = f"; HTML {len(rendered.html.encode('utf-8')) / 1024:.1f} KB"
            typer.echo(f"{path}: {verdict} ({errors} error(s), {warnings} warning(s){size})")
            failed = failed or has_errors(findings)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root command."""
    app.command(
        "render",
        epilog="Example: mailer render examples/issues/2022-13.yaml --out out/",
    )(render_command)
    app.command(
        "check",
        epilog="Example: mailer check examples/issues/*.yaml   (a file with language variants"
        " beside it, 2022-13.zh.yaml, is also compared with them)",
    )(check_command)
