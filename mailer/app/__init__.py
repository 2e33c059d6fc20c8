"""The application layer: what the CLI and the web app both do, written once.

`mailer.cli` and `mailer.web` parse arguments and present results; the decisions
between (a new campaign's defaults, a campaign's report, the failures CSV, the
subscriber filters, the country choices, how store errors read as ours) live here,
over the library packages. Modules by concern: campaigns, audiences, subscribers,
errors.
"""
