"""Entry point of the `mailer` command; each area registers its own commands."""

from __future__ import annotations

import typer

from mailer.cli import authoring, bounces, delivery, demo, schedule, signups, store, web

app = typer.Typer(
    help="Newsletter service: write issues, keep subscriber lists, deliver by SMTP.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
campaign_app = typer.Typer(help="Create, inspect and control campaigns.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")

authoring.register(app)
store.register(app)
signups.register(app)  # after store: adds to its `subscribers` group
delivery.register(app, campaign_app)
schedule.register(app, campaign_app)
web.register(app)
bounces.register(app)
demo.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
